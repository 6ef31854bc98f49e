"""Base classes and shared vocabulary of every event model.

Models are pydantic v2, frozen and ``extra="forbid"``. Every :class:`Payload`
subclass that sets ``event_type`` registers itself in :data:`REGISTRY` when it
is defined; two payloads with one event type are an error at import time.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from complaint_stream.schemas.normalise import to_utc
from complaint_stream.schemas.privacy import contains_phone_number

#: Every datetime in every event: timezone-aware, in UTC. A naive input is read as China Standard
#: Time (UTC+8), the rule submissions' ``occurred_at`` has always had, so it serialises with an
#: offset and compares with any other time (a naive one would raise ``TypeError`` in a worker).
#: Unlike ``pydantic.AwareDatetime``, which refuses a naive time, it accepts and converts one.
AwareDatetime = Annotated[datetime, AfterValidator(to_utc)]


class EventModel(BaseModel):
    """Base of all payloads and envelopes."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False,
                              use_enum_values=False, ser_json_timedelta="float")

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class DuplicateEventType(TypeError):
    """Two payload classes declare the same ``event_type``."""


#: event type -> payload class, filled by :meth:`Payload.__pydantic_init_subclass__` in definition order.
REGISTRY: dict[str, type[Payload]] = {}


class Payload(EventModel):
    """The ``data`` of one CloudEvent. Concrete subclasses set ``event_type`` and so register themselves."""

    event_type: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        etype = cls.__dict__.get("event_type")
        if not etype:
            return  # an abstract base such as ComplaintEvent
        if not isinstance(etype, str):
            raise TypeError(f"{cls.__qualname__}.event_type must be a string, not {etype!r}")
        known = REGISTRY.get(etype)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise DuplicateEventType(
                f"event type {etype!r} of {cls.__module__}.{cls.__qualname__} is already declared by"
                f" {known.__module__}.{known.__qualname__}"
            )
        REGISTRY[etype] = cls  # a re-import of the same class replaces itself


def _no_phone_number(value: str) -> str:
    if contains_phone_number(value):
        raise ValueError("reads as a phone number: the ids of people, teams and departments must not carry"
                         " personal data")
    return value


#: The id or name of a person, team or department (an agent, a supervisor, a team, an owner ...): refused
#: when it reads as a phone number. These are copied onto the case's public events (lifecycle, resolved),
#: which carry no personal data; a phone number belongs in the customer's fields only.
NoPhone = Annotated[str, AfterValidator(_no_phone_number)]


#: Pattern of every complaint id: derived ones (``CMP<yyyymmdd>-<12 base32>``, see
#: :data:`DERIVED_COMPLAINT_ID_PATTERN`) and the ones a channel system allocates itself.
COMPLAINT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
COMPLAINT_ID_MIN_LENGTH = 3
COMPLAINT_ID_MAX_LENGTH = 64
#: The ids intake derives when the channel gave none (``complaint_stream.domain.intake.complaint_id_for``).
DERIVED_COMPLAINT_ID_PATTERN = r"^CMP[0-9]{8}-[A-Z2-7]{12}$"

_ID_SEPARATORS = re.compile(r"[._\-]")
_MOBILE_IN_ID = re.compile(r"(?<![0-9])(?:86)?1[3-9][0-9]{9}(?![0-9])")


def no_mobile_number(value: str) -> str:
    """Refuse an id with a Chinese mobile number in it (separators between its digits ignored): a complaint
    id is the key on every topic, a cell id is copied with the region, so a phone number there would be
    everywhere. (Not the full phone masker: ids such as ``HL-2026-000123`` read as fixed-line numbers.)"""
    if _MOBILE_IN_ID.search(_ID_SEPARATORS.sub("", value)):
        raise ValueError("contains a mobile phone number: ids are copied onto topics that must not carry"
                         " personal data")
    return value


ComplaintId = Annotated[str, Field(
    min_length=COMPLAINT_ID_MIN_LENGTH, max_length=COMPLAINT_ID_MAX_LENGTH, pattern=COMPLAINT_ID_PATTERN,
    description="Complaint id: CMP<yyyymmdd>-<12 base32 chars> when intake derived it, or the channel's own"
                " (3-64 characters: letters, digits, '.', '_', '-'; starting with a letter or digit; never"
                " with a mobile phone number in it).",
), AfterValidator(no_mobile_number)]


class ComplaintEvent(Payload):
    """Base of every event and command about one complaint: it carries the complaint's id (the record key)."""

    complaint_id: ComplaintId


class Channel(str, enum.Enum):
    """Where the complaint came in (受理渠道)."""

    HOTLINE = "hotline"      # 10086-style call centre / 客服热线
    APP = "app"              # 掌上营业厅 app
    WEB = "web"              # 网上营业厅
    STORE = "store"          # 营业厅 retail store
    SMS = "sms"              # 短信
    EMAIL = "email"          # 邮件
    WECHAT = "wechat"        # 微信公众号
    REGULATOR = "regulator"  # 工信部 / 通信管理局 转办 (appeal forwarded by the regulator)


class CustomerTier(str, enum.Enum):
    """Customer value tier (客户星级), lowest to highest."""

    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"
    DIAMOND = "diamond"


class TicketStatus(str, enum.Enum):
    """TMF621 Trouble Ticket status values."""

    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "inProgress"
    PENDING = "pending"
    HELD = "held"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Priority(str, enum.Enum):
    """Handling priority, P1 most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class Severity(str, enum.Enum):
    """TMF621 severity, derived from priority."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    LOW = "low"


SEVERITY_OF_PRIORITY: dict[Priority, Severity] = {
    Priority.P1: Severity.CRITICAL,
    Priority.P2: Severity.MAJOR,
    Priority.P3: Severity.MINOR,
    Priority.P4: Severity.LOW,
}


class Category(str, enum.Enum):
    """Complaint categories (shared/eval/TAXONOMY.md)."""

    NETWORK = "network"                        # 网络质量
    BROADBAND = "broadband"                    # 宽带
    BILLING = "billing"                        # 资费计费争议
    VAS_SUBSCRIPTION = "vas_subscription"      # 增值业务/未经同意订购
    MARKETING = "marketing"                    # 营销宣传
    SERVICE_QUALITY = "service_quality"        # 服务质量
    BUSINESS_HANDLING = "business_handling"    # 业务办理
    NUMBER_PORTABILITY = "number_portability"  # 携号转网
    DEVICE = "device"                          # 终端
    SECURITY_FRAUD = "security_fraud"          # 信息安全/骚扰诈骗
    OTHER = "other"                            # 其他


class RiskFlag(str, enum.Enum):
    """Signals that raise priority (投诉升级风险)."""

    REGULATOR = "regulator"                        # 工信部, 12300, 申诉
    CONSUMER_ASSOCIATION = "consumer_association"  # 12315, 消协
    MEDIA = "media"                                # 曝光, 媒体, 记者
    LEGAL = "legal"                                # 起诉, 律师, 法院
