"""Event schemas: pydantic v2 models, the CloudEvents envelope and the codec.

Import models from here: ``from complaint_stream.schemas import ChannelSubmission, Envelope, wrap``.
"""

from complaint_stream.schemas.base import (
    COMPLAINT_ID_PATTERN,
    DERIVED_COMPLAINT_ID_PATTERN,
    REGISTRY,
    SEVERITY_OF_PRIORITY,
    Category,
    Channel,
    ComplaintEvent,
    ComplaintId,
    CustomerTier,
    DuplicateEventType,
    EventModel,
    Payload,
    Priority,
    RiskFlag,
    Severity,
    TicketStatus,
)
from complaint_stream.schemas.case import (
    Callback,
    CaseArchived,
    CaseChange,
    CaseLink,
    CaseRecord,
    CaseUpdated,
    ClassificationCorrected,
    CommunicationRequested,
    HeldMessage,
    MessageChannel,
    ParkedUpdate,
    TimelineEntry,
)
from complaint_stream.schemas.codec import (
    DEAD_LETTER_KEY_HEAD,
    DEAD_LETTER_VALUE_HEAD,
    PAYLOADS,
    DecodeError,
    Decoder,
    dead_letter,
    decode,
    decoder_for,
    encode,
    field_errors,
)
from complaint_stream.schemas.deadletter import (
    DeadLetter,
    DeadLetterError,
    DeadLetterKind,
    FieldError,
)
from complaint_stream.schemas.envelope import (
    CONTENT_TYPE,
    Envelope,
    envelope_type,
    wrap,
)
from complaint_stream.schemas.events import (
    AddNote,
    AgentPresenceChanged,
    CallbackRecorded,
    CancelComplaint,
    ChangePriority,
    CommandBase,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    CustomerKey,
    HotSpotDetected,
    MergeComplaints,
    Note,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    Resolution,
    ReturnComplaint,
    SlaEvent,
    StatisticsUpdated,
    StatusChange,
    TeamWork,
)
from complaint_stream.schemas.submission import (
    Attachment,
    ChannelSubmission,
    Customer,
    Limits,
    Region,
    RegulatorAppeal,
)

__all__ = [
    "Callback", "CallbackRecorded", "CaseArchived", "CancelComplaint", "CaseChange", "CaseLink", "CaseRecord", "CaseUpdated",
    "ClassificationCorrected", "CommandBase", "CommunicationRequested", "ComplaintReopened", "HeldMessage",
    "MergeComplaints", "MessageChannel", "ParkedUpdate", "ReclassifyComplaint", "ReopenComplaint", "Resolution",
    "RegulatorAppeal", "TimelineEntry", "AgentPresenceChanged", "ReturnComplaint", "TeamWork",
    "COMPLAINT_ID_PATTERN", "CONTENT_TYPE", "DEAD_LETTER_KEY_HEAD", "DEAD_LETTER_VALUE_HEAD",
    "DERIVED_COMPLAINT_ID_PATTERN", "PAYLOADS", "REGISTRY",
    "SEVERITY_OF_PRIORITY",
    "AddNote", "Attachment", "Category", "ChangePriority", "Channel", "ChannelSubmission", "ComplaintAssigned",
    "ComplaintClassified", "ComplaintEscalated", "ComplaintEvent", "ComplaintId", "ComplaintReceived",
    "ComplaintResolved", "ComplaintStatusChanged", "Customer", "CustomerKey", "CustomerTier", "DeadLetter",
    "DeadLetterError", "DeadLetterKind", "DecodeError", "Decoder", "DuplicateEventType", "Envelope", "EventModel",
    "FieldError", "HotSpotDetected", "Limits", "Note", "Payload", "Priority", "ReassignComplaint", "Region",
    "RiskFlag", "Severity", "SlaEvent", "StatisticsUpdated", "StatusChange", "TicketStatus",
    "dead_letter", "decode", "decoder_for", "encode", "envelope_type", "field_errors", "wrap",
]
