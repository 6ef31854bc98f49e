"""What a channel system sends: one complaint as the customer made it (投诉受理)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AnyUrl, Field, ValidationInfo, field_validator, model_validator

from complaint_stream.schemas.base import (
    AwareDatetime,
    Channel,
    ComplaintId,
    CustomerTier,
    EventModel,
    Payload,
    no_mobile_number,
)
from complaint_stream.schemas.normalise import (
    check_time_window,
    clean_region_name,
    clean_required_text,
    normalise_channel,
    normalise_msisdn,
    resolve_region,
    to_utc,
    unresolved_levels,
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

    msisdn: str = Field(description="Phone number the customer can be called back on (mobile, fixed line, VoIP),"
                                    " normalised to E.164: +8613812345678, +861012345678.")
    tier: CustomerTier = CustomerTier.STANDARD
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="Where email messages go, when the customer gave one.")
    notify_by: Literal["sms", "email", "wechat", "app"] | None = Field(
        default=None, description="How the customer prefers to hear from us; by default the channel they used.")
    notify_language: Literal["zh", "en"] | None = Field(
        default=None, description="Language of messages to the customer; by default the complaint's language.")
    opt_out: bool = Field(default=False, description="The customer asked for no messages beyond the legally"
                                                     " required reply (no surveys, no progress messages).")

    @field_validator("msisdn", mode="before")
    @classmethod
    def _msisdn(cls, value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("phone number must be a string")
        return normalise_msisdn(value)


#: A GB/T 2260 administrative division code (行政区划代码): 6 digits, e.g. 440000 广东省, 440300 深圳市, 440305 南山区.
DivisionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
#: A network cell's id (digits and dashes, e.g. ``460-00-9527-12345``); never a mobile phone number.
CellId = Annotated[str, AfterValidator(no_mobile_number)]
RegionLevel = Literal["province", "city", "district"]
_REGION_CODES = ("province_code", "city_code", "district_code", "unresolved")


class Region(EventModel):
    """Where the problem is (省/市/区, optionally the serving cell), as names to display and GB/T 2260 codes.

    Given names only (a submission), validation resolves them (``normalise.resolve_region``): each level
    that matches a division gets its code and official name; one that does not keeps its cleaned name,
    gets ``None`` and is listed in ``unresolved``. Given codes (an event after intake), they are kept as
    they are: a later division table never rewrites a complaint already received. Assignment, statistics
    and hot-spot keys are to group by the codes (never by names, which are for people).
    """

    province: str = Field(min_length=1, max_length=32, description="Province name: official when province_code is set.")
    city: str = Field(min_length=1, max_length=32, description="City name: official when city_code is set.")
    district: str = Field(default="", max_length=32, description="District or county name; may be empty.")
    cell_id: CellId | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9\-]+$")
    province_code: DivisionCode | None = Field(default=None, description="GB/T 2260 code of the province (440000).")
    city_code: DivisionCode | None = Field(
        default=None, description="GB/T 2260 code of the prefecture-level city (440300); a county-level city"
                                  " governed by its province: its own code (济源 419001); a municipality or"
                                  " 香港/澳门/台湾: the province_code.")
    district_code: DivisionCode | None = Field(default=None, description="GB/T 2260 code of the district or county.")
    unresolved: tuple[RegionLevel, ...] = Field(
        default=(), description="Levels whose name matched no division (their code is null), kept as given.")

    @field_validator("province", "city", "district", mode="before")
    @classmethod
    def _clean(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return clean_region_name(value, str(info.field_name), required=info.field_name != "district")

    @model_validator(mode="after")
    def _resolve(self) -> Region:
        # The instance is still being built (nobody holds it yet): completing it in place is how an "after"
        # validator of a frozen model sets derived fields (pydantic ignores a returned copy in __init__).
        if not self.model_fields_set & set(_REGION_CODES):  # names only: resolve them
            found = resolve_region(self.province, self.city, self.district)
            for name in ("province", "city", "district", "province_code", "city_code", "district_code", "unresolved"):
                object.__setattr__(self, name, getattr(found, name))
            self.model_fields_set.update(_REGION_CODES)
            return self
        for code, parent in ((self.city_code, self.province_code), (self.district_code, self.city_code)):
            if code is not None and (parent is None or code[:2] != parent[:2]):
                raise ValueError(f"region code {code} does not lie in {parent or 'an unresolved parent'}")
        derived = unresolved_levels(self.province, self.city, self.district,
                                    self.province_code, self.city_code, self.district_code)
        if "unresolved" in self.model_fields_set and self.unresolved != derived:
            raise ValueError(f"region unresolved {list(self.unresolved)} does not match its codes ({list(derived)})")
        object.__setattr__(self, "unresolved", derived)
        return self


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


class RegulatorAppeal(EventModel):
    """A complaint forwarded by the telecom regulator (工信部/通信管理局 申诉转办): its case number and
    the reply deadline the regulator set, when it gave one."""

    case_no: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff._:/()\-]*$",
                         description="The regulator's case number (申诉编号).")
    reply_by: AwareDatetime | None = Field(default=None, description="The regulator's own reply deadline.")


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
    refers_to: ComplaintId | None = Field(
        default=None, description="The complaint this contact is about, when the channel knows (a follow-up, 催单).")
    regulator: RegulatorAppeal | None = Field(
        default=None, description="The regulator's case number and deadline; only on the regulator channel.")

    @model_validator(mode="after")
    def _regulator_only_on_its_channel(self) -> ChannelSubmission:
        if self.regulator is not None and self.channel is not Channel.REGULATOR:
            raise ValueError(f"regulator case details on a {self.channel.value} submission;"
                             " only the regulator channel carries them")
        return self

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, value: object) -> object:
        if isinstance(value, str):
            return normalise_channel(value)
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _region_from_names(cls, value: object) -> object:
        # In a submission the names are what the channel says; codes are derived from them on every
        # validation (a re-validated submission carries the codes of the first), so none sent is trusted.
        if isinstance(value, Region):
            value = value.model_dump(exclude=set(_REGION_CODES))
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in _REGION_CODES}
        return value

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        text = clean_required_text(value)
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
