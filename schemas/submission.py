"""What a channel system sends: one complaint as the customer made it (投诉受理)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AnyUrl, Field, ValidationInfo, field_validator

from complaint_stream.schemas.base import (
    Channel,
    ComplaintId,
    CustomerTier,
    EventModel,
    Payload,
)
from complaint_stream.schemas.normalise import (
    check_time_window,
    clean_text,
    normalise_channel,
    normalise_msisdn,
    to_utc,
)


class Limits:
    """Validation limits. A validation context may override them (``context={"limits": ..., "now": ...}``)."""

    max_text_chars: ClassVar[int] = 4000
    max_future: ClassVar[timedelta] = timedelta(minutes=10)
    max_age: ClassVar[timedelta] = timedelta(days=365)
    max_attachments: ClassVar[int] = 10


def _ctx(info: ValidationInfo, key: str, default: Any) -> Any:
    ctx = info.context or {}
    return ctx.get(key, default)


Ref = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/\-]*$")]


class Customer(EventModel):
    """The complaining customer (TMF621 relatedParty with role 'customer')."""

    msisdn: str = Field(description="Phone number, normalised to E.164 (+8613812345678).")
    tier: CustomerTier = CustomerTier.STANDARD

    @field_validator("msisdn", mode="before")
    @classmethod
    def _msisdn(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("phone number must be a string")
        return normalise_msisdn(value)


class Region(EventModel):
    """Where the problem is (省/市/区, optionally the serving cell)."""

    province: str = Field(min_length=1, max_length=32)
    city: str = Field(min_length=1, max_length=32)
    district: str = Field(default="", max_length=32)
    cell_id: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")

    @field_validator("province", "city", "district", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return clean_text(value) if isinstance(value, str) else value


class Attachment(EventModel):
    """A file kept elsewhere (recording, screenshot, bill), passed by reference."""

    uri: AnyUrl
    media_type: str = Field(default="application/octet-stream", max_length=100,
                            pattern=r"^[a-z]+/[A-Za-z0-9.+\-]+$")
    name: str | None = Field(default=None, max_length=200)

    @field_validator("uri")
    @classmethod
    def _scheme(cls, value: AnyUrl) -> AnyUrl:
        if value.scheme not in {"https", "http", "s3", "oss", "obs"}:
            raise ValueError("attachment uri must use https, http, s3, oss or obs")
        return value


class ChannelSubmission(Payload):
    """A complaint as a channel system submits it. Normalised on validation."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.submitted.v1"

    channel: Channel
    channel_ref: Ref = Field(description="The channel's own reference (work order / ticket number).")
    complaint_id: ComplaintId | None = Field(default=None, description="Set when the channel already allocated one.")
    text: str = Field(min_length=1, description="The complaint in the customer's words (zh or en).")
    customer: Customer
    region: Region
    language: Literal["zh", "en", "mixed"] | None = None
    occurred_at: datetime = Field(description="When the customer complained; naive times are China Standard Time.")
    attachments: tuple[Attachment, ...] = ()

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: object) -> object:
        if isinstance(value, str):
            return normalise_channel(value)
        return value

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        text = clean_text(value)
        limit = _ctx(info, "max_text_chars", Limits.max_text_chars)
        if len(text) > limit:
            raise ValueError(f"text has {len(text)} characters; at most {limit} allowed")
        return text

    @field_validator("occurred_at")
    @classmethod
    def _occurred(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = _ctx(info, "now", None) or datetime.now(UTC)
        return check_time_window(
            to_utc(value), now,
            _ctx(info, "max_future", Limits.max_future), _ctx(info, "max_age", Limits.max_age),
        )

    @field_validator("attachments")
    @classmethod
    def _attachments(cls, value: tuple[Attachment, ...]) -> tuple[Attachment, ...]:
        if len(value) > Limits.max_attachments:
            raise ValueError(f"{len(value)} attachments; at most {Limits.max_attachments} allowed")
        return value

    @property
    def dedup_key(self) -> str:
        """Same channel + same channel reference = same complaint (idempotent intake)."""
        return f"{self.channel.value}:{self.channel_ref}"
