"""Bytes <-> envelopes. The only place where records become models (and back).

A stage decodes with :func:`decoder_for` (built once per set of accepted event
types): one pydantic ``TypeAdapter`` over the union of their envelopes,
discriminated by the CloudEvents ``type`` attribute, validates the raw bytes
directly. Only a record that fails there takes the slow path, which says
precisely what is wrong (a :class:`DecodeError` of one :class:`DeadLetterKind`).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Protocol, Union, cast

from pydantic import Field, TypeAdapter, ValidationError

from complaint_stream.schemas import events  # noqa: F401 - defines (and so registers) the lifecycle payloads
from complaint_stream.schemas.base import REGISTRY, Payload
from complaint_stream.schemas.deadletter import (
    DeadLetter,
    DeadLetterError,
    DeadLetterKind,
    FieldError,
)
from complaint_stream.schemas.envelope import Envelope, envelope_type
from complaint_stream.schemas.privacy import redact_phone_numbers
from complaint_stream.schemas.submission import ChannelSubmission  # noqa: F401 - registers ChannelSubmission

__all__ = ["PAYLOADS", "REGISTRY", "DecodeError", "Decoder", "dead_letter", "decode", "decoder_for", "encode",
           "field_errors"]

#: Every payload type, in definition order (derived from the registry; nothing to keep by hand).
PAYLOADS: tuple[type[Payload], ...] = tuple(REGISTRY.values())
assert DeadLetter in PAYLOADS


class DecodeError(ValueError):
    """A record could not be decoded; carries what a dead letter needs."""

    def __init__(self, kind: DeadLetterKind | str, message: str, fields: Iterable[FieldError] = ()):
        super().__init__(message)
        self.kind = DeadLetterKind(kind)
        self.message = redact_phone_numbers(message)
        self.fields = tuple(fields)

    def to_error(self) -> DeadLetterError:
        return DeadLetterError(type=self.kind, message=self.message, fields=self.fields)


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """Readable, PII-free field errors (pydantic's ``input`` is deliberately dropped)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        out.append(FieldError(loc=loc, msg=redact_phone_numbers(msg)))
    return tuple(out)


def _summary(fields: tuple[FieldError, ...]) -> str:
    parts = [f"{f.loc or '<record>'}: {f.msg}" for f in fields[:5]]
    more = f" (+{len(fields) - 5} more)" if len(fields) > 5 else ""
    return "; ".join(parts) + more


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


class Decoder(Protocol):
    """Decodes one record value into the envelope of one of the accepted types, or raises :class:`DecodeError`."""

    def __call__(self, raw: bytes | None, context: Mapping[str, Any] | None = None) -> Envelope[Any]: ...


def _explain(raw: bytes | None, accepted: Mapping[str, type[Payload]],
             context: Mapping[str, Any] | None) -> Envelope[Any]:
    """The slow path: find out why a record does not decode and raise that as a :class:`DecodeError`."""
    if raw is None:
        raise DecodeError(DeadLetterKind.EMPTY_RECORD, "record has no value (tombstone)")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(DeadLetterKind.INVALID_ENCODING,
                          f"value is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise DecodeError(DeadLetterKind.INVALID_JSON,
                          f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION,
                          f"expected a JSON object (CloudEvent), got {type(obj).__name__}")
    etype = obj.get("type")
    if etype not in accepted:
        known = "known" if etype in REGISTRY else "unknown"
        raise DecodeError(
            DeadLetterKind.UNEXPECTED_EVENT_TYPE,
            f"event type {str(etype)[:80]!r} ({known}) is not accepted here; expected {', '.join(sorted(accepted))}",
            (FieldError(loc="type", msg="not an accepted event type"),),
        )
    model = envelope_type(accepted[str(etype)])
    try:
        # json.loads accepts a little more than pydantic's parser (NaN, Infinity): such a record still decodes.
        return model.model_validate(obj, context=context)
    except ValidationError as exc:
        fields = field_errors(exc)
        raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION, _summary(fields), fields) from exc


def decoder_for(types: Iterable[type[Payload]]) -> Decoder:
    """The decoder of a stage that accepts these payload types (built once per set, then cached)."""
    return _build_decoder(tuple(dict.fromkeys(types)))


@functools.lru_cache(maxsize=128)
def _build_decoder(types: tuple[type[Payload], ...]) -> Decoder:
    if not types:
        raise ValueError("a decoder needs at least one accepted payload type")
    accepted = {p.event_type: p for p in types}
    only: str | None = None
    if len(types) == 1:
        only = types[0].event_type
        target: Any = envelope_type(types[0])
    else:
        members = tuple(envelope_type(p) for p in types)
        target = Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007 - a runtime union of types
    validate_json = cast(TypeAdapter[Envelope[Any]], TypeAdapter(target)).validate_json

    def decode_record(raw: bytes | None, context: Mapping[str, Any] | None = None) -> Envelope[Any]:
        if raw is not None:
            try:
                env = validate_json(raw, context=context)
            except ValidationError:
                pass
            else:
                if only is None or env.type == only:
                    return env
        return _explain(raw, accepted, context)

    return decode_record


def decode(raw: bytes | None, accept: Iterable[type[Payload]], *,
           context: Mapping[str, Any] | None = None) -> Envelope[Any]:
    """Decode one record value into the envelope of one of the accepted payload types."""
    return decoder_for(accept)(raw, context)


def dead_letter(*, stage: str, source_topic: str, value: bytes | None, error: DecodeError | DeadLetterError,
                failed_at: datetime, key: bytes | None = None, partition: int | None = None,
                offset: int | None = None, headers: Iterable[tuple[str, bytes]] = ()) -> DeadLetter:
    """Build the dead letter of a rejected record; the original bytes are kept losslessly."""
    err = error.to_error() if isinstance(error, DecodeError) else error
    return DeadLetter(
        stage=stage,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        original_key_b64=None if key is None else base64.b64encode(key).decode("ascii"),
        original_value_b64=base64.b64encode(value or b"").decode("ascii"),
        original_headers=tuple((k, base64.b64encode(v or b"").decode("ascii")) for k, v in headers),
        error=err,
        failed_at=failed_at,
    )
