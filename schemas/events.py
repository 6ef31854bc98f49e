"""Lifecycle events of a complaint, named in the past tense.

Every datetime field is an :data:`~complaint_stream.schemas.base.AwareDatetime`: a naive time is
read as China Standard Time and every time serialises with its offset.

Payloads follow the TMF621 Trouble Ticket model where they overlap: ``status``
values, ``severity``, ``priority``, ``ticket_type`` = "complaint", ``channel``,
the customer as related party, notes and status-change history.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from complaint_stream.schemas.base import (
    AwareDatetime,
    Category,
    Channel,
    ComplaintEvent,
    ComplaintId,
    CustomerTier,
    EventModel,
    NoPhone,
    Payload,
    Priority,
    RiskFlag,
    Severity,
    TicketStatus,
)
from complaint_stream.schemas.money import Fen
from complaint_stream.schemas.submission import Attachment, Customer, Region, RegulatorAppeal

#: The customer's pseudonymous key: HMAC-SHA256 of the E.164 number, 32 lowercase hex digits
#: (:func:`complaint_stream.domain.privacy.customer_key`). Safe as a Kafka key and in statistics, and held
#: to that shape: the classifier keys its table and an internal topic by it, so free text here (a phone
#: number, say) would be copied into both.
CustomerKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
#: A province's GB/T 2260 code (``440000``).
ProvinceCode = Annotated[str, Field(pattern=r"^[0-9]{2}0000$")]


class Note(EventModel):
    """A free-text note on a complaint (TMF621 note)."""

    author: NoPhone = Field(min_length=1, max_length=64)
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
    home_province_code: ProvinceCode | None = Field(
        default=None, description="号码归属地: the GB/T 2260 code of the mobile number's home province"
                                  " (libphonenumber's data); billing, VAS and number portability route by it.")
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    attachments: tuple[Attachment, ...] = ()
    refers_to: ComplaintId | None = Field(default=None, description="The complaint the channel says this is about.")
    regulator: RegulatorAppeal | None = Field(default=None, description="Regulator case number and reply deadline.")


class ComplaintClassified(ComplaintEvent):
    """Category, risk, repeat and priority decided for one complaint (分类定级)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.classified.v1"

    customer_key: CustomerKey
    channel: Channel
    region: Region
    customer_tier: CustomerTier
    language: Literal["zh", "en", "mixed"] | None = None
    home_province_code: ProvinceCode | None = Field(default=None, description="号码归属地 (from the receipt).")
    received_at: AwareDatetime
    category: Category
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: tuple[str, ...] = ()
    risk_flags: tuple[RiskFlag, ...] = ()
    repeat_of: ComplaintId | None = Field(
        default=None, description="Earlier complaint, resolved or closed within the repeat window, that this new one"
                                  " repeats (重复投诉): a new case linked to it.")
    follow_up_of: ComplaintId | None = Field(
        default=None, description="Open complaint this contact follows up (催单): the lifecycle worker attaches it"
                                  " there instead of opening a case.")
    first_contact_at: AwareDatetime | None = Field(
        default=None, description="When the customer first complained about this issue, across repeats: the start"
                                  " of the regulatory period (absent: received_at).")
    priority: Priority
    severity: Severity
    priority_reasons: tuple[str, ...] = ()
    needs_review: bool = False
    classifier_version: str = ""

    @property
    def risk(self) -> bool:
        return bool(self.risk_flags)


AssignmentCause = Literal["routed", "returned", "reassigned", "reopened", "dequeued"]


class ComplaintAssigned(ComplaintEvent):
    """The complaint was given to a team (派单) and, when one had room, to an agent (坐席). Without an agent
    it waits in the team's queue at ``queue_position`` (1: next), and a later event of the same complaint
    (``cause`` ``dequeued``) gives it to an agent. ``rule`` and ``explanation``: why this team (the roster's
    rule that matched, line by line) and this agent. ``returns``: how many teams returned it before (退单).
    ``respond_by`` / ``resolve_by``: never set by this product (deadlines pause and re-time, so the SLA
    worker's events own them); kept so that events of the earlier shape still validate."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.assigned.v1"

    team: NoPhone = Field(min_length=1, max_length=64)
    agent_id: NoPhone | None = Field(default=None, min_length=1, max_length=64)
    priority: Priority
    assigned_at: AwareDatetime
    respond_by: AwareDatetime | None = Field(default=None, description="Deprecated, initial-only, not set by the"
                                             " router: the SLA worker's clock events own deadlines.")
    resolve_by: AwareDatetime | None = Field(default=None, description="Deprecated, initial-only, not set by the"
                                             " router: the SLA worker's clock events own deadlines.")
    reason: str = Field(default="", max_length=500)
    cause: AssignmentCause = "routed"
    rule: str = Field(default="", max_length=64)
    explanation: tuple[str, ...] = ()
    queue_position: int | None = Field(default=None, ge=1)
    returns: int = Field(default=0, ge=0, le=100)


class Resolution(EventModel):
    """How a complaint was resolved (处理结果): a code from the operator's list (refund, compensation,
    replacement, technical_fix, explanation, no_fault_found ...), what was really wrong (the root cause,
    separate from the category) and which department caused it, amounts in integer fen (分), a note."""

    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    root_cause: str = Field(default="", max_length=60, pattern=r"^([a-z][a-z0-9_]*)?$")
    responsible_department: NoPhone = Field(default="", max_length=60)
    refund_fen: Fen | None = Field(default=None, description="Amount refunded to the customer, in fen (分).")
    compensation_fen: Fen | None = Field(default=None, description="Compensation paid or credited, in fen (分).")
    note: str = Field(default="", max_length=2000)


class ComplaintStatusChanged(ComplaintEvent):
    """A status update from an agent's system or the CRM (处理进展). ``resolution`` comes with ``resolved``;
    a reopen (to inProgress from resolved or closed) carries a ``reason_code``. The envelope's ``source`` is
    the system that sent it: a stale update is judged against that source's last change."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.status-changed.v1"

    status: TicketStatus
    changed_at: AwareDatetime
    actor: NoPhone = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=2000)
    reason_code: str = Field(default="", max_length=40, pattern=r"^([a-z][a-z0-9_]*)?$")
    resolution: Resolution | None = None


class CallbackRecorded(ComplaintEvent):
    """One callback attempt after resolution (回访): reached or not, and the customer's answer to the survey
    on the configured scale (满意 / 基本满意 / 不满意 by default, or 1-5)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.callback.v1"

    outcome: Literal["reached", "unreached"]
    answer: str | None = Field(default=None, max_length=20)
    actor: NoPhone = Field(min_length=1, max_length=64)
    at: AwareDatetime
    note: str = Field(default="", max_length=2000)


class SlaClock(str, enum.Enum):
    """The SLA clocks a complaint has (时限). ``regulatory``: 15 calendar days from the customer's first
    complaint about the issue (MIIT appeal rules); ``regulator_reply``: a regulator-forwarded appeal's reply
    deadline, from the appeal itself."""

    FIRST_RESPONSE = "first_response"
    UPDATE = "update"
    RESOLUTION = "resolution"
    CALLBACK = "callback"
    REGULATORY = "regulatory"
    REGULATOR_REPLY = "regulator_reply"


class SlaStep(str, enum.Enum):
    """What happened to a clock."""

    STARTED = "started"
    PAUSED = "paused"      # the case waits on the customer (pending)
    RESUMED = "resumed"
    RETIMED = "retimed"    # a new target (priority or category changed), as if it had applied from the start
    WARNING = "warning"    # 时限预警: a fraction of the target counted (50 %, 75 % by default)
    BREACHED = "breached"  # 超时: the whole target counted
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class SlaEvent(ComplaintEvent):
    """What happened to one of a complaint's SLA clocks (时限): started, paused, resumed, re-timed, a warning,
    the breach, fulfilled or cancelled. The id is derived from the complaint, the clock, its run and the
    step, so a worker that restarts never publishes a step twice under a new id. Durations in seconds of
    the clock's calendar (working time for a working-time clock)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.sla.v1"

    clock: SlaClock
    step: SlaStep
    run: int = Field(ge=1, description="1 for the clock's first run; a reopen, or each new period of the update"
                                       " clock, counts on.")
    at: AwareDatetime = Field(description="When the step happened: a warning's or breach's own instant, even when"
                                          " it is observed later.")
    observed_at: AwareDatetime = Field(description="When the SLA worker found it (at or after ``at``).")
    due_at: AwareDatetime | None = Field(default=None, description="When the clock breaches if it keeps running"
                                                                   " (none while paused or stopped).")
    target_seconds: float = Field(gt=0)
    elapsed_seconds: float = Field(ge=0, description="Counted time by ``at``, on the clock's calendar.")
    paused_seconds: float = Field(default=0, ge=0, description="Calendar time spent paused so far.")
    fraction: float | None = Field(default=None, gt=0, le=1, description="A warning's or breach's share of the"
                                                                       " target.")
    on_time: bool | None = Field(default=None, description="fulfilled: whether the goal was met within the target.")
    calendar: Literal["24x7", "working"]
    rule: str = Field(default="default", max_length=64, description="The policy rule that set the target.")
    priority: Priority
    category: Category
    channel: Channel


class ComplaintEscalated(ComplaintEvent):
    """The complaint moved up the escalation ladder (升级): who must act now, and why. ``level`` is the rung
    of the policy's ladder (1 = team lead); a re-escalation (``repeat`` > 0) is a case that stayed breached.
    ``raise_priority_to``: the policy raises the case's priority (the lifecycle applies it)."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.escalated.v1"

    level: int = Field(ge=1, le=5)
    reason: str
    escalated_to: str = Field(description="The role on the ladder who must act (and the team, when known).")
    escalated_at: AwareDatetime
    priority: Priority
    clock: SlaClock | None = None
    step: SlaStep | None = None
    rule: str = Field(default="", max_length=64)
    repeat: int = Field(default=0, ge=0)
    regulatory_risk: bool = False
    raise_priority_to: Priority | None = None
    team: NoPhone | None = None


class ComplaintResolved(ComplaintEvent):
    """A complaint's outcome for downstream systems: CRM, billing refunds, notifications (办结).

    One event when it is resolved (``status`` resolved: the resolution, amounts, who handled it, timings)
    and one when it ends (closed: with the callback's satisfaction; cancelled or rejected: with the
    reason). The event id is derived from the complaint and the step (the n-th resolution), so a replay
    never produces a second refund under a new id. Times are calendar time; durations in seconds."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.resolved.v1"

    customer_key: CustomerKey
    status: Literal[TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.CANCELLED]
    category: Category
    priority: Priority | None = None
    channel: Channel | None = None
    resolution: Resolution | None = None
    resolved_at: AwareDatetime = Field(description="When this step happened: resolved, closed or cancelled.")
    received_at: AwareDatetime | None = None
    first_contact_at: AwareDatetime | None = Field(default=None, description="Start of the regulatory period.")
    first_response_at: AwareDatetime | None = None
    handling_seconds: float | None = Field(default=None, ge=0, description="Receipt to this resolution, calendar.")
    owner: NoPhone | None = Field(default=None, description="首问负责人: who took the complaint first.")
    handlers: tuple[NoPhone, ...] = ()
    team: NoPhone | None = None
    regulator: RegulatorAppeal | None = None
    sequence: int = Field(default=1, ge=1, description="Which resolution of the complaint this is (after reopens).")
    reopen_count: int = Field(default=0, ge=0)
    follow_ups: int = Field(default=0, ge=0)
    repeat_of: ComplaintId | None = None
    merged_into: ComplaintId | None = None
    reason: str = Field(default="", max_length=500, description="Why it was cancelled or rejected.")
    callback: Literal["reached", "unreached", "none"] | None = None
    satisfaction: str | None = Field(default=None, description="The callback's answer (回访满意度), on the configured"
                                                               " scale.")
    satisfied: bool | None = None
    status_history: tuple[StatusChange, ...] = ()
    notes: tuple[Note, ...] = ()

    @property
    def refund_fen(self) -> int | None:
        return None if self.resolution is None else self.resolution.refund_fen


class ComplaintReopened(ComplaintEvent):
    """A resolved or closed complaint is open again (重新处理): the customer rejected the resolution inside the
    reopen window, a callback found them dissatisfied, or a supervisor reopened it. Downstream systems
    holding the resolution, and the classifier's history, learn that the case is open again."""

    event_type: ClassVar[str] = "org.complaintstream.complaint.reopened.v1"

    customer_key: CustomerKey
    reopened_at: AwareDatetime
    reason_code: str
    actor: NoPhone
    owner: NoPhone | None = None
    reopen_count: int = Field(ge=1)


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


class CommandBase(ComplaintEvent):
    """A supervisor's command: who asked and why are recorded on the case timeline."""

    requested_by: NoPhone = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class ReclassifyComplaint(CommandBase):
    """Manual command: correct the category (改类). The correction also goes where training picks it up."""

    event_type: ClassVar[str] = "org.complaintstream.command.reclassify.v1"

    category: Category


class MergeComplaints(CommandBase):
    """Manual command, keyed by the survivor: ``merged_id`` is the same problem (合并); it ends cancelled
    with a link here, and this case keeps both timelines."""

    event_type: ClassVar[str] = "org.complaintstream.command.merge.v1"

    merged_id: ComplaintId


class CancelComplaint(CommandBase):
    """Manual command: cancel a complaint (撤销), e.g. the customer withdrew it."""

    event_type: ClassVar[str] = "org.complaintstream.command.cancel.v1"

    reason_code: str = Field(default="withdrawn", max_length=40, pattern=r"^[a-z][a-z0-9_]*$")


class ReopenComplaint(CommandBase):
    """Manual command: reopen a resolved or closed complaint (重新处理), inside the reopen window."""

    event_type: ClassVar[str] = "org.complaintstream.command.reopen.v1"

    reason_code: str = Field(default="supervisor", max_length=40, pattern=r"^[a-z][a-z0-9_]*$")


class ReturnComplaint(CommandBase):
    """A team returns a complaint outside its remit (退单): it is routed again, never to ``team`` again;
    after the roster's ``max_returns`` the manual triage desk decides."""

    event_type: ClassVar[str] = "org.complaintstream.command.return.v1"

    team: NoPhone = Field(min_length=1, max_length=64)
    reason_code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")


class ReassignComplaint(ComplaintEvent):
    """Manual command: move a complaint to another team or agent (改派)."""

    event_type: ClassVar[str] = "org.complaintstream.command.reassign.v1"

    team: NoPhone = Field(min_length=1, max_length=64)
    agent_id: NoPhone | None = Field(default=None, min_length=1, max_length=64)
    requested_by: NoPhone = Field(min_length=1, max_length=64)
    reason: str = ""


class ChangePriority(ComplaintEvent):
    """Manual command: set a complaint's priority (调整优先级)."""

    event_type: ClassVar[str] = "org.complaintstream.command.change-priority.v1"

    priority: Priority
    requested_by: NoPhone = Field(min_length=1, max_length=64)
    reason: str = ""


class AddNote(ComplaintEvent):
    """Manual command: attach a note to a complaint (备注)."""

    event_type: ClassVar[str] = "org.complaintstream.command.add-note.v1"

    note: Note


AgentPresence = Literal["available", "away", "offline"]


class AgentPresenceChanged(Payload):
    """An agent's presence (坐席状态) from the agents' desktop or a supervisor, keyed by team: available
    agents take work; away and offline ones keep what they hold and take nothing new."""

    event_type: ClassVar[str] = "org.complaintstream.agent.presence.v1"

    team: NoPhone = Field(min_length=1, max_length=64)
    agent_id: NoPhone = Field(min_length=1, max_length=64)
    presence: AgentPresence
    at: AwareDatetime
    requested_by: NoPhone = Field(default="agent", min_length=1, max_length=64)


class PreviousHandler(ComplaintEvent):
    """Internal to the router, with the roster's ``repeat_to: previous_handler`` (重复投诉回原处理人): a
    repeat complaint asks the complaint it repeats who handled it (``ask``, keyed by that complaint's id;
    ``other_id`` is the repeat), and the router holding that complaint answers (``answer``, keyed by the
    repeat's id; ``other_id`` is the repeated complaint): its team and last handler, or ``known: false``
    when it was never routed here or has been forgotten."""

    event_type: ClassVar[str] = "org.complaintstream.assign.previous-handler.v1"

    kind: Literal["ask", "answer"]
    other_id: ComplaintId
    at: AwareDatetime
    known: bool = False
    team: NoPhone | None = Field(default=None, min_length=1, max_length=64)
    agent_id: NoPhone | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _answer_only(self) -> PreviousHandler:
        if self.other_id == self.complaint_id:
            raise ValueError("a complaint does not repeat itself (other_id equals complaint_id)")
        if self.kind == "ask" and (self.known or self.team or self.agent_id):
            raise ValueError("an ask carries no handler (known, team and agent_id are the answer's)")
        if self.known != (self.team is not None):
            raise ValueError("a known previous handler names its team; an unknown one names none")
        if self.agent_id is not None and self.team is None:
            raise ValueError("an agent_id comes with its team")
        return self


TeamWorkKind = Literal["offer", "withdraw", "release", "reassign", "reprioritise"]


class TeamWork(ComplaintEvent):
    """Internal to assignment, keyed by team: the router (complaint-keyed) tells a team's dispatcher to take
    a complaint (``offer``: its skill, language, priority and the route), give it up (``withdraw``: returned
    or moved elsewhere), that it ended (``release``: resolved, closed, cancelled) or that a supervisor gave it
    to ``agent_id`` (``reassign``), or that its priority changed (``reprioritise``: a waiting complaint takes
    its new place in the queue)."""

    event_type: ClassVar[str] = "org.complaintstream.assign.team-work.v1"

    kind: TeamWorkKind
    team: NoPhone = Field(min_length=1, max_length=64)
    complaint_id: ComplaintId
    at: AwareDatetime
    priority: Priority = Priority.P3
    skill: Category | None = None
    language: Literal["zh", "en"] | None = None
    preferred_agent: NoPhone | None = None
    agent_id: NoPhone | None = None
    cause: AssignmentCause = "routed"
    rule: str = Field(default="", max_length=64)
    explanation: tuple[str, ...] = ()
    returns: int = Field(default=0, ge=0, le=100)
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _agent_for_reassign(self) -> TeamWork:
        if self.kind == "reassign" and self.agent_id is None:
            raise ValueError("a reassign names the agent (agent_id)")
        return self
