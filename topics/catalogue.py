"""The topic catalogue: every topic, declared once, as data.

Keys. Every lifecycle topic (received ... resolved, status, SLA, escalations,
commands) is keyed by complaint id and has the same partition count, so all
events of one complaint land in the same partition number everywhere and a
worker that joins them (SLA clocks: assigned + status) is co-partitioned.
Stages re-key in exactly two places:

* intake submissions are keyed by ``<channel>:<channel_ref>`` so the intake
  worker's de-duplication table sees every retry of one submission in one
  partition (the complaint id does not exist yet);
* the classifier re-keys received and resolved complaints by customer key
  (HMAC of the phone number) into ``complaints.classify.by-customer.v1`` so
  the per-customer history that detects repeat complaints is co-partitioned
  with the stream that reads and updates it.

Later stages that aggregate by team or region re-key the same way through
internal topics declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from complaint_stream.schemas import (
    AddNote,
    ChangePriority,
    ChannelSubmission,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintStatusChanged,
    DeadLetter,
    HotSpotDetected,
    Payload,
    ReassignComplaint,
    SlaEvent,
    StatisticsUpdated,
)

DAY_MS = 24 * 3600 * 1000
LIFECYCLE_PARTITIONS = 6  # every complaint-keyed topic; change them together (co-partitioning)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, layout, retention, key meaning and the payloads it carries."""

    name: str
    description: str
    key: str  # what the record key is, e.g. "complaint_id"
    values: tuple[type[Payload], ...]
    partitions: int = LIFECYCLE_PARTITIONS
    replication_factor: int = 3
    retention_ms: int = 30 * DAY_MS
    cleanup_policy: str = "delete"  # delete | compact | compact,delete
    min_insync_replicas: int = 2
    internal: bool = False  # written and read by one worker only
    extra_config: Mapping[str, str] = field(default_factory=dict)

    def config(self, replication_factor: int) -> dict[str, str]:
        """Topic-level configs as the broker expects them."""
        cfg = {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(min(self.min_insync_replicas, replication_factor)),
            "compression.type": "producer",
        }
        cfg.update(self.extra_config)
        return cfg


SUBMISSIONS = TopicSpec(
    name="complaints.intake.submissions.v1",
    description="Raw complaints from channel systems (hotline, app, web, store, SMS, email, WeChat, regulator).",
    key="<channel>:<channel_ref>, so every retry of one submission meets the same de-duplication state",
    values=(ChannelSubmission,),
    retention_ms=14 * DAY_MS,  # longer than the 7-day de-duplication window
)
DEAD_LETTERS = TopicSpec(
    name="complaints.deadletter.v1",
    description="Records any stage could not accept: original bytes, where they came from, and why.",
    key="the original record's key",
    values=(DeadLetter,),
    partitions=3,
    retention_ms=90 * DAY_MS,
)
RECEIVED = TopicSpec(
    name="complaints.received.v1",
    description="Validated, normalised, de-duplicated complaints with their complaint id (受理).",
    key="complaint_id",
    values=(ComplaintReceived,),
    retention_ms=90 * DAY_MS,
)
CLASSIFIED = TopicSpec(
    name="complaints.classified.v1",
    description="Category, risk flags, repeat link and priority of each complaint (分类定级).",
    key="complaint_id",
    values=(ComplaintClassified,),
    retention_ms=90 * DAY_MS,
)
ASSIGNED = TopicSpec(
    name="complaints.assigned.v1",
    description="Team/agent assignment with response and resolution deadlines (派单).",
    key="complaint_id",
    values=(ComplaintAssigned,),
    retention_ms=90 * DAY_MS,
)
STATUS = TopicSpec(
    name="complaints.status.v1",
    description="Status updates from agents and the CRM (TMF621 status values).",
    key="complaint_id",
    values=(ComplaintStatusChanged,),
    retention_ms=90 * DAY_MS,
)
SLA_EVENTS = TopicSpec(
    name="complaints.sla.v1",
    description="SLA clocks: a deadline at risk, breached, or met.",
    key="complaint_id",
    values=(SlaEvent,),
    retention_ms=90 * DAY_MS,
)
ESCALATIONS = TopicSpec(
    name="complaints.escalations.v1",
    description="Escalations up the ladder when a deadline is at risk or broken (升级).",
    key="complaint_id",
    values=(ComplaintEscalated,),
    retention_ms=90 * DAY_MS,
)
RESOLVED = TopicSpec(
    name="complaints.resolved.v1",
    description="Final outcomes for downstream systems: CRM, billing refunds, customer notifications (办结).",
    key="complaint_id",
    values=(ComplaintResolved,),
    retention_ms=365 * DAY_MS,
)
COMMANDS = TopicSpec(
    name="complaints.commands.v1",
    description="Manual commands from supervisors: reassign, change priority, add note.",
    key="complaint_id",
    values=(ReassignComplaint, ChangePriority, AddNote),
    retention_ms=90 * DAY_MS,
)
STATISTICS = TopicSpec(
    name="complaints.statistics.v1",
    description="Windowed complaint counts by category, channel, region, priority and risk. No personal data.",
    key="<dimension>:<window_start>; compacted so the latest count of each window wins",
    values=(StatisticsUpdated,),
    partitions=3,
    cleanup_policy="compact,delete",
    retention_ms=30 * DAY_MS,
)
HOTSPOTS = TopicSpec(
    name="complaints.hotspots.v1",
    description="Hot spots: unusual concentrations of complaints in one district and category (热点).",
    key="<province>:<city>:<district>:<category>",
    values=(HotSpotDetected,),
    partitions=3,
    retention_ms=30 * DAY_MS,
)
CLASSIFY_BY_CUSTOMER = TopicSpec(
    name="complaints.classify.by-customer.v1",
    description="Internal to the classifier: received and resolved complaints re-keyed by customer for repeat detection.",
    key="customer_key (HMAC-SHA256 of the phone number)",
    values=(ComplaintReceived, ComplaintResolved),
    retention_ms=7 * DAY_MS,
    internal=True,
)

ALL: tuple[TopicSpec, ...] = (
    SUBMISSIONS, DEAD_LETTERS, RECEIVED, CLASSIFIED, ASSIGNED, STATUS, SLA_EVENTS,
    ESCALATIONS, RESOLVED, COMMANDS, STATISTICS, HOTSPOTS, CLASSIFY_BY_CUSTOMER,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in ALL}


class UnknownTopic(KeyError):
    """A name that is not in the catalogue."""


def lookup(name: str) -> TopicSpec:
    """Find a topic by full name or by a unique short name (``received``, ``deadletter``)."""
    if name in BY_NAME:
        return BY_NAME[name]
    matches = [t for t in ALL if name in t.name.split(".")]
    if len(matches) == 1:
        return matches[0]
    raise UnknownTopic(f"no catalogued topic {name!r}; known: {', '.join(t.name for t in ALL)}")
