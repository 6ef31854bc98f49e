"""Event schemas: pydantic v2 models, the CloudEvents envelope and the codec.

Import models from here: ``from schemas import ChannelSubmission, Envelope, wrap``.
"""

from complaint_stream.schemas.base import (
    Category,
    Channel,
    CustomerTier,
    EventModel,
    Payload,
    Priority,
    RiskFlag,
    SEVERITY_OF_PRIORITY,
    Severity,
    TicketStatus,
)
from complaint_stream.schemas.codec import PAYLOADS, REGISTRY, DecodeError, dead_letter, decode, encode
from complaint_stream.schemas.deadletter import DeadLetter, DeadLetterError, FieldError
from complaint_stream.schemas.envelope import CONTENT_TYPE, Envelope, envelope_type, wrap
from complaint_stream.schemas.events import (
    AddNote,
    ChangePriority,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintStatusChanged,
    HotSpotDetected,
    Note,
    ReassignComplaint,
    SlaEvent,
    StatisticsUpdated,
    StatusChange,
)
from complaint_stream.schemas.submission import Attachment, ChannelSubmission, Customer, Limits, Region

__all__ = [name for name in dir() if not name.startswith("_")]
