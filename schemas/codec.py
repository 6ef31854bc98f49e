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
import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Protocol, Union, cast

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import from_json

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
        self.message = redact_phone_numbers(message)
        super().__init__(self.message)  # str(exc) too: it ends up in logs and CLI output
        self.kind = DeadLetterKind(kind)
        self.fields = tuple(fields)

    def to_error(self) -> DeadLetterError:
        return DeadLetterError(type=self.kind, message=self.message, fields=self.fields)


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """Readable, PII-free field errors (pydantic's ``input`` is deliberately dropped)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        # The path too: the key of an extra field is the sender's text (a phone number, sometimes).
        out.append(FieldError(loc=redact_phone_numbers(loc), msg=redact_phone_numbers(msg)))
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
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(DeadLetterKind.INVALID_ENCODING,
                          f"value is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        # pydantic's own JSON parser, as on the fast path: bounded nesting (no RecursionError on deep
        # input), no int-to-str digit limit surprise, the same strings accepted.
        obj = from_json(text, allow_inf_nan=True)
    except ValueError as exc:
        raise DecodeError(DeadLetterKind.INVALID_JSON, f"value is not JSON: {str(exc)[:200]}") from exc
    if not isinstance(obj, dict):
        raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION,
                          f"expected a JSON object (CloudEvent), got {type(obj).__name__}")
    etype = obj.get("type")
    if etype is None:
        raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION, "the CloudEvent has no 'type' attribute",
                          (FieldError(loc="type", msg="Field required"),))
    if not isinstance(etype, str):
        raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION,
                          f"the CloudEvent attribute 'type' must be a string, got {type(etype).__name__}",
                          (FieldError(loc="type", msg="must be a string"),))
    if etype not in accepted:
        known = "known" if etype in REGISTRY else "unknown"
        raise DecodeError(
            DeadLetterKind.UNEXPECTED_EVENT_TYPE,
            f"event type {redact_phone_numbers(etype)[:80]!r} ({known}) is not accepted here;"
            f" expected {', '.join(sorted(accepted))}",
            (FieldError(loc="type", msg="not an accepted event type"),),
        )
    model = envelope_type(accepted[str(etype)])
    try:
        # The parser above allows NaN and Infinity, which validate_json does not: such a record still decodes.
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


# A dead letter must always fit in one record: Kafka's default limit is 1 MiB, and base64 makes bytes 4/3
# larger. The head kept of an oversized original, with its size and SHA-256, identifies it; the source
# topic, partition and offset find the whole record while the topic retains it.
DEAD_LETTER_VALUE_HEAD = 256 * 1024
DEAD_LETTER_KEY_HEAD = 1024
DEAD_LETTER_HEADERS_MAX = 16 * 1024   # total bytes of header names and values kept
DEAD_LETTER_MESSAGE_MAX = 2000        # characters of the reason
DEAD_LETTER_FIELDS_MAX = 50           # field errors kept
DEAD_LETTER_FIELD_TEXT_MAX = 300      # characters of each field error's path and message


def _bounded_error(err: DeadLetterError) -> DeadLetterError:
    """The reason as a dead letter keeps it: phone numbers masked (every stage's reasons pass here, and a
    message or a field path may quote the input: an unknown channel, an extra key), then bounded."""
    cut = DEAD_LETTER_FIELD_TEXT_MAX
    fields = tuple(f.model_copy(update={"loc": redact_phone_numbers(f.loc)[:cut],
                                        "msg": redact_phone_numbers(f.msg)[:cut]})
                   for f in err.fields[:DEAD_LETTER_FIELDS_MAX])
    message = redact_phone_numbers(err.message)
    if len(message) > DEAD_LETTER_MESSAGE_MAX:
        message = message[:DEAD_LETTER_MESSAGE_MAX - 1] + "…"
    if len(err.fields) > DEAD_LETTER_FIELDS_MAX:
        message = f"{message} ({len(err.fields) - DEAD_LETTER_FIELDS_MAX} more field errors not kept)"
    return err.model_copy(update={"message": message, "fields": fields})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def dead_letter(*, stage: str, source_topic: str, value: bytes | None, error: DecodeError | DeadLetterError,
                failed_at: datetime, key: bytes | None = None, partition: int | None = None,
                offset: int | None = None, headers: Iterable[tuple[str, bytes]] = ()) -> DeadLetter:
    """Build the dead letter of a rejected record. The original bytes are kept whole when they fit
    (value up to 256 KiB, key up to 1 KiB, headers up to 16 KiB); otherwise their heads are kept and the
    letter says ``truncated``. ``original_size`` and ``original_sha256`` always describe the whole value,
    and the reason is bounded too, so a dead letter is never too large to send."""
    err = _bounded_error(error.to_error() if isinstance(error, DecodeError) else error)
    raw = value or b""
    truncated = len(raw) > DEAD_LETTER_VALUE_HEAD or (key is not None and len(key) > DEAD_LETTER_KEY_HEAD)
    kept_headers: list[tuple[str, str]] = []
    budget = DEAD_LETTER_HEADERS_MAX
    for name, hvalue in headers:
        hvalue = hvalue or b""
        size = len(name.encode("utf-8", "replace")) + len(hvalue)
        if size > budget:
            truncated = True
            break
        budget -= size
        kept_headers.append((name, _b64(hvalue)))
    return DeadLetter(
        stage=stage,
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        original_key_b64=None if key is None else _b64(key[:DEAD_LETTER_KEY_HEAD]),
        original_value_b64=_b64(raw[:DEAD_LETTER_VALUE_HEAD]),
        original_headers=tuple(kept_headers),
        original_size=len(raw),
        original_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=truncated,
        error=err,
        failed_at=failed_at,
    )
