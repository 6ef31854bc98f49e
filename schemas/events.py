"""Lifecycle events of a complaint, named in the past tense.

Every datetime field is an :data:`~complaint_stream.schemas.base.AwareDatetime`: a naive time is
read as China Standard Time and every time serialises with its offset.

Payloads follow the TMF621 Trouble Ticket model where they overlap: ``status``
values, ``severity``, ``priority``, ``ticket_type`` = "complaint", ``channel``,
the customer as related party, notes and status-change history.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from complaint_stream.schemas.base import (
    AwareDatetime,
    Category,
    Channel,
    ComplaintEvent,
    ComplaintId,
    CustomerTier,
    EventModel,
    Payload,
    Priority,
    RiskFlag,
    Severity,
    TicketStatus,
)
from complaint_stream.schemas.money import Fen
from complaint_stream.schemas.submission import Attachment, Customer, Region

CustomerKey = str  # HMAC of the phone number; safe to use as a Kafka key and in statistics


class Note(EventModel):
    """A free-text note on a complaint (TMF621 note)."""

    author: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=4000)
    at: AwareDatetime


class StatusChange(EventModel):
    """One step of the status history (TMF621 statusChange)."""

    status: TicketStatus
    changed_at: AwareDatetime
    reason: str = ""


class ComplaintReceived(ComplaintEvent):
    """A validated, normalised, de-duplicated complaint with its id (受理登记)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.received.v1"

    ticket_type: Literal["complaint"] = "complaint"
    status: TicketStatus = TicketStatus.ACKNOWLEDGED
    channel: Channel
    channel_ref: str
    text: str
    customer: Customer
    customer_key: CustomerKey
    region: Region
    language: Literal["zh", "en", "mixed"] | None = None
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    attachments: tuple[Attachment, ...] = ()


class ComplaintClassified(ComplaintEvent):
    """Category, risk, repeat and priority decided for one complaint (分类定级)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.classified.v1"

    customer_key: CustomerKey
    channel: Channel
    region: Region
    customer_tier: CustomerTier
    received_at: AwareDatetime
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: tuple[str, ...] = ()
    risk_flags: tuple[RiskFlag, ...] = ()
    repeat_of: ComplaintId | None = Field(default=None, description="Earlier complaint this one repeats (重复投诉).")
    priority: Priority
    severity: Severity
    priority_reasons: tuple[str, ...] = ()
    needs_review: bool = False
    classifier_version: str = ""

    @property
    def risk(self) -> bool:
        return bool(self.risk_flags)


class ComplaintAssigned(ComplaintEvent):
    """The complaint was given to a team and optionally an agent (派单)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.assigned.v1"

    team: str
    agent_id: str | None = None
    priority: Priority
    assigned_at: AwareDatetime
    respond_by: AwareDatetime
    resolve_by: AwareDatetime
    reason: str = ""


class ComplaintStatusChanged(ComplaintEvent):
    """A status update from an agent or the CRM (处理进展)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.status-changed.v1"

    status: TicketStatus
    changed_at: AwareDatetime
    actor: str = Field(min_length=1, max_length=64)
    note: str = ""
    resolution: str = ""


class SlaEvent(ComplaintEvent):
    """An SLA clock crossed a threshold: at risk, breached, or met (时限预警/超时)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.sla.v1"

    kind: Literal["at_risk", "breached", "met"]
    deadline: Literal["response", "resolution"]
    due_at: AwareDatetime
    observed_at: AwareDatetime
    priority: Priority


class ComplaintEscalated(ComplaintEvent):
    """The complaint moved up the escalation ladder (升级)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.escalated.v1"

    level: int = Field(ge=1, le=5)
    reason: str
    escalated_to: str
    escalated_at: AwareDatetime
    priority: Priority


class ComplaintResolved(ComplaintEvent):
    """Final outcome for downstream systems: CRM, billing refunds, notifications (办结)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.resolved.v1"

    customer_key: CustomerKey
    status: Literal[TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.CANCELLED]
    category: Category
    resolution: str
    resolved_at: AwareDatetime
    refund_fen: Fen | None = Field(default=None, description="Amount refunded to the customer, in fen (分);"
                                                          " absent when there is no refund.")
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="Callback survey score (回访满意度).")
    status_history: tuple[StatusChange, ...] = ()
    notes: tuple[Note, ...] = ()


class StatisticsUpdated(Payload):
    """Counts for one window and one dimension. Never carries personal data (统计)."""

    event_type: ClassVar[str] = "org.complaintstream.statistics.updated.v1"

    window_start: AwareDatetime
    window_end: AwareDatetime
    dimension: Literal["category", "channel", "region", "priority", "risk"]
    counts: dict[str, int]


class HotSpotDetected(Payload):
    """An unusual concentration of complaints in one area and category (热点)."""

    event_type: ClassVar[str] = "org.complaintstream.hotspot.detected.v1"

    province: str
    city: str
    district: str
    category: Category
    window_start: AwareDatetime
    window_end: AwareDatetime
    count: int = Field(ge=0)
    baseline: float = Field(ge=0)
    detected_at: AwareDatetime


class ReassignComplaint(ComplaintEvent):
    """Manual command: move a complaint to another team or agent (改派)."""

    event_type: ClassVar[str] = "org.complaintstream.command.reassign.v1"

    team: str
    agent_id: str | None = None
    requested_by: str
    reason: str = ""


class ChangePriority(ComplaintEvent):
    """Manual command: set a complaint's priority (调整优先级)."""

    event_type: ClassVar[str] = "org.complaintstream.command.change-priority.v1"

    priority: Priority
    requested_by: str
    reason: str = ""


class AddNote(ComplaintEvent):
    """Manual command: attach a note to a complaint (备注)."""

    event_type: ClassVar[str] = "org.complaintstream.command.add-note.v1"

    note: Note
