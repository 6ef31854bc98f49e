"""Bytes <-> envelopes. The only place where records become models (and back)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Iterable

from pydantic import ValidationError

from complaint_stream.schemas.privacy import redact_phone_numbers
from complaint_stream.schemas import events
from complaint_stream.schemas.base import Payload
from complaint_stream.schemas.deadletter import DeadLetter, DeadLetterError, FieldError
from complaint_stream.schemas.envelope import Envelope, envelope_type
from complaint_stream.schemas.submission import ChannelSubmission

PAYLOADS: tuple[type[Payload], ...] = (
    ChannelSubmission,
    events.ComplaintReceived,
    events.ComplaintClassified,
    events.ComplaintAssigned,
    events.ComplaintStatusChanged,
    events.SlaEvent,
    events.ComplaintEscalated,
    events.ComplaintResolved,
    events.StatisticsUpdated,
    events.HotSpotDetected,
    events.ReassignComplaint,
    events.ChangePriority,
    events.AddNote,
    DeadLetter,
)
REGISTRY: dict[str, type[Payload]] = {p.event_type: p for p in PAYLOADS}


class DecodeError(ValueError):
    """A record could not be decoded; carries what a dead letter needs."""

    def __init__(self, kind: str, message: str, fields: Iterable[FieldError] = ()):
        super().__init__(message)
        self.kind = kind
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


def decode(raw: bytes | None, accept: Iterable[type[Payload]], *,
           context: dict[str, Any] | None = None) -> Envelope[Any]:
    """Decode one record value into the envelope of one of the accepted payload types."""
    accepted = {p.event_type: p for p in accept}
    if raw is None:
        raise DecodeError("empty_record", "record has no value (tombstone)")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid_encoding", f"value is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise DecodeError("invalid_json", f"value is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(obj, dict):
        raise DecodeError("schema_violation", f"expected a JSON object (CloudEvent), got {type(obj).__name__}")
    etype = obj.get("type")
    if etype not in accepted:
        known = "known" if etype in REGISTRY else "unknown"
        raise DecodeError(
            "unexpected_event_type",
            f"event type {str(etype)[:80]!r} ({known}) is not accepted here; expected {', '.join(sorted(accepted))}",
            (FieldError(loc="type", msg="not an accepted event type"),),
        )
    model = envelope_type(accepted[etype])
    try:
        return model.model_validate(obj, context=context)
    except ValidationError as exc:
        fields = field_errors(exc)
        raise DecodeError("schema_violation", _summary(fields), fields) from exc


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
