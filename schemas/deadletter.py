"""Dead letters: one format for every stage (死信)."""

from __future__ import annotations

import base64
import enum
from typing import ClassVar

from pydantic import Field

from complaint_stream.schemas.base import AwareDatetime, EventModel, Payload


class FieldError(EventModel):
    """One validation failure, located by its field path."""

    loc: str = Field(description="Dotted path of the field, e.g. data.customer.msisdn; empty for the whole record.")
    msg: str


class DeadLetterKind(enum.StrEnum):
    """Why a record was dead-lettered. A ``StrEnum``: members equal, format and print as their value."""

    EMPTY_RECORD = "empty_record"                    # no value (a tombstone)
    INVALID_ENCODING = "invalid_encoding"            # the value is not UTF-8
    INVALID_JSON = "invalid_json"                    # the value is not JSON
    SCHEMA_VIOLATION = "schema_violation"            # JSON, but not a valid envelope of an accepted type
    UNEXPECTED_EVENT_TYPE = "unexpected_event_type"  # a valid event of a type this stage does not accept
    REFUSED = "refused"                              # valid, but a rule of the stage refuses it (the rule is named)
    PROCESSING_ERROR = "processing_error"            # the stage raised while handling it
    DELIVERY_FAILED = "delivery_failed"              # what the stage emitted could not be written


class DeadLetterError(EventModel):
    type: DeadLetterKind = Field(description="Machine-readable kind of failure.")
    message: str
    fields: tuple[FieldError, ...] = ()


class DeadLetter(Payload):
    """A record a stage could not accept, kept losslessly with the reason."""

    event_type: ClassVar[str] = "org.complaintstream.deadletter.v1"

    stage: str = Field(description="Which stage rejected it: publish, intake, classify ...")
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    original_key_b64: str | None = None
    original_value_b64: str = Field(description="The original record value, base64; the whole value unless"
                                                " `truncated`, then its first bytes.")
    original_headers: tuple[tuple[str, str], ...] = ()
    original_size: int | None = Field(default=None, description="Length in bytes of the whole original value.")
    original_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the whole original value.")
    truncated: bool = Field(default=False, description="True when the original value, key or headers were too large"
                                                       " to keep whole: only their heads are here (see limits).")
    error: DeadLetterError
    failed_at: AwareDatetime

    @property
    def original_value(self) -> bytes:
        return base64.b64decode(self.original_value_b64)

    @property
    def original_key(self) -> bytes | None:
        return None if self.original_key_b64 is None else base64.b64decode(self.original_key_b64)
