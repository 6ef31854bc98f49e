"""The case record (工单) and the events of the lifecycle worker.

* :class:`CaseUpdated` on the lifecycle topic (``topics.CASES``): every change applied to a case, with the
  case's state after it (status, priority, owner, handler, ...). No personal data: the SLA and
  statistics workers and dashboards read it.
* :class:`CaseLink` on an internal topic: one case telling another (keyed by the other) that a
  follow-up is to be attached to it, or that a merge is asked for or done.
* :class:`CommunicationRequested` on the notifications topic (``topics.NOTIFICATIONS``): a message the SMS / email /
  WeChat / app gateway is to send. The recipient (phone number or email) travels here and in the
  case record only: never in logs, metrics or statistics.
* :class:`ClassificationCorrected` on the corrections topic (``topics.CORRECTIONS``): a supervisor's correction of a
  category with the complaint's text (phone numbers masked), for the classifier's training.
* :class:`CaseRecord`: what the lifecycle worker keeps per complaint (its state), and what
  ``complaints show`` and ``GET /complaints/{id}`` return.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Literal

from pydantic import Field

from complaint_stream.schemas.base import (
    AwareDatetime,
    Category,
    Channel,
    ComplaintEvent,
    ComplaintId,
    EventModel,
    NoPhone,
    Priority,
    TicketStatus,
)
from complaint_stream.schemas.events import (
    ComplaintClassified,
    ComplaintReceived,
    CustomerKey,
    Note,
    Resolution,
)
from complaint_stream.schemas.submission import RegulatorAppeal


class CaseChange(enum.StrEnum):
    """What happened to a case: the kinds of timeline entries and of :class:`CaseUpdated` events."""

    RECEIVED = "received"              # 受理
    CLASSIFIED = "classified"          # 分类定级
    OPENED = "opened"                  # the case exists: received and classified, not a follow-up
    ASSIGNED = "assigned"              # 派单
    STATUS = "status"                  # a status change from an agent's system or the CRM
    NOTE = "note"                      # 备注
    FOLLOW_UP = "follow_up"            # 催单: another contact about this open case
    PRIORITY = "priority"              # priority changed (command or follow-up policy)
    RECLASSIFIED = "reclassified"      # 改类
    REASSIGN_REQUESTED = "reassign_requested"
    RETURNED = "returned"              # 退单: a team returned it as outside its remit; it is routed again
    MERGE_REQUESTED = "merge_requested"
    MERGED = "merged"                  # another case merged into this one (survivor)
    MERGE_REFUSED = "merge_refused"
    RESOLVED = "resolved"              # 办结
    REOPENED = "reopened"              # 重新处理
    CALLBACK_DUE = "callback_due"      # 回访到期
    CALLBACK = "callback"              # 回访
    CLOSED = "closed"                  # 归档
    CANCELLED = "cancelled"            # 撤销 (also: merged into another case)
    REJECTED = "rejected"
    SLA = "sla"                        # 时限预警/超时 (from the SLA worker)
    ESCALATED = "escalated"            # 升级
    MESSAGE = "message"                # a message to the customer was requested
    REPEAT = "repeat"                  # opened as a repeat of an earlier case (重复投诉)


class TimelineEntry(EventModel):
    """One step of a case's closed-loop record: when, what, who, and the words of it."""

    at: AwareDatetime
    change: CaseChange
    actor: NoPhone = ""
    status: TicketStatus | None = None
    detail: str = Field(default="", max_length=4000)
    reason_code: str = ""
    event_id: str = ""
    from_complaint: ComplaintId | None = Field(default=None, description="Set on entries merged in from another case,"
                                                                         " and on follow-ups (the contact's id).")


class CaseUpdated(ComplaintEvent):
    """One change applied to a case, with the case as it is after it. No personal data."""

    event_type: ClassVar[str] = "org.complaintstream.case.updated.v1"

    change: CaseChange
    sequence: int = Field(ge=1, description="Position of this change in the case's history (1, 2, ...).")
    at: AwareDatetime = Field(description="When the change happened (the update's own time).")
    actor: NoPhone = ""
    reason_code: str = ""
    status: TicketStatus
    previous_status: TicketStatus | None = None
    category: Category
    priority: Priority
    channel: Channel
    region_code: str | None = Field(default=None, description="Most precise GB/T 2260 code known for the problem.")
    owner: NoPhone | None = None
    handler: NoPhone | None = None
    team: NoPhone | None = None
    received_at: AwareDatetime
    first_contact_at: AwareDatetime
    first_response_at: AwareDatetime | None = Field(default=None, description="When a person first answered"
                                                    " (首次响应): the first agent to take or update the case.")
    regulator_reply_by: AwareDatetime | None = None
    follow_ups: int = 0
    reopen_count: int = 0
    related: ComplaintId | None = Field(default=None, description="The follow-up, merged case or repeated case.")


class CaseLink(ComplaintEvent):
    """Internal: one case tells another (``complaint_id``, the record key) something that changes it."""

    event_type: ClassVar[str] = "org.complaintstream.case.link.v1"

    kind: Literal["follow_up", "follow_up_refused", "merge_request", "merged", "merge_refused"]
    from_id: ComplaintId
    at: AwareDatetime
    customer_key: CustomerKey | None = None
    actor: NoPhone = ""
    reason: str = ""
    rule: str = ""
    channel: Channel | None = None
    text: str = Field(default="", max_length=4000)
    entries: tuple[TimelineEntry, ...] = Field(default=(), max_length=2000)
    follow_ups: int = 0
    resolved_at: AwareDatetime | None = Field(default=None, description="follow_up_refused: when the case the"
                                                                         " contact referred to was resolved.")


MessageChannel = Literal["sms", "email", "wechat", "app"]


class CommunicationRequested(ComplaintEvent):
    """A message for the customer (TMF681 communicationMessage), for the gateway to send as it is."""

    event_type: ClassVar[str] = "org.complaintstream.communication.requested.v1"

    template_id: str
    language: Literal["zh", "en"]
    channel: MessageChannel
    recipient: str = Field(description="Phone number (E.164) or email address. Personal data: this topic and the"
                                       " case record only.")
    subject: str = ""
    text: str = Field(description="The rendered message.")
    parameters: dict[str, str] = Field(default_factory=dict)
    priority: Priority
    requested_at: AwareDatetime = Field(description="When the step that asked for it happened.")
    send_after: AwareDatetime = Field(description="Not before this time: quiet hours (21:00-08:00 local) push"
                                                  " non-P1 messages to the next morning; the worker holds them until then.")


class ClassificationCorrected(ComplaintEvent):
    """A supervisor corrected a category (改类): a labelled example for the classifier's training."""

    event_type: ClassVar[str] = "org.complaintstream.classification.corrected.v1"

    text: str = Field(description="The complaint's text, phone numbers masked.")
    channel: Channel
    language: Literal["zh", "en", "mixed"] | None = None
    previous_category: Category
    category: Category
    corrected_by: str
    reason: str = ""
    corrected_at: AwareDatetime
    classifier_version: str = ""


class Callback(EventModel):
    """The callback after resolution (回访): when it is due, attempts made, outcome and answer."""

    due_at: AwareDatetime
    attempts: int = 0
    outcome: Literal["reached", "unreached"] | None = None
    answer: str | None = None
    satisfied: bool | None = None
    at: AwareDatetime | None = None
    announced: int = Field(default=0, description="Attempts announced as due (callback_due events).")


class HeldMessage(EventModel):
    """A message held back until its ``send_after`` (quiet hours)."""

    event: CommunicationRequested
    event_id: str


class ParkedUpdate(EventModel):
    """An update about a complaint this worker has not seen yet (topics are read independently, so on
    catch-up an update can come before the receipt): kept for a grace period, then dead-lettered."""

    raw: str = Field(description="The update's CloudEvent as JSON.")
    event_id: str
    topic: str = Field(description="The topic it came from (for its dead letter).")
    parked_at: AwareDatetime


class CaseRecord(EventModel):
    """One complaint's record, built only from events (the lifecycle worker's state).

    ``kind``: ``waiting`` until both the receipt and the classification are in (or only updates parked for
    it); ``case`` once opened; ``follow_up`` when the contact was attached to another open case
    (``attached_to``) instead of opening one.
    """

    complaint_id: ComplaintId
    kind: Literal["waiting", "case", "follow_up"] = "waiting"
    received: ComplaintReceived | None = None
    classified: ComplaintClassified | None = None
    status: TicketStatus | None = None
    category: Category | None = None
    priority: Priority | None = None
    owner: NoPhone | None = Field(default=None, description="首问负责人: the first person who took it, until it closes.")
    handler: NoPhone | None = Field(default=None, description="Who handles it now (transfers change this, not owner).")
    team: NoPhone | None = None
    handlers: tuple[NoPhone, ...] = ()
    attached_to: ComplaintId | None = None
    repeat_of: ComplaintId | None = None
    follow_ups: tuple[ComplaintId, ...] = ()
    merged_into: ComplaintId | None = None
    merged_from: tuple[ComplaintId, ...] = ()
    first_contact_at: AwareDatetime | None = None
    first_response_at: AwareDatetime | None = None
    regulator: RegulatorAppeal | None = None
    resolution: Resolution | None = None
    resolved_at: AwareDatetime | None = None
    resolutions: int = 0
    callback: Callback | None = None
    closed_at: AwareDatetime | None = None
    reopen_count: int = 0
    timeline: tuple[TimelineEntry, ...] = ()
    notes: tuple[Note, ...] = ()
    applied: tuple[str, ...] = Field(default=(), description="Ids of the events applied (replays are no-ops).")
    last_change: dict[str, AwareDatetime] = Field(default_factory=dict,
                                                  description="Per source system, the time of its last change.")
    sequence: int = 0
    messages: tuple[str, ...] = Field(default=(), description="Message keys requested (one acknowledgement each).")
    held: tuple[HeldMessage, ...] = ()
    last_message_at: AwareDatetime | None = None
    parked: tuple[ParkedUpdate, ...] = ()
    updated_at: AwareDatetime | None = None


class CaseArchived(ComplaintEvent):
    """A case record leaving the lifecycle worker's memory (``retention_days`` after the case ended): kept
    on the compacted archive topic for as long as a regulator appeal may need it. Personal data: the
    record as the worker kept it."""

    event_type: ClassVar[str] = "org.complaintstream.case.archived.v1"

    record: CaseRecord
    archived_at: AwareDatetime
