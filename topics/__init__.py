"""Topic catalogue. Import topic objects from here; never spell a topic name elsewhere."""

from complaint_stream.topics.catalogue import (
    ALL,
    ASSIGNED,
    BY_NAME,
    CLASSIFIED,
    CLASSIFY_BY_CUSTOMER,
    COMMANDS,
    DEAD_LETTERS,
    ESCALATIONS,
    HOTSPOTS,
    LIFECYCLE_PARTITIONS,
    RECEIVED,
    RESOLVED,
    SLA_EVENTS,
    STATISTICS,
    STATUS,
    SUBMISSIONS,
    TopicSpec,
    UnknownTopic,
    lookup,
)

__all__ = [name for name in dir() if not name.startswith("_")]
