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

Every topic names who writes and who reads it: pipeline workers (:class:`Worker`,
including the planned stages) and parties outside the pipeline (:class:`External`).
The README's topic table (:func:`render_topic_table`) and the AsyncAPI
operations (``schemas.export``) are generated from these declarations.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from complaint_stream.schemas import (
    AddNote,
    AgentPresenceChanged,
    CallbackRecorded,
    CancelComplaint,
    CaseArchived,
    CaseLink,
    CaseUpdated,
    ChangePriority,
    ChannelSubmission,
    ClassificationCorrected,
    CommunicationRequested,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    DeadLetter,
    HotSpotDetected,
    MergeComplaints,
    Payload,
    PreviousHandler,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    ReturnComplaint,
    SlaEvent,
    StatisticsUpdated,
    TeamWork,
)

DAY_MS = 24 * 3600 * 1000
LIFECYCLE_PARTITIONS = 6  # every complaint-keyed topic; change them together (co-partitioning)
LIFECYCLE_RETENTION_MS = 90 * DAY_MS
#: What a regulator appeal may need: the customer may appeal long after the complaint, and the operator must
#: show the record (receipt, classification, resolution). Received, classified, resolved and the lifecycle
#: table's changelog (compacted: the latest record of each case, never deleted by time) keep at least this.
APPEAL_RETENTION_MS = 2 * 366 * DAY_MS


class Worker(enum.StrEnum):
    """A stage of the pipeline (a worker and its consumer group)."""

    INTAKE = "intake"
    CLASSIFY = "classify"
    LIFECYCLE = "lifecycle"  # the case record: status, follow-ups, resolution, callback, customer messages
    ASSIGN = "assign"        # routing (派单): which team, returns, reassignment; complaint-keyed
    DISPATCH = "dispatch"    # each team's agents, capacity and queue; team-keyed
    SLA = "sla"              # SLA clocks, warnings, breaches and escalation
    STATS = "stats"          # planned: windowed counts and hot spots

    @property
    def planned(self) -> bool:
        """Declared in the catalogue but not built yet."""
        return self not in (Worker.INTAKE, Worker.CLASSIFY, Worker.LIFECYCLE, Worker.ASSIGN, Worker.DISPATCH,
                            Worker.SLA)


class External(enum.StrEnum):
    """A party outside the pipeline that writes or reads a topic."""

    CHANNEL_SYSTEMS = "channel systems"  # through ChannelPublisher or `complaints publish`
    AGENTS = "agents"
    CRM = "CRM"
    SUPERVISORS = "supervisors"
    BILLING = "billing refunds"
    NOTIFICATIONS = "customer notifications"
    DASHBOARDS = "dashboards"
    OPERATIONS = "operations"
    OPERATORS = "operators"  # of the pipeline: they inspect and replay dead letters


Party = Worker | External
EVERY_WORKER: tuple[Worker, ...] = tuple(Worker)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, layout, retention, key meaning, the payloads it carries, who writes and reads it."""

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
    producers: tuple[Party, ...] = ()
    consumers: tuple[Party, ...] = ()
    key_label: str = ""  # the key in a few words (README table); empty = ``key``

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

    @property
    def producing_workers(self) -> tuple[Worker, ...]:
        return tuple(p for p in self.producers if isinstance(p, Worker))

    @property
    def consuming_workers(self) -> tuple[Worker, ...]:
        return tuple(p for p in self.consumers if isinstance(p, Worker))


def lifecycle_topic(name: str, description: str, values: tuple[type[Payload], ...], *,
                    producers: tuple[Party, ...], consumers: tuple[Party, ...],
                    retention_ms: int = LIFECYCLE_RETENTION_MS) -> TopicSpec:
    """A topic of one complaint's lifecycle: keyed by complaint id, co-partitioned with the others."""
    return TopicSpec(name=name, description=description, key="complaint_id", key_label="complaint id",
                     values=values, partitions=LIFECYCLE_PARTITIONS, retention_ms=retention_ms,
                     producers=producers, consumers=consumers)


SUBMISSIONS = TopicSpec(
    name="complaints.intake.submissions.v1",
    description="Raw complaints from channel systems (hotline, app, web, store, SMS, email, WeChat, regulator).",
    key="<channel>:<channel_ref>, so every retry of one submission meets the same de-duplication state",
    key_label="`<channel>:<channel_ref>`",
    values=(ChannelSubmission,),
    retention_ms=14 * DAY_MS,  # longer than the 7-day de-duplication window
    # the lifecycle worker submits a new complaint when a customer rejects a resolution after the reopen window
    producers=(External.CHANNEL_SYSTEMS, Worker.LIFECYCLE),
    consumers=(Worker.INTAKE,),
)
DEAD_LETTERS = TopicSpec(
    name="complaints.deadletter.v1",
    description="Records any stage could not accept: original bytes, where they came from, and why.",
    key="the original record's key",
    key_label="original key",
    values=(DeadLetter,),
    partitions=3,
    retention_ms=90 * DAY_MS,
    producers=(*EVERY_WORKER, External.CHANNEL_SYSTEMS),  # the publisher dead-letters the lines it rejects
    consumers=(External.OPERATORS,),
)
RECEIVED = lifecycle_topic(
    "complaints.received.v1",
    "Validated, normalised, de-duplicated complaints with their complaint id (受理).",
    (ComplaintReceived,),
    producers=(Worker.INTAKE,),
    consumers=(Worker.CLASSIFY, Worker.LIFECYCLE),
    retention_ms=APPEAL_RETENTION_MS,
)
CLASSIFY_BY_CUSTOMER = TopicSpec(
    name="complaints.classify.by-customer.v1",
    description="Internal to the classifier: received, resolved and reopened complaints re-keyed by customer for"
                " follow-up and repeat detection.",
    key="customer_key (HMAC-SHA256 of the phone number)",
    key_label="customer key",
    values=(ComplaintReceived, ComplaintResolved, ComplaintReopened),
    retention_ms=7 * DAY_MS,
    internal=True,
    producers=(Worker.CLASSIFY,),
    consumers=(Worker.CLASSIFY,),
)
CLASSIFIED = lifecycle_topic(
    "complaints.classified.v1",
    "Category, risk flags, repeat or follow-up link and priority of each complaint (分类定级).",
    (ComplaintClassified,),
    producers=(Worker.CLASSIFY,),
    consumers=(Worker.ASSIGN, Worker.LIFECYCLE, Worker.STATS),
    retention_ms=APPEAL_RETENTION_MS,
)
ASSIGNED = lifecycle_topic(
    "complaints.assigned.v1",
    "Team and agent of each complaint, or its place in the team's queue, with the rule that routed it (派单).",
    (ComplaintAssigned,),
    producers=(Worker.DISPATCH,),
    consumers=(Worker.LIFECYCLE,),
)
ASSIGN_WORK = TopicSpec(
    name="complaints.assign.work.v1",
    description="Internal to assignment: the router telling a team's dispatcher to take, give up or release a"
                " complaint, or that a supervisor gave it to an agent.",
    key="team id, so one team's agents, load and queue are held by one dispatcher instance",
    key_label="team id",
    values=(TeamWork,),
    retention_ms=14 * DAY_MS,
    internal=True,
    producers=(Worker.ASSIGN,),
    consumers=(Worker.DISPATCH,),
)
ASSIGN_LINKS = TopicSpec(
    name="complaints.assign.links.v1",
    description="Internal to the router: a repeat complaint asking the complaint it repeats who handled it, and"
                " the answer (roster repeat_to: previous_handler).",
    key="complaint_id of the complaint asked (ask) or answered (answer)",
    key_label="complaint id",
    values=(PreviousHandler,),
    retention_ms=14 * DAY_MS,
    internal=True,
    producers=(Worker.ASSIGN,),
    consumers=(Worker.ASSIGN,),
)
AGENTS = TopicSpec(
    name="complaints.agents.v1",
    description="Agents' presence (available, away, offline) from the agents' desktop or a supervisor (坐席状态).",
    key="team id",
    key_label="team id",
    values=(AgentPresenceChanged,),
    retention_ms=14 * DAY_MS,
    producers=(External.AGENTS, External.SUPERVISORS),
    consumers=(Worker.DISPATCH,),
)
STATUS = lifecycle_topic(
    "complaints.status.v1",
    "Status updates (TMF621 status values, resolutions) and callbacks from agents' systems and the CRM.",
    (ComplaintStatusChanged, CallbackRecorded),
    producers=(External.AGENTS, External.CRM),
    consumers=(Worker.LIFECYCLE,),
)
SLA_EVENTS = lifecycle_topic(
    "complaints.sla.v1",
    "SLA clocks (时限): each clock started, paused, resumed, re-timed, warned, breached, fulfilled or cancelled.",
    (SlaEvent,),
    producers=(Worker.SLA,),
    consumers=(Worker.LIFECYCLE, Worker.STATS),
)
ESCALATIONS = lifecycle_topic(
    "complaints.escalations.v1",
    "Escalations up the ladder when a deadline is at risk or broken (升级).",
    (ComplaintEscalated,),
    producers=(Worker.SLA,),
    consumers=(Worker.LIFECYCLE, External.SUPERVISORS),
)
RESOLVED = lifecycle_topic(
    "complaints.resolved.v1",
    "Outcomes for downstream systems: resolved (with amounts), closed, cancelled, reopened (办结).",
    (ComplaintResolved, ComplaintReopened),
    producers=(Worker.LIFECYCLE,),
    consumers=(Worker.CLASSIFY, External.CRM, External.BILLING),
    retention_ms=APPEAL_RETENTION_MS,
)
CASES = lifecycle_topic(
    "complaints.lifecycle.v1",
    "Every change applied to a case, with the case after it (status, priority, owner, handler). No personal data.",
    (CaseUpdated,),
    producers=(Worker.LIFECYCLE,),
    consumers=(Worker.ASSIGN, Worker.SLA, Worker.STATS, External.CRM, External.DASHBOARDS),
)
CASE_LINKS = TopicSpec(
    name="complaints.lifecycle.links.v1",
    description="Internal to the lifecycle worker: a case telling another about a follow-up or a merge.",
    key="complaint_id of the case it changes",
    key_label="complaint id",
    values=(CaseLink,),
    retention_ms=14 * DAY_MS,
    internal=True,
    producers=(Worker.LIFECYCLE,),
    consumers=(Worker.LIFECYCLE,),
)
CASE_ARCHIVE = TopicSpec(
    name="complaints.lifecycle.archive.v1",
    description="Case records that left the lifecycle worker's memory after their case ended; personal data.",
    key="complaint_id; compacted, so each case keeps its last record",
    key_label="complaint id (compacted)",
    values=(CaseArchived,),
    cleanup_policy="compact",
    retention_ms=APPEAL_RETENTION_MS,
    producers=(Worker.LIFECYCLE,),
    consumers=(External.OPERATORS, External.CRM),
)
NOTIFICATIONS = lifecycle_topic(
    "complaints.notifications.v1",
    "Messages for the customer (acknowledgement, result, survey): the SMS/email/WeChat/app gateway sends them.",
    (CommunicationRequested,),
    producers=(Worker.LIFECYCLE,),
    consumers=(External.NOTIFICATIONS,),
    retention_ms=30 * DAY_MS,
)
CORRECTIONS = TopicSpec(
    name="complaints.corrections.v1",
    description="Supervisors' category corrections with the complaint text (phones masked), for classifier training.",
    key="complaint_id; compacted, so the last correction of a complaint wins",
    key_label="complaint id (compacted)",
    values=(ClassificationCorrected,),
    partitions=3,
    cleanup_policy="compact",
    retention_ms=APPEAL_RETENTION_MS,
    producers=(Worker.LIFECYCLE,),
    consumers=(External.OPERATORS,),
)
COMMANDS = lifecycle_topic(
    "complaints.commands.v1",
    "Supervisors' commands: reassign, change priority, add note, reclassify, merge, cancel, reopen; a team's"
    " return of a complaint outside its remit (退单).",
    (ReassignComplaint, ChangePriority, AddNote, ReclassifyComplaint, MergeComplaints, CancelComplaint,
     ReopenComplaint, ReturnComplaint),
    producers=(External.SUPERVISORS, External.AGENTS),
    consumers=(Worker.ASSIGN, Worker.LIFECYCLE),
)
STATISTICS = TopicSpec(
    name="complaints.statistics.v1",
    description="Windowed complaint counts by category, channel, region, priority and risk. No personal data.",
    key="<dimension>:<window_start>; compacted so the latest count of each window wins",
    key_label="`<dimension>:<window_start>` (compacted)",
    values=(StatisticsUpdated,),
    partitions=3,
    cleanup_policy="compact,delete",
    retention_ms=30 * DAY_MS,
    producers=(Worker.STATS,),
    consumers=(External.DASHBOARDS,),
)
HOTSPOTS = TopicSpec(
    name="complaints.hotspots.v1",
    description="Hot spots: unusual concentrations of complaints in one district and category (热点).",
    key="<province>:<city>:<district>:<category>",
    key_label="`<province>:<city>:<district>:<category>`",
    values=(HotSpotDetected,),
    partitions=3,
    retention_ms=30 * DAY_MS,
    producers=(Worker.STATS,),
    consumers=(External.OPERATIONS,),
)

ALL: tuple[TopicSpec, ...] = (
    SUBMISSIONS, DEAD_LETTERS, RECEIVED, CLASSIFY_BY_CUSTOMER, CLASSIFIED, ASSIGNED, ASSIGN_WORK, ASSIGN_LINKS, AGENTS,
    STATUS, SLA_EVENTS, ESCALATIONS, RESOLVED, CASES, CASE_LINKS, CASE_ARCHIVE, NOTIFICATIONS, CORRECTIONS, COMMANDS,
    STATISTICS, HOTSPOTS,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in ALL}


def produced_by(worker: Worker | str) -> tuple[TopicSpec, ...]:
    """The topics a worker writes."""
    return tuple(t for t in ALL if Worker(worker) in t.producers)


def consumed_by(worker: Worker | str) -> tuple[TopicSpec, ...]:
    """The topics a worker reads."""
    return tuple(t for t in ALL if Worker(worker) in t.consumers)


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


# -- the README's topic table --------------------------------------------------------------------

TABLE_HEADER = "| topic | key | carries | written by | read by |"


def _parties(parties: Iterable[Party]) -> str:
    """Workers by name, parties outside the pipeline in italics."""
    return ", ".join(str(p) if isinstance(p, Worker) else f"*{p}*" for p in parties)


def render_topic_table(specs: Iterable[TopicSpec] = ALL) -> str:
    """The markdown table of topics (README): name, key, payloads, producers and consumers."""
    lines = [TABLE_HEADER, "|---|---|---|---|---|"]
    for t in specs:
        name = f"`{t.name}`" + (" (internal)" if t.internal else "")
        carries = ", ".join(f"`{v.__name__}`" for v in t.values)
        lines.append(f"| {name} | {t.key_label or t.key} | {carries} | {_parties(t.producers)} | "
                     f"{_parties(t.consumers)} |")
    return "\n".join(lines) + "\n"


def replace_topic_table(markdown: str, specs: Iterable[TopicSpec] = ALL) -> str:
    """``markdown`` with its topic table regenerated."""
    return replace_markdown_table(markdown, TABLE_HEADER, render_topic_table(specs))


def replace_markdown_table(markdown: str, header: str, table: str) -> str:
    """``markdown`` with the table that starts at the line ``header`` (up to the first line that is not
    a table row) replaced by ``table``: generated tables in the README cannot drift from their source."""
    lines = markdown.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == header)
    except StopIteration:
        raise ValueError(f"no table with the header line {header!r} in the document") from None
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + table + "".join(lines[end:])
