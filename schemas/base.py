"""Base class and shared vocabulary of every event model.

Models are pydantic v2, frozen and ``extra="forbid"``. They also work as a
faust value type: faust calls ``from_data`` to build a value from decoded JSON
and its JSON encoder calls ``__json__`` to serialise one.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class EventModel(BaseModel):
    """Base of all payloads and envelopes."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False,
                              use_enum_values=False, ser_json_timedelta="float")

    # -- faust value-type protocol -------------------------------------------------
    @classmethod
    def from_data(cls, data: Any, *, preferred_type: Any = None) -> "EventModel":
        """Build the model from faust's decoded payload (dict, bytes or str)."""
        if isinstance(data, (bytes, bytearray, str)):
            return cls.model_validate_json(data)
        return cls.model_validate(data)

    def __json__(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class Payload(EventModel):
    """The ``data`` of one CloudEvent. Subclasses set ``event_type``."""

    event_type: ClassVar[str] = ""


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

    @property
    def is_terminal(self) -> bool:
        return self in (TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.CANCELLED)


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


SEVERITY_OF_PRIORITY = {
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
