"""Operator-edited policy files, loaded strictly.

Every file an operator edits to change what the pipeline decides (the
classifier rules, the priority rules, and the roster, SLA policy, calendars
and templates of the later stages) is read through one pydantic model that
derives from :class:`PolicyModel`: no unknown key, no value of the wrong type
(``"false"`` is not ``false``, ``"3"`` is not ``3``), and every category,
risk flag, channel or tier named in it one of the schemas' enums.  A file
that breaks any of that stops the start-up with one line per problem, each
naming the file, the key and what was expected; a loader that let it through
would fall back to a default instead (a misspelt category keeps its
baseline, ``"false"`` reads as true), and nobody would notice.

A model declares every key the file may have, comments included (a
``"_comment"`` key is a field with that alias).  JSON files are validated as
JSON, so enum values are given as their strings; TOML files are converted to
JSON first and validated the same way.
"""

from __future__ import annotations

import enum
import json
import os
import re
import tomllib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import to_json


class PolicyModel(BaseModel):
    """Base of every policy-file model: frozen, unknown keys refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PolicyFileError(ValueError):
    """A policy file that cannot be read or does not match its model; one line per problem."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class Readable(Protocol):
    """A file: a path or a packaged resource (``importlib.resources`` traversable)."""

    def read_bytes(self) -> bytes: ...


M = TypeVar("M", bound=PolicyModel)


def load_policy_file(source: str | os.PathLike[str] | Readable, model: type[M],
                     error: type[ValueError] = PolicyFileError) -> M:
    """Read ``source`` (JSON, or TOML by its ``.toml`` suffix) and validate it strictly as ``model``.

    Raises ``error`` (a :class:`PolicyFileError` unless the caller names its own
    ``ValueError`` subclass) whose message has one line per problem:
    ``<file>: <key>: <what was expected>``.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(source)
    try:
        raw = source.read_bytes() if not isinstance(source, (str, os.PathLike)) else _read(name)
    except OSError as exc:
        raise error(f"{name}: cannot be read: {exc.strerror or exc}") from exc
    if name.endswith(".toml"):
        try:
            raw = to_json(tomllib.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise error(f"{name}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = [f"{name}: {line}" for line in describe_errors(exc, model)]
        if issubclass(error, PolicyFileError):
            raise error("\n".join(problems), problems) from None
        raise error("\n".join(problems)) from None


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def describe_errors(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """``<key>: <what was expected>`` for each error of a validation against ``model``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        lines.append(f"{_key(loc)}: {_expected(err, loc, model)}")
    return lines


def _key(loc: tuple[int | str, ...]) -> str:
    """``category_baseline.netwrok`` for a value, ``category_baseline.netwrok (key)`` for a key."""
    if not loc:
        return "(the whole file)"
    is_key = loc[-1] == "[key]"
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in (loc[:-1] if is_key else loc)]
    dotted = ".".join(parts).replace(".[", "[")
    return dotted + (" (key)" if is_key else "")


_PLAIN = {
    "bool_type": "expected true or false (a JSON boolean)",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "frozen_set_type": "expected a list",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "missing": "missing; this key is required",
    "finite_number": "expected a finite number",
}


def _expected(err: Mapping[str, Any], loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    kind = err["type"]
    got = "" if kind == "missing" else f", got {_shown(err.get('input'))}"
    if kind == "extra_forbidden":
        parent = _unwrap(_type_at(model, loc[:-1]))
        known = ", ".join(_keys_of(parent)) if _is_model(parent) else ""
        return "unknown key" + (f"; expected one of: {known}" if known else "")
    if kind == "enum":
        target = _unwrap(_type_at(model, loc))
        what = _words(target.__name__) if isinstance(target, type) and issubclass(target, enum.Enum) else "value"
        expected = err.get("ctx", {}).get("expected", "")
        return f"unknown {what} {_shown(err.get('input'))}; expected one of: {expected}"
    if kind in _PLAIN:
        return _PLAIN[kind] + got
    if kind == "json_invalid":
        return f"not valid JSON: {err.get('ctx', {}).get('error', err['msg'])}"
    return f"{err['msg']}{got}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _words(name: str) -> str:
    """``RiskFlag`` -> ``risk flag``."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _type_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> Any:
    """The declared type at ``loc`` in ``model`` (``None`` where it cannot be told)."""
    tp: Any = model
    i = 0
    while i < len(loc):
        part = loc[i]
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if _is_model(tp):
            fields = {f.alias or n: f for n, f in tp.model_fields.items()} | dict(tp.model_fields)
            field = fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif origin in (dict, Mapping):
            key_type, value_type = get_args(tp)
            if i + 1 < len(loc) and loc[i + 1] == "[key]":
                return key_type
            tp = value_type
        elif origin in (list, tuple, Sequence, frozenset, set):
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):  # a tagged union: ``part`` is the tag
            tagged = [m for m in get_args(tp) if _is_model(m) and part in _tags(m)]
            if len(tagged) != 1:
                return None
            tp = tagged[0]
        else:
            return None
        i += 1
    return tp


def _tags(model: type[BaseModel]) -> set[Any]:
    """The values of ``model``'s literal fields (a tagged union's tags)."""
    tags: set[Any] = set()
    for field in model.model_fields.values():
        tp = _unwrap(field.annotation)
        if get_origin(tp) is Literal:
            tags.update(get_args(tp))
    return tags
