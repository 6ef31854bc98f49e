"""Hostile records for the fault-injection suite (issue 8), and what a worker must make of each.

Every registered worker (``workers.registry.WORKERS``) joins: its input topics are its binding's ``inputs``
and, when it re-keys, its ``repartition`` topic (written directly, as a buggy upstream or anyone with
topic access could). Records are generated with hypothesis strategies; what the worker must do with one
is computed with the pure decoder of its stage (``decoder_for(stage.consumes)`` with
``stage.decode_context(now)``): a record that does not decode must come out as a dead letter of that kind
(with its source coordinates, size and hash), one that decodes must have its effect.

Valid envelopes are built per payload type (:data:`BUILDERS`); a future worker that consumes a type with
no builder makes the suite fail with a message saying which builder to add, rather than test it
without valid records.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import inspect
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.assignment.roster import Roster
from complaint_stream.domain.intake import IntakePolicy, accept_submission, event_id
from complaint_stream.kafka.clients import client_config
from complaint_stream.schemas import (
    CONTENT_TYPE,
    DEAD_LETTER_KEY_HEAD,
    DEAD_LETTER_VALUE_HEAD,
    REGISTRY,
    SEVERITY_OF_PRIORITY,
    AddNote,
    AgentPresenceChanged,
    CallbackRecorded,
    CancelComplaint,
    CaseChange,
    CaseLink,
    CaseUpdated,
    Category,
    ChangePriority,
    ChannelSubmission,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    CustomerTier,
    DecodeError,
    Envelope,
    MergeComplaints,
    Note,
    Payload,
    PreviousHandler,
    Priority,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    Resolution,
    ReturnComplaint,
    SlaClock,
    SlaEvent,
    SlaStep,
    TeamWork,
    TicketStatus,
    decoder_for,
    encode,
    wrap,
)
from complaint_stream.schemas.codec import DEAD_LETTER_HEADERS_MAX
from complaint_stream.topics import RECEIVED, TopicSpec
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.wiring import Binding
from tests.support.factories import submission

HEADERS = (("content-type", CONTENT_TYPE.encode("ascii")),)
#: The broker's default ``message.max.bytes`` is 1 MiB + 12 bytes and kafka-python's ``max_request_size``
#: 1 MiB: a value of up to this many bytes (with a short key and headers) is accepted by both.
NEAR_LIMIT_MAX = 1_040_000
NEAR_LIMIT_MIN = 900 * 1024
OVER_LIMIT = 1_200_000  # refused: by the producer (default max_request_size) or, with a larger one, the broker


# -- who reads what --------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputTopic:
    """One topic a registered worker reads, with the decoder and context its records are judged by."""

    worker: str
    binding: Binding
    topic: TopicSpec

    @property
    def stage(self) -> Any:
        return self.binding.stage

    @property
    def accepted(self) -> tuple[type[Payload], ...]:
        """Every type the worker's decoder accepts on this topic (it decodes with its stage's ``consumes``)."""
        return tuple(self.stage.consumes)

    @property
    def sent(self) -> tuple[type[Payload], ...]:
        """The valid types a producer puts on this topic: the catalogue's types for it, when the worker reads
        its inputs directly (the lifecycle: each type comes from its own topic); every accepted type when
        it re-keys them first (any of its types may come on any input)."""
        if self.binding.repartition is None:
            here = tuple(t for t in self.accepted if t in self.topic.values)
            if here:
                return here
        return self.accepted

    @property
    def state_keyed(self) -> bool:
        """Records here are keyed by the stage's state key (the stream topic); else by complaint id."""
        return self.topic.name == self.binding.stream_topic.name

    def decode(self, value: bytes | None, now: datetime) -> Envelope[Any]:
        return decoder_for(self.accepted)(value, self.stage.decode_context(now))


def input_topics(settings: Any) -> list[InputTopic]:
    """Every input topic of every registered worker: the binding's inputs and its re-keying topic. A topic
    two workers read (received: classify and lifecycle) is here once per reader."""
    out = []
    for name, entry in WORKERS.items():
        binding = entry.load().binding(settings)
        topics = list(binding.inputs)
        if binding.repartition is not None and binding.repartition not in topics:
            topics.append(binding.repartition)
        out += [InputTopic(name, binding, t) for t in topics]
    return out


@dataclass(frozen=True)
class Source:
    """One topic the test writes into, with every registered worker that reads it (each judges every record
    with its own decoder, and dead-letters under its own stage name)."""

    readers: tuple[InputTopic, ...]

    @property
    def name(self) -> str:
        return self.readers[0].topic.name

    @property
    def first(self) -> InputTopic:
        return self.readers[0]

    @property
    def types(self) -> tuple[type[Payload], ...]:
        """The valid types sent here: what a producer of the topic sends to any of its readers."""
        return tuple(dict.fromkeys(t for r in self.readers for t in r.sent))

    @property
    def accepted(self) -> frozenset[type[Payload]]:
        """Types at least one reader decodes."""
        return frozenset(t for r in self.readers for t in r.accepted)


def sources(inputs: Sequence[InputTopic]) -> list[Source]:
    """The distinct topics of ``inputs`` (in registry order), each with its readers."""
    readers: dict[str, list[InputTopic]] = {}
    for t in inputs:
        readers.setdefault(t.topic.name, []).append(t)
    return [Source(tuple(rs)) for rs in readers.values()]


# -- valid envelopes -------------------------------------------------------------------------------

#: Numbers of the pool's complaints (phone numbers 13x9xxxxxxx): above any counter of a world.
POOL_FIRST = 90_000_000


class World:
    """Makes valid envelopes with unique references, and remembers every phone number it put anywhere.

    Its ``pool`` is the run's complaints: ``pool_size`` received complaints, each published once, valid, on
    the received topic (:func:`pool_records`), so that they exist; the updates the lifecycle reads are about
    one of them 7 times in 8 (applied or refused by its rules), else about a complaint no worker receives
    (parked, then dead-lettered as unknown). The pool depends only on the prefix and ``now``, so worlds made
    alike (one per topic, each with a counter range of its own) share it."""

    def __init__(self, settings: Any, now: datetime, prefix: str, first: int = 500_000, pool_size: int = 0):
        self.now = now
        self.prefix = prefix
        self.policy = IntakePolicy(dedup_window=timedelta(days=settings.dedup_window_days),
                                   customer_key_secret=settings.customer_key_secret)
        self._counter = itertools.count(first)
        self.phones: set[str] = set()  # national 11-digit numbers
        self.pool: list[Envelope[ComplaintReceived]] = [self._pooled(i) for i in range(pool_size)]

    def number(self) -> int:
        return next(self._counter)

    def phone(self, national: str) -> str:
        self.phones.add(national)
        return national

    def submission(self, variant: int = 0, minutes_ago: int | None = None, *, phone: str | None = None
                   ) -> Envelope[ChannelSubmission]:
        """A valid submission: channel, text, region and tier chosen by ``variant`` (the factory's
        index), a unique channel reference and phone number, ``minutes_ago`` old (default: by variant)."""
        n = self.number()
        at = self.now - timedelta(minutes=variant % 600 if minutes_ago is None else minutes_ago)
        obj = submission(variant, at, channel_ref=f"{self.prefix}-{n}")
        obj["customer"]["msisdn"] = self.phone(phone or f"13{(n % 9) + 1}{n:08d}")
        obj["occurred_at"] = at.isoformat()
        return submission_envelope(validate_submission(obj, now=self.now))

    def received(self, variant: int = 0, minutes_ago: int | None = None, *, phone: str | None = None
                 ) -> Envelope[ComplaintReceived]:
        env = self.submission(variant, minutes_ago, phone=phone)
        return accept_submission(env, None, self.now, self.policy).event  # type: ignore[union-attr]

    def _pooled(self, i: int) -> Envelope[ComplaintReceived]:
        """The pool's ``i``-th complaint, the same in every world of this prefix and time."""
        n = POOL_FIRST + i
        at = self.now - timedelta(minutes=i % 600)
        obj = submission(i, at, channel_ref=f"{self.prefix}-P{i}")
        obj["customer"]["msisdn"] = self.phone(f"13{(n % 9) + 1}{n:08d}")
        obj["occurred_at"] = at.isoformat()
        env = submission_envelope(validate_submission(obj, now=self.now))
        env = env.model_copy(update={"id": f"{self.prefix}-pool-{i}"})  # a derived complaint id: from this
        return accept_submission(env, None, self.now, self.policy).event  # type: ignore[union-attr]

    def complaint(self, variant: int) -> ComplaintReceived:
        """The complaint an update is about: one of the pool 7 times in 8 (when there is a pool), else one
        no worker ever receives (the lifecycle parks the update, then dead-letters it as unknown)."""
        if self.pool and variant % 8:
            return self.pool[(variant // 8) % len(self.pool)].data
        return self.received(variant).data

    def other_complaint(self, variant: int, than: str) -> ComplaintReceived:
        """Another complaint (for a merge, a link, a follow-up): existing but for every 5th variant."""
        c = self.complaint(variant // 3 + 1 if variant % 5 else 0)
        return c if c.complaint_id != than or not variant % 7 else self.received(variant).data

    def at(self, variant: int, spread_minutes: int = 600) -> datetime:
        """A time within ``spread_minutes`` before now, chosen by ``variant``."""
        return self.now - timedelta(minutes=variant % spread_minutes, seconds=variant % 61)

    def resolved(self, variant: int = 0, received: Envelope[ComplaintReceived] | None = None
                 ) -> Envelope[ComplaintResolved]:
        r = (received or self.received(variant)).data
        statuses = [TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.CANCELLED]
        status = statuses[variant % 4]
        answers = [("satisfied", True), ("basically_satisfied", True), ("dissatisfied", False)]
        answer, satisfied = answers[variant % 3] if status is TicketStatus.CLOSED and variant % 2 else (None, None)
        resolution = None if status in (TicketStatus.REJECTED, TicketStatus.CANCELLED) else Resolution(
            code=["refund", "technical_fix", "explanation"][variant % 3],
            refund_fen=100 * (variant % 50) if variant % 3 == 0 else None)
        payload = ComplaintResolved(complaint_id=r.complaint_id, customer_key=r.customer_key, status=status,
                                    category=list(Category)[variant % len(Category)], resolution=resolution,
                                    resolved_at=self.now - timedelta(minutes=variant % 300),
                                    received_at=r.received_at, first_contact_at=r.received_at,
                                    callback="reached" if answer else None, satisfaction=answer, satisfied=satisfied,
                                    sequence=1 + variant % 2, reopen_count=variant % 2)
        return wrap(payload, source="/workers/lifecycle", subject=r.complaint_id)

    def reopened(self, variant: int = 0, received: Envelope[ComplaintReceived] | None = None
                 ) -> Envelope[ComplaintReopened]:
        r = (received or self.received(variant)).data
        payload = ComplaintReopened(complaint_id=r.complaint_id, customer_key=r.customer_key,
                                    reopened_at=self.now - timedelta(minutes=variant % 200),
                                    reason_code=["customer_rejected", "dissatisfied", "supervisor"][variant % 3],
                                    actor="agent-7", owner=None if variant % 2 else "agent-7",
                                    reopen_count=1 + variant % 3)
        return wrap(payload, source="/workers/lifecycle", subject=r.complaint_id)

    # -- what the lifecycle reads besides receipts: each about a complaint chosen by the variant ----------

    def classified(self, variant: int = 0) -> Envelope[ComplaintClassified]:
        """A classification (classify's output, sent directly): of an existing complaint mostly (racing
        classify's own), now and then a follow-up (催单) of another complaint or a repeat of one."""
        r = self.complaint(variant)
        priority = list(Priority)[variant % 4]
        other = self.other_complaint(variant, r.complaint_id).complaint_id
        payload = ComplaintClassified(
            complaint_id=r.complaint_id, customer_key=r.customer_key, channel=r.channel, region=r.region,
            customer_tier=list(CustomerTier)[variant % len(CustomerTier)], received_at=r.received_at,
            category=list(Category)[variant % len(Category)], confidence=(variant % 101) / 100,
            explanation=("keyword: 信号",) if variant % 2 else (), repeat_of=other if variant % 11 == 1 else None,
            follow_up_of=other if variant % 13 == 1 else None,
            first_contact_at=r.received_at - timedelta(days=variant % 3) if variant % 3 else None,
            priority=priority, severity=SEVERITY_OF_PRIORITY[priority],
            priority_reasons=("tier",) if variant % 4 == 0 else (), classifier_version="fault-1")
        return wrap(payload, source="/workers/classify", subject=r.complaint_id,
                    event_id=None if variant % 3 else event_id(r.complaint_id, "classified"),  # classify's id
                    time=self.at(variant, 60))

    def assigned(self, variant: int = 0) -> Envelope[ComplaintAssigned]:
        r = self.complaint(variant)
        at = self.at(variant, 300)
        payload = ComplaintAssigned(complaint_id=r.complaint_id, team=["network", "billing", "vip-desk"][variant % 3],
                                    agent_id=None if variant % 4 == 0 else f"agent-{variant % 40}",
                                    priority=list(Priority)[variant % 4], assigned_at=at,
                                    respond_by=at + timedelta(hours=2), resolve_by=at + timedelta(hours=48),
                                    reason=["", "skill match", "escalated"][variant % 3])
        return wrap(payload, source="/workers/assign", subject=r.complaint_id, time=at)

    STATUSES = (TicketStatus.IN_PROGRESS, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.PENDING,
                TicketStatus.HELD, TicketStatus.CLOSED, TicketStatus.RESOLVED, TicketStatus.CANCELLED,
                TicketStatus.REJECTED, TicketStatus.ACKNOWLEDGED, TicketStatus.IN_PROGRESS)

    def status(self, variant: int = 0, *, to: TicketStatus | None = None, complaint: str | None = None,
               at: datetime | None = None) -> Envelope[ComplaintStatusChanged]:
        """A status update from an agent's system or the CRM: every status, a resolution mostly with a known
        code, a reopen mostly with a reason, times spread over ten hours (so some are stale)."""
        cid = complaint or self.complaint(variant).complaint_id
        status = to or self.STATUSES[variant % len(self.STATUSES)]
        at = at or self.at(variant)
        resolution = None
        if status is TicketStatus.RESOLVED and variant % 9:
            codes = ["refund", "technical_fix", "explanation", "compensation", "teleportation"]
            code = codes[variant % 5]
            resolution = Resolution(code=code, root_cause=["", "cell_outage", "billing_error"][variant % 3],
                                    refund_fen=500 * (variant % 7) if code == "refund" else None,
                                    compensation_fen=1000 if code == "compensation" else None,
                                    note="" if variant % 2 else "refunded the double charge")
        payload = ComplaintStatusChanged(
            complaint_id=cid, status=status, changed_at=at, actor=f"agent-{variant % 40}",
            note=["", "called the customer", "waiting for the field team"][variant % 3],
            reason_code="" if variant % 5 == 0 else ["customer_rejected", "rework", "closed_by_crm"][variant % 3],
            resolution=resolution)
        return wrap(payload, source=["/crm", "/agents/desk"][variant % 2], subject=cid, time=at)

    def callback(self, variant: int = 0) -> Envelope[CallbackRecorded]:
        cid = self.complaint(variant).complaint_id
        at = self.at(variant, 120)
        reached = variant % 4 != 0
        answers = ["satisfied", "满意", "基本满意", "不满意", "5", "1", "Dissatisfied", "meh"]
        payload = CallbackRecorded(complaint_id=cid, outcome="reached" if reached else "unreached",
                                   answer=answers[variant % len(answers)] if reached else None,
                                   actor=f"callback-{variant % 9}", at=at,
                                   note="" if variant % 2 else "customer busy, called again")
        return wrap(payload, source="/crm", subject=cid, time=at)

    def note(self, variant: int = 0) -> Envelope[AddNote]:
        cid = self.complaint(variant).complaint_id
        at = self.at(variant, 300)
        texts = ["customer called again", "客户要求尽快处理", "field team booked for Thursday"]
        payload = AddNote(complaint_id=cid, note=Note(author=f"sup-{variant % 5}", text=texts[variant % 3], at=at))
        return wrap(payload, source="/supervisors", subject=cid, time=at)

    def change_priority(self, variant: int = 0) -> Envelope[ChangePriority]:
        cid = self.complaint(variant).complaint_id
        payload = ChangePriority(complaint_id=cid, priority=list(Priority)[variant % 4],
                                 requested_by=f"sup-{variant % 5}", reason="customer is a journalist")
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 300))

    def reclassify(self, variant: int = 0) -> Envelope[ReclassifyComplaint]:
        cid = self.complaint(variant).complaint_id
        payload = ReclassifyComplaint(complaint_id=cid, category=list(Category)[variant % len(Category)],
                                      requested_by=f"sup-{variant % 5}", reason="wrong category")
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 300))

    def reassign(self, variant: int = 0) -> Envelope[ReassignComplaint]:
        cid = self.complaint(variant).complaint_id
        payload = ReassignComplaint(complaint_id=cid, team=["network", "billing"][variant % 2],
                                    agent_id=None if variant % 3 == 0 else f"agent-{variant % 40}",
                                    requested_by=f"sup-{variant % 5}", reason="workload")
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 300))

    def cancel(self, variant: int = 0) -> Envelope[CancelComplaint]:
        cid = self.complaint(variant).complaint_id
        payload = CancelComplaint(complaint_id=cid, requested_by=f"sup-{variant % 5}",
                                  reason="the customer withdrew it", reason_code=["withdrawn", "duplicate"][variant % 2])
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 300))

    def reopen(self, variant: int = 0) -> Envelope[ReopenComplaint]:
        cid = self.complaint(variant).complaint_id
        payload = ReopenComplaint(complaint_id=cid, requested_by=f"sup-{variant % 5}", reason="not fixed",
                                  reason_code=["supervisor", "customer_rejected"][variant % 2])
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 120))

    def merge(self, variant: int = 0) -> Envelope[MergeComplaints]:
        """Merge another complaint into this one: mostly an existing one, now and then itself."""
        cid = self.complaint(variant).complaint_id
        merged = cid if variant % 17 == 3 else self.other_complaint(variant, cid).complaint_id
        payload = MergeComplaints(complaint_id=cid, merged_id=merged, requested_by=f"sup-{variant % 5}",
                                  reason="same outage")
        return wrap(payload, source="/supervisors", subject=cid, time=self.at(variant, 300))

    def sla(self, variant: int = 0) -> Envelope[SlaEvent]:
        cid = self.complaint(variant).complaint_id
        at = self.at(variant, 300)
        step = [SlaStep.WARNING, SlaStep.BREACHED, SlaStep.FULFILLED, SlaStep.STARTED][variant % 4]
        c = self.complaint(variant)
        payload = SlaEvent(complaint_id=cid, clock=list(SlaClock)[variant % len(SlaClock)], step=step, run=1,
                           at=at, observed_at=at, due_at=at + timedelta(minutes=30), target_seconds=3600,
                           elapsed_seconds=1800 + 1800 * (step is SlaStep.BREACHED), calendar="24x7",
                           fraction=0.5 if step is SlaStep.WARNING else None, priority=list(Priority)[variant % 4],
                           category=Category.BILLING, channel=c.channel)
        return wrap(payload, source="/workers/sla", subject=cid, time=at)

    def returned(self, variant: int = 0) -> Envelope[ReturnComplaint]:
        """A team returning a complaint (退单): mostly a team of the roster, now and then one that does not
        hold it or does not exist."""
        cid = self.complaint(variant).complaint_id
        team = "no-such-team" if variant % 11 == 5 else _ROSTER_TEAMS[variant % len(_ROSTER_TEAMS)]
        payload = ReturnComplaint(complaint_id=cid, team=team, reason_code=["not_our_remit", "wrong_region"][variant % 2],
                                  requested_by=f"lead-{variant % 7}", reason="outside our remit")
        return wrap(payload, source="/teams", subject=cid, time=self.at(variant, 300))

    def presence(self, variant: int = 0) -> Envelope[AgentPresenceChanged]:
        """An agent's presence, keyed by team: an agent of the team, or (every 9th) one the team lacks."""
        team = _ROSTER_TEAMS[variant % len(_ROSTER_TEAMS)]
        agents = _ROSTER_AGENTS[team]
        agent = f"ghost-{variant % 3}" if variant % 9 == 4 else agents[variant % len(agents)]
        at = self.at(variant, 300)
        payload = AgentPresenceChanged(team=team, agent_id=agent, presence=["available", "away", "offline"][variant % 3],
                                       at=at)
        return wrap(payload, source="/agents", subject=agent, time=at)

    def team_work(self, variant: int = 0) -> Envelope[TeamWork]:
        """The router's work for a team, written as anyone with topic access could."""
        cid = self.complaint(variant).complaint_id
        team = _ROSTER_TEAMS[variant % len(_ROSTER_TEAMS)]
        kind = ["offer", "offer", "release", "withdraw", "reassign", "reprioritise"][variant % 6]
        agents = _ROSTER_AGENTS[team]
        at = self.at(variant, 300)
        payload = TeamWork(kind=kind, team=team, complaint_id=cid, at=at, priority=list(Priority)[variant % 4],
                           agent_id=agents[variant % len(agents)] if kind == "reassign" or variant % 10 == 1 else None,
                           rule="test", explanation=("from the fault suite",))
        return wrap(payload, source="/workers/assign", subject=cid, time=at)

    def previous_handler(self, variant: int = 0) -> Envelope[PreviousHandler]:
        """The router's own question (a repeat asking who handled the complaint it repeats) or its answer,
        written as anyone with topic access could."""
        target = self.complaint(variant)
        other = self.other_complaint(variant, target.complaint_id)
        if other.complaint_id == target.complaint_id:  # a complaint never repeats itself (the schema refuses it)
            other = self.received(variant).data
        at = self.at(variant, 300)
        if variant % 2 == 0:
            payload = PreviousHandler(kind="ask", complaint_id=target.complaint_id, other_id=other.complaint_id, at=at)
        else:
            team = _ROSTER_TEAMS[variant % len(_ROSTER_TEAMS)] if variant % 4 == 1 else None
            agents = _ROSTER_AGENTS[team] if team is not None else ()
            payload = PreviousHandler(kind="answer", complaint_id=target.complaint_id, other_id=other.complaint_id,
                                      at=at, known=team is not None, team=team,
                                      agent_id=agents[variant % len(agents)] if agents and variant % 8 == 1 else None)
        return wrap(payload, source="/workers/assign", subject=target.complaint_id, time=at)

    def case_updated(self, variant: int = 0) -> Envelope[CaseUpdated]:
        """A change the lifecycle published (the assign worker reads them): ends, reopens, priority changes."""
        r = self.complaint(variant)
        at = self.at(variant, 300)
        change, status = [(CaseChange.OPENED, TicketStatus.ACKNOWLEDGED), (CaseChange.RESOLVED, TicketStatus.RESOLVED),
                          (CaseChange.CLOSED, TicketStatus.CLOSED), (CaseChange.REOPENED, TicketStatus.IN_PROGRESS),
                          (CaseChange.PRIORITY, TicketStatus.IN_PROGRESS),
                          (CaseChange.CANCELLED, TicketStatus.CANCELLED)][variant % 6]
        payload = CaseUpdated(complaint_id=r.complaint_id, change=change, sequence=1 + variant % 9, at=at, status=status,
                              category=list(Category)[variant % len(Category)], priority=list(Priority)[variant % 4],
                              channel=r.channel, received_at=r.received_at, first_contact_at=r.received_at,
                              handler=None if variant % 3 else f"agent-{variant % 40}")
        return wrap(payload, source="/workers/lifecycle", subject=r.complaint_id, time=at)

    def escalated(self, variant: int = 0) -> Envelope[ComplaintEscalated]:
        cid = self.complaint(variant).complaint_id
        at = self.at(variant, 300)
        payload = ComplaintEscalated(complaint_id=cid, level=1 + variant % 5, reason="resolution deadline at risk",
                                     escalated_to=["team-lead", "duty-manager", "regional-director"][variant % 3],
                                     escalated_at=at, priority=list(Priority)[variant % 4],
                                     raise_priority_to=Priority.P1 if variant % 7 == 3 else None)
        return wrap(payload, source="/workers/sla", subject=cid, time=at)

    def link(self, variant: int = 0) -> Envelope[CaseLink]:
        """One case telling another (the lifecycle's own internal topic, written as anyone with topic access
        could): a follow-up of the customer's own case or another's, a merge request, or the answers."""
        target = self.complaint(variant)
        source = self.other_complaint(variant, target.complaint_id)
        kind = ["follow_up", "follow_up", "merge_request", "follow_up_refused", "merged", "merge_refused"][variant % 6]
        at = self.at(variant, 300)
        fields: dict[str, Any] = {}
        if kind == "follow_up":
            fields = {"customer_key": target.customer_key if variant % 4 else source.customer_key,
                      "channel": source.channel, "text": "还没有处理好，请尽快", "actor": source.channel.value}
        elif kind == "merge_request":
            fields = {"actor": f"sup-{variant % 5}", "reason": "same outage"}
        elif kind == "follow_up_refused":
            fields = {"rule": ["case_not_open", "customer_mismatch", "unknown_complaint"][variant % 3],
                      "reason": "not open", "resolved_at": at - timedelta(hours=1) if variant % 2 else None}
        elif kind == "merged":
            fields = {"actor": f"sup-{variant % 5}", "reason": "same outage", "follow_ups": variant % 3}
        else:
            fields = {"rule": ["already_resolved", "case_ended", "not_a_case"][variant % 3], "reason": "no"}
        payload = CaseLink(complaint_id=target.complaint_id, kind=kind, from_id=source.complaint_id, at=at, **fields)
        return wrap(payload, source="/workers/lifecycle", subject=target.complaint_id, time=at)

    def valid(self, payload_type: type[Payload], variant: int = 0) -> Envelope[Any]:
        try:
            build = BUILDERS[payload_type]
        except KeyError:
            raise LookupError(
                f"no valid-envelope builder for {payload_type.__name__}, which a registered worker consumes:"
                f" add one to tests/fault/hostile.py BUILDERS so the fault suite sends valid records too"
            ) from None
        return build(self, variant)


_ROSTER = Roster.load()
#: The packaged roster's teams and their agents: valid work and presence name them (the workers refuse others).
_ROSTER_TEAMS = tuple(t.id for t in _ROSTER.teams)
_ROSTER_AGENTS = {t.id: tuple(a.id for a in t.agents) for t in _ROSTER.teams}


#: A valid envelope of each payload type a worker consumes, varied by an integer hypothesis draws.
BUILDERS: dict[type[Payload], Callable[[World, int], Envelope[Any]]] = {
    ChannelSubmission: lambda w, v: w.submission(v),
    ComplaintReceived: lambda w, v: w.received(v),
    ComplaintResolved: lambda w, v: w.resolved(v),
    ComplaintReopened: lambda w, v: w.reopened(v),
    ComplaintClassified: World.classified,
    ComplaintAssigned: World.assigned,
    ComplaintStatusChanged: lambda w, v: w.status(v),
    CallbackRecorded: World.callback,
    AddNote: World.note,
    ChangePriority: World.change_priority,
    ReclassifyComplaint: World.reclassify,
    ReassignComplaint: World.reassign,
    CancelComplaint: World.cancel,
    ReopenComplaint: World.reopen,
    MergeComplaints: World.merge,
    SlaEvent: World.sla,
    ComplaintEscalated: World.escalated,
    CaseLink: World.link,
    ReturnComplaint: World.returned,
    AgentPresenceChanged: World.presence,
    TeamWork: World.team_work,
    PreviousHandler: World.previous_handler,
    CaseUpdated: World.case_updated,
}


# -- the record --------------------------------------------------------------------------------

@dataclass
class Rec:
    """One record to publish, with how it was made (``kind``) and, once sent, where it went."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = HEADERS
    kind: str = ""
    partition: int | None = None
    offset: int | None = None
    error: str | None = None  # why it is not on the topic (refused by the producer or broker)

    @property
    def coords(self) -> tuple[str, int | None, int | None]:
        return (self.topic, self.partition, self.offset)

    @property
    def size(self) -> int:
        return len(self.value or b"")


def sha256(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()


# -- strategies ----------------------------------------------------------------------------------

PHONE_FORMS = ("{n}", "+86{n}", "{a} {b} {c}", "{a}-{b}-{c}", "0086{n}", "+86 {a} {b} {c}", "86-{n}")


def national_numbers() -> st.SearchStrategy[str]:
    return st.builds(lambda second, rest: f"1{second}{rest:09d}", st.integers(3, 9), st.integers(0, 10**9 - 1))


def phone_text(world: World) -> st.SearchStrategy[str]:
    """A Chinese mobile number in one of its written forms, remembered by the world."""
    def render(n: str, form: str) -> str:
        world.phone(n)
        return form.format(n=n, a=n[:3], b=n[3:7], c=n[7:])
    return st.builds(render, national_numbers(), st.sampled_from(PHONE_FORMS))


NASTY_STRINGS = [
    "", " ", "\x00", "\x00\x01\x02\x1f\x7f", "\u202e\u200b\ufeff", "\t\n\r", "null", "None", "NaN", "-0",
    "true", "[]", "{}", "'; DROP TABLE complaints; --", "%s%s%n%x", "{{7*7}}", "${jndi:ldap://x/a}", "💥" * 8,
    "\u0000\u0000", "ＡＰＰ", "APP", " app ", "Hotline", "carrier-pigeon", "P0", "P5", "CLOSED", "Gold",
    "platinum ", "critical", "xx", "zh-CN", "1.0 ", "2.0", "application/xml", "com.example.unknown",
    "org.complaintstream.complaint.submitted.v2", "https://", "ftp://example.com/a", "s3://", "javascript:1",
    "2025-13-45T25:61:61Z", "0000-00-00", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "yesterday",
    "1e309", "9" * 400, "🙂" * 200,
]
UNKNOWN_ENUMS = ["pigeon", "fax", "telegram", "P0", "urgent", "bronze", "vip", "reopened", "done", "klingon",
                 "weather", "unknown", "", "APP2", "complaint2", "1.1", "text/plain"]


def scalar_json(phone: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(), st.integers(min_value=10**20, max_value=10**40), st.integers(max_value=-(10**20)),
        st.floats(),  # NaN and ±Infinity included: json.dumps writes them as NaN/Infinity tokens
        st.text(max_size=40),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Co"]), max_size=30),
        st.sampled_from(NASTY_STRINGS), st.sampled_from(UNKNOWN_ENUMS),
        phone,
        st.builds(lambda p, n: f"我的号码是{p}，" + "signal is bad " * n, phone, st.integers(0, 400)),
    )


def json_values(world: World, phone: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    phone = phone if phone is not None else phone_text(world)
    return st.recursive(
        scalar_json(phone),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.text(max_size=10) | phone | st.sampled_from(["type", "data", "id", "__proto__"]), inner, max_size=4),
        max_leaves=8,
    )


DEEP = "\u2063DEEP\u2063"  # a placeholder string, replaced by deep nesting after json.dumps


def deep(depth: int, opener: str, close: bool) -> str:
    pairs = {"[": "]", '{"a":': "}", '[{"a":': "}]"}
    body = opener * depth + "1"
    return body + pairs[opener] * depth if close else body


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: each dict key and list index, recursively."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((*prefix, i))
            out += paths(v, (*prefix, i))
    return out


def at(obj: Any, path: Sequence[Any]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def to_json(obj: Any, ascii_only: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


def filler(n: int, with_phone: str | None = None) -> str:
    """About ``n`` bytes of complaint text (ASCII but for a few words, so its size hardly depends on
    how the JSON is written), with a phone number in it when given."""
    unit = "No signal at home, calls drop all the time. " + (f"Call me back on {with_phone}. " if with_phone else "")
    return "信号差。" + (unit * (n // len(unit) + 1))[:max(0, n - 12)]


#: Positions and choices among things whose number depends on the unique references of a record are drawn
#: as a plain integer and reduced modulo that number: hypothesis needs the same choices to have the same
#: constraints in every example.
INDEX = st.integers(0, 2**20)


def pick(draw: Any, options: Sequence[Any]) -> Any:
    return options[draw(INDEX) % len(options)]


DOCUMENTED = b"\x00documented-key\x00"  # a marker the strategy returns for "the key the topic documents"


class Draws:
    """The strategies of one input topic, built once (building them per draw is what costs in hypothesis),
    with the world they register phone numbers in."""

    def __init__(self, world: World, source: Source):
        self.world = world
        self.source = source
        self.topic = source.first  # the documented key is the same for every reader (see key_for)
        # valid events of a type no reader of this topic accepts (of a type sent elsewhere, when all do)
        other_types = (tuple(t for t in BUILDERS if t not in source.accepted)
                       or tuple(t for t in BUILDERS if t not in source.types))
        self.phone = phone_text(world)
        self.json = json_values(world, self.phone)
        self.non_string_json = self.json.filter(lambda v: not isinstance(v, str))
        self.key = st.one_of(
            st.just(DOCUMENTED), st.just(DOCUMENTED), st.just(DOCUMENTED), st.none(), st.just(b""),
            st.binary(max_size=64), self.phone.map(str.encode),
            st.integers(DEAD_LETTER_KEY_HEAD - 10, 3 * DEAD_LETTER_KEY_HEAD).map(lambda n: b"K" * n),
        )
        name = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
        self.headers = st.one_of(
            st.just(HEADERS), st.just(HEADERS), st.just(()),
            st.lists(st.tuples(name, st.binary(max_size=40)), max_size=4).map(tuple),
            st.tuples(self.phone, self.phone.map(str.encode)).map(lambda h: (h,)),
            st.integers(DEAD_LETTER_HEADERS_MAX - 100, 2 * DEAD_LETTER_HEADERS_MAX).map(
                lambda n: (("x-big", b"h" * n),)),
        )
        self.type_value = st.one_of(
            self.non_string_json, st.sampled_from(sorted(REGISTRY)), st.text(max_size=60), self.phone,
            st.integers(200, 5000).map(lambda n: "t" * n),
        )
        self.extra_name = st.one_of(st.text(max_size=20), self.phone, st.sampled_from(["type", "data", ""]))
        self.accepted = st.sampled_from(source.types)
        self.others = st.sampled_from(other_types) if other_types else None
        self.big_size = st.sampled_from(BIG_SIZES)
        self.maybe_phone = st.one_of(st.none(), self.phone)
        self.control = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), min_size=1, max_size=5)
        self.kind = st.sampled_from(KINDS)
        self.variant = st.integers(0, 10**6)
        self.binary = st.binary(max_size=300)
        self.text = st.text(max_size=200)
        self.empty = st.sampled_from([None, None, b"", b" ", b"\n", b"{}", b"[]", b"null", b'""', b"0"])
        self.depth = st.integers(100, 20_000)
        self.opener = st.sampled_from(["[", '{"a":', '[{"a":'])
        self.op = st.sampled_from(["set", "set", "set", "delete", "extra"])

    def key_for(self, env: Envelope[Any]) -> bytes:
        """The documented key: the state key on the stream topic, the complaint id (subject) elsewhere."""
        key = self.topic.stage.state_key(env) if self.topic.state_keyed else env.subject
        return str(key).encode()


#: Sizes of the "big" records: over the text limit (4,000 characters), and over the dead-letter head
#: (256 KiB) so the dead letter is truncated; a few KiB are added to each.
BIG_SIZES = [5_000] * 6 + [40_000] * 3 + [200_000, 262_000, 300_000]


@st.composite
def hostile_record(draw: Any, d: Draws) -> list[Rec]:
    """One or two records for ``d.topic``: valid, replayed, out of order, or broken in one of many ways."""
    world, topic = d.world, d.topic
    kind = draw(d.kind)

    def valid_env() -> Envelope[Any]:
        return world.valid(draw(d.accepted), draw(d.variant))

    def one(value: bytes | None, key: bytes | None, label: str) -> list[Rec]:
        drawn = draw(d.key)
        key = (key or b"k") if drawn == DOCUMENTED else drawn
        if key is None and value is None:
            key = b""  # a tombstone needs a key (kafka-python refuses a record with neither)
        return [Rec(topic.topic.name, key, value, draw(d.headers), label)]

    if kind == "valid":
        env = valid_env()
        return [Rec(topic.topic.name, d.key_for(env), encode(env), HEADERS, "valid")]
    if kind == "replay":  # the same record twice (a producer retry, a replayed topic)
        env = valid_env()
        rec = Rec(topic.topic.name, d.key_for(env), encode(env), HEADERS, "replay")
        return [rec, Rec(rec.topic, rec.key, rec.value, rec.headers, "replay")]
    if kind == "out_of_order":
        return [Rec(topic.topic.name, d.key_for(e), encode(e), HEADERS, "out_of_order")
                for e in out_of_order(world, d.source, draw(d.variant))]
    if kind == "binary":
        return one(draw(d.binary), None, "binary")
    if kind == "text":
        return one(draw(d.text).encode("utf-8", "surrogatepass"), None, "text")
    if kind == "json_value":
        return one(to_json(draw(d.json), draw(st.booleans())), None, "json_value")
    if kind == "empty":
        return one(draw(d.empty), None, "empty")
    if kind == "deep":
        nested = deep(draw(d.depth), draw(d.opener), draw(st.booleans()))
        if draw(st.booleans()):
            return one(nested.encode(), None, "deep")
        env = valid_env()
        obj = json.loads(encode(env))
        place = pick(draw, paths(obj))
        at(obj, place[:-1])[place[-1]] = DEEP
        value = to_json(obj, True).replace(json.dumps(DEEP).encode(), nested.encode())
        return one(value, d.key_for(env), "deep")

    env = valid_env()
    obj = json.loads(encode(env))
    key = d.key_for(env)
    if kind == "type":  # the CloudEvent type: not a string, empty, unknown, or a known type not accepted here
        obj["type"] = draw(d.type_value)
        return one(to_json(obj, draw(st.booleans())), key, "type")
    if kind == "other_type" and d.others is not None:  # a valid event of a type this worker does not accept
        return one(encode(world.valid(draw(d.others), draw(d.variant))), key, "other_type")
    if kind == "encoding":
        return one(break_encoding(draw, to_json(obj, False)), key, "encoding")
    if kind == "nul":  # control characters raw (invalid JSON) or escaped (valid JSON, cleaned or rejected)
        place = pick(draw, [p for p in paths(obj) if isinstance(at(obj, p), str)])
        ctl = draw(d.control)
        current = at(obj, place)
        at(obj, place[:-1])[place[-1]] = current[: len(current) // 2] + ctl + current[len(current) // 2:]
        raw = to_json(obj, draw(st.booleans()))
        if draw(st.booleans()):
            raw = raw.replace(json.dumps(ctl)[1:-1].encode(), ctl.encode())  # unescaped: not JSON
        return one(raw, key, "nul")
    if kind == "big":  # a huge string somewhere: over the text limit, over the dead-letter head
        size = draw(d.big_size) + draw(st.integers(0, 4096))
        text = filler(size, draw(d.maybe_phone))
        if draw(st.booleans()) and "text" in obj.get("data", {}):
            obj["data"]["text"] = text
        else:
            p = pick(draw, paths(obj))
            at(obj, p[:-1])[p[-1]] = text
        return one(to_json(obj, draw(st.booleans())), key, "big")

    # "mutate": one field set to a hostile value, removed, or one unknown field added
    op = draw(d.op)
    if op == "extra":
        containers = [()] + [p for p in paths(obj) if isinstance(at(obj, p), dict)]
        at(obj, pick(draw, containers))[draw(d.extra_name)] = draw(d.json)
    else:
        place = pick(draw, paths(obj))
        parent = at(obj, place[:-1])
        if op == "delete":
            del parent[place[-1]]
        else:
            parent[place[-1]] = draw(d.json)
    return one(to_json(obj, draw(st.booleans())), key, f"mutate_{op}")


def break_encoding(draw: Any, raw: bytes) -> bytes:
    """A JSON envelope made invalid UTF-8, re-encoded, cut short, or given trailing bytes or a second type."""
    how = draw(st.sampled_from(["insert", "utf16", "bom", "truncate", "trailing", "latin1", "dupkey"]))
    if how == "insert":
        pos = draw(INDEX) % (len(raw) + 1)
        bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe4\xb8", b"\x80", b"\xf8\x88"]))
        return raw[:pos] + bad + raw[pos:]
    if how == "utf16":
        return raw.decode("utf-8").encode("utf-16")
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "truncate":
        return raw[:draw(INDEX) % len(raw)]
    if how == "trailing":
        return raw + draw(st.sampled_from([b"x", b"\x00", b"{}", b"\n{}", b" "]))
    if how == "latin1":
        return raw.decode("utf-8").encode("latin-1", "replace")
    first = draw(st.sampled_from(['"type": 7, ', '"type": "x", ', '"type": null, ']))  # JSON keeps the last
    return (b"{" + first.encode() + raw[1:]) if draw(st.booleans()) else raw[:-1] + b', "type": 7}'


#: How often each kind of record is drawn. Hypothesis favours the first entries of a ``sampled_from``,
#: so the valid kinds come last; about a quarter of the records come out valid.
KINDS = (["mutate"] * 8 + ["binary"] * 2 + ["text"] * 2 + ["json_value"] * 2 + ["type"] * 2 + ["encoding"] * 2
         + ["empty", "deep", "other_type", "nul", "big", "replay", "out_of_order"] + ["valid"] * 3)


def hostile_records(d: Draws) -> st.SearchStrategy[list[Rec]]:
    """A few records per example (hypothesis' cost is mostly per example): 4 to 8 draws of
    :func:`hostile_record`, flattened."""
    return st.lists(hostile_record(d), min_size=4, max_size=8).map(lambda groups: [r for g in groups for r in g])


def out_of_order(world: World, source: Source, variant: int) -> list[Envelope[Any]]:
    """Valid events, the later one first: a closing (and a reopen, where they are read) before its complaint,
    a submission that happened later published before one that happened earlier, or a resolution before
    the update that took the complaint in hand."""
    accepted = set(source.types)
    if ComplaintResolved in accepted and ComplaintReceived in accepted:
        received = world.received(variant)
        reopen = [world.reopened(variant, received)] if ComplaintReopened in accepted and variant % 2 else []
        return [*reopen, world.resolved(variant, received), received]
    if ChannelSubmission in accepted:
        later = world.submission(variant, minutes_ago=1)
        phone = later.data.customer.msisdn.removeprefix("+86")
        return [later, world.submission(variant + 1, minutes_ago=2 + variant % 500, phone=phone)]
    if ComplaintStatusChanged in accepted:
        cid = world.complaint(variant).complaint_id
        taken = world.now - timedelta(minutes=10 + variant % 300)
        return [world.status(variant, to=TicketStatus.RESOLVED, complaint=cid, at=taken + timedelta(minutes=5)),
                world.status(variant, to=TicketStatus.IN_PROGRESS, complaint=cid, at=taken)]
    return [world.valid(t, variant) for t in reversed(source.types)]


@st.composite
def near_limit_records(draw: Any, d: Draws, how: str) -> list[Rec]:
    """A record of 900 KiB to ~1 MiB that the producer and the broker accept: ``junk`` (not UTF-8), a valid
    envelope with a huge ``text`` (valid where the type has no text limit), or a huge unknown field."""
    size = draw(st.integers(NEAR_LIMIT_MIN, NEAR_LIMIT_MAX))
    if how == "junk":
        return [Rec(d.topic.topic.name, b"near-limit", b"{" + b"\xff" * (size - 1), HEADERS, "near_limit")]
    env = d.world.valid(draw(d.accepted), draw(d.variant))
    obj = json.loads(encode(env))
    base = len(to_json(obj, False))
    if how == "text" and "text" in obj["data"]:
        obj["data"]["text"] = filler(size - base - 100)
    else:
        obj["data"]["x-padding"] = "p" * (size - base - 20)
    value = to_json(obj, False)
    assert len(value) <= NEAR_LIMIT_MAX, len(value)
    return [Rec(d.topic.topic.name, d.key_for(env), value, HEADERS, "near_limit")]


#: Where a phone number goes in a record of the personal-data burst.
PHONE_PLACES = ["text", "wrong_field", "key", "header_name", "header_value", "field_name", "nested_name", "enum",
                "huge", "type", "number", "subject", "id", "channel_ref", "msisdn_form", "whole_value", "bad_json"]
ENUM_FIELDS = ("channel", "tier", "language", "status", "category", "ticket_type", "specversion",
               "datacontenttype")


@st.composite
def phone_record(draw: Any, d: Draws) -> list[Rec]:
    """A record with a phone number (in one of its written forms) somewhere a worker might repeat it:
    in the text, a wrong field, the key, a header, a field name, an unknown enum value, a huge string
    (pydantic's errors can quote input), the CloudEvent type, a JSON number, or places that stay valid."""
    world, topic = d.world, d.topic
    place = draw(st.sampled_from(PHONE_PLACES))
    phone = draw(d.phone)
    digits = "".join(c for c in phone if c.isdigit())
    env = world.valid(draw(d.accepted), draw(d.variant))
    obj = json.loads(encode(env))
    key: bytes | None = d.key_for(env)
    headers = HEADERS
    data = obj["data"]
    if place == "text" and "text" in data:
        data["text"] = f"{data['text']} 请回拨{phone}"
    elif place == "wrong_field":
        p = pick(draw, paths(obj))
        at(obj, p[:-1])[p[-1]] = draw(st.sampled_from([phone, f"tel:{phone}", {"phone": phone}, [phone]]))
    elif place == "key":
        key = phone.encode()
    elif place == "header_name":
        headers = (*HEADERS, (phone, b"caller"))
    elif place == "header_value":
        headers = (*HEADERS, ("x-caller", phone.encode()))
    elif place == "field_name":
        containers = [()] + [p for p in paths(obj) if isinstance(at(obj, p), dict)]
        at(obj, pick(draw, containers))[phone] = draw(st.sampled_from([1, "x", phone, None]))
    elif place == "nested_name":
        data["extra"] = {phone: {phone: [phone]}}
    elif place == "enum":
        present = [f for f in ENUM_FIELDS if f in data] + [f for f in ENUM_FIELDS if f in obj]
        target = draw(st.sampled_from(present))
        holder = data if target in data else obj
        holder[target] = draw(st.sampled_from([phone, f"{phone}-vip", f"vip {phone}", f"{phone}\x00"]))
    elif place == "huge":
        text = filler(draw(st.sampled_from([4_100, 20_000, 270_000])), phone)
        if "text" in data:
            data["text"] = text
        elif "resolution" in data:
            data["resolution"] = {"code": "other", "note": text}  # a note over its limit
        else:
            data["reason_code"] = text
    elif place == "type":
        obj["type"] = draw(st.sampled_from([phone, f"org.complaintstream.{phone}", f"{obj['type']}.{phone}"]))
    elif place == "number":
        p = pick(draw, paths(obj))
        at(obj, p[:-1])[p[-1]] = int(digits)
    elif place == "subject":
        obj["subject"] = phone
    elif place == "id":
        obj["id"] = phone
    elif place == "channel_ref" and "channel_ref" in data:
        data["channel_ref"] = f"{digits[-11:]}.{world.number()}"  # valid and unique: the complaint goes through
    elif place == "msisdn_form" and "customer" in data:
        data["customer"]["msisdn"] = phone  # any written form: normalised when valid
    elif place == "whole_value":
        return [Rec(topic.topic.name, key, phone.encode(), headers, "phone")]
    else:  # bad_json, and places the type has no field for
        return [Rec(topic.topic.name, key, f'{{"type": "{obj["type"]}", "phone": {phone}}}'.encode(), headers,
                    "phone")]
    return [Rec(topic.topic.name, key, to_json(obj, draw(st.booleans())), headers, "phone")]


def phone_records(source: Source, world: World, target: int) -> list[Rec]:
    """``target`` records with phone numbers for one topic: 2 in 3 from :func:`phone_record`, the rest
    from the general hostile mix (valid ones included)."""
    d = Draws(world, source)
    mixed = st.lists(st.one_of(phone_record(d), phone_record(d), hostile_record(d)), min_size=4, max_size=8).map(
        lambda groups: [r for g in groups for r in g])
    recs: list[Rec] = []
    for attempt in range(5):
        recs += generate(mixed, max(1, (target - len(recs)) // 5), f"phones:{source.name}#{attempt}")
        if len(recs) >= target:
            break
    return recs[:target]


def generate(strategy: st.SearchStrategy[list[Rec]], examples: int, name: str) -> list[Rec]:
    """Run hypothesis over ``strategy`` and keep what every example drew (no shrinking: nothing fails).
    Deterministic, with a seed of its own per ``name`` (each topic gets different records)."""
    out: list[Rec] = []

    @settings(max_examples=examples, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(zlib.crc32(name.encode()))
    @given(strategy)
    def collect(records: list[Rec]) -> None:
        out.extend(records)

    collect()
    return out


def records_for(source: Source, world: World, target: int) -> list[Rec]:
    """Exactly ``target`` hostile and valid records for one input topic (whoever reads it), plus 6 near
    the size limit."""
    for reader in source.readers:
        for t in reader.accepted:
            world.valid(t)  # fails with a clear message when a worker consumes a type with no builder
    d = Draws(world, source)
    recs: list[Rec] = []
    for attempt in range(5):  # an example draws ~6 records; top up (with another seed) if short
        recs += generate(hostile_records(d), max(1, (target - len(recs)) // 5), f"{source.name}#{attempt}")
        if len(recs) >= target:
            break
    assert len(recs) >= target, f"hypothesis drew only {len(recs)} records for {source.name}"
    del recs[target:]
    for how in ("junk", "text", "extra"):
        recs += generate(near_limit_records(d, how), 2, f"{source.name}:{how}")
    return recs


def pool_records(world: World) -> list[Rec]:
    """The pool's complaints, each once, valid, on the received topic (keyed by complaint id)."""
    return [Rec(RECEIVED.name, env.subject.encode(), encode(env), HEADERS, "valid") for env in world.pool]


#: Numbers each topic's world draws from (a range of its own, so references stay unique across processes).
COUNTER_STRIDE = 1_000_000
_JOB: dict[str, Any] = {}


def _generate_one(index: int) -> tuple[str, list[Rec], set[str]]:
    world, source, target, make = (_JOB["world"], _JOB["sources"][index], _JOB["target"], _JOB["make"])
    world._counter = itertools.count(_JOB["first"] + index * COUNTER_STRIDE)
    world.phones = set()
    return source.name, make(source, world, target), world.phones


class Generation:
    """``make(source, world, target)`` for every source, started at once in ``processes`` forked processes
    (hypothesis is most of the cost, and it is CPU-bound) and collected by :meth:`result`: started early,
    it draws while other tests run. Each topic has a counter range of its own (from ``first``), so the records
    are the same whichever process draws them. The phone numbers they used join ``world``'s."""

    def __init__(self, world: World, topics: Sequence[Source], target: int,
                 make: Callable[[Source, World, int], list[Rec]] = records_for, first: int = 500_000,
                 processes: int = 2):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.world = world
        self.started = time.monotonic()
        _JOB.update(world=world, sources=list(topics), target=target, make=make, first=first)
        # out of the collector's reach while forked: a child's collections would otherwise touch (and so copy)
        # every object of this process, which holds gigabytes once a run has been read back
        gc.freeze()
        try:
            # a fork context starts every process at the first submit, here, in this thread
            self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
            self.futures = [self.pool.submit(_generate_one, i) for i in range(len(topics))]
        finally:
            gc.unfreeze()
            _JOB.clear()  # the children have their copy
        self.drew_seconds: float | None = None
        self._out: dict[str, list[Rec]] | None = None

    def result(self) -> dict[str, list[Rec]]:
        if self._out is None:
            try:
                results = [f.result() for f in self.futures]
            finally:
                self.pool.shutdown(cancel_futures=True)
            self.drew_seconds = time.monotonic() - self.started
            self._out = {}
            for name, recs, phones in results:
                self._out[name] = recs
                self.world.phones |= phones
        return self._out


def generate_all(world: World, topics: Sequence[Source], target: int,
                 make: Callable[[Source, World, int], list[Rec]] = records_for, first: int = 500_000,
                 processes: int = 2) -> dict[str, list[Rec]]:
    """:class:`Generation`, waited for."""
    return Generation(world, topics, target, make, first, processes).result()


# -- publishing ------------------------------------------------------------------------------------

def publish(settings: Any, recs: Iterable[Rec]) -> list[Rec]:
    """Send every record with one producer (acks=all) and note where each one went.

    aiokafka's producer (the workers' client): kafka-python computes the CRC32C of every record batch
    in pure Python (0.16 s per MiB here, a minute for this suite's ~150 MB), aiokafka in C."""
    recs = list(recs)
    asyncio.run(_publish(settings, recs))
    return recs


async def _publish(settings: Any, recs: list[Rec]) -> None:
    from aiokafka import AIOKafkaProducer

    assert settings.kafka_security_protocol == "PLAINTEXT", "the fault suite runs on the loopback test broker"
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, request_timeout_ms=60_000)
    await producer.start()
    try:
        futures = [await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers)) for r in recs]
        for rec, meta in zip(recs, await asyncio.gather(*futures), strict=True):
            rec.partition, rec.offset = meta.partition, meta.offset
    finally:
        await producer.stop()


def publish_over_limit(settings: Any, topic: str, size: int = OVER_LIMIT) -> list[str]:
    """A record over the size limit, twice: the default producer refuses it before sending, and a producer
    allowed larger requests has it refused by the broker. Returns both errors (the record is not on the topic)."""
    from kafka.errors import KafkaError

    errors = []
    value = b"{" + b"o" * (size - 1)
    for max_request in (None, 4 * 1024 * 1024):
        extra = {} if max_request is None else {"max_request_size": max_request}
        producer = KafkaProducer(**client_config(settings), acks="all", retries=0, **extra)
        try:
            fut = producer.send(topic, key=b"over-limit", value=value)
            producer.flush(timeout=60)
            fut.get(timeout=60)
            errors.append("")  # accepted: the caller fails
        except KafkaError as exc:
            errors.append(type(exc).__name__)
        finally:
            producer.close(timeout=30)
    return errors


# -- reading ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Raw:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def end_offsets(settings: Any, topic_names: Iterable[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(**client_config(settings))
    try:
        tps = [TopicPartition(t, p) for t in topic_names for p in sorted(consumer.partitions_for_topic(t) or ())]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def read_from(settings: Any, start: dict[TopicPartition, int], topic_names: Iterable[str],
              timeout: float = 120.0) -> dict[str, list[Raw]]:
    """Every record of the topics from ``start`` (missing partitions: from 0) to their end offsets now."""
    names = list(topic_names)
    # check_crcs=False: kafka-python checks CRC32C in pure Python (0.16 s per MiB); the broker on loopback
    # has checked every batch it accepted
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False, group_id=None,
                             max_partition_fetch_bytes=4 * 1024 * 1024, check_crcs=False)
    out: dict[str, list[Raw]] = {t: [] for t in names}
    try:
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        todo = {}
        for tp in tps:
            first = start.get(tp, 0)
            if ends[tp] > first:
                consumer.seek(tp, first)
                todo[tp] = ends[tp]
            else:
                consumer.pause(tp)
        deadline = time.monotonic() + timeout
        while todo:
            assert time.monotonic() < deadline, f"could not read to the end of {sorted(map(str, todo))}"
            for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                if tp not in todo:
                    continue
                for m in msgs:
                    if m.offset < todo[tp]:
                        out[tp.topic].append(Raw(tp.topic, tp.partition, m.offset, m.key, m.value))
                if consumer.position(tp) >= todo[tp]:
                    del todo[tp]
                    consumer.pause(tp)
    finally:
        consumer.close()
    return out


# -- dead letters --------------------------------------------------------------------------------

def expected_dead_letter_fields(rec: Rec) -> dict[str, Any]:
    """What the dead letter of ``rec`` must say about the original: its head, size, hash, truncation."""
    raw = rec.value or b""
    header_bytes = 0
    headers_cut = False
    for name, value in rec.headers:
        size = len(name.encode("utf-8", "replace")) + len(value or b"")
        if header_bytes + size > DEAD_LETTER_HEADERS_MAX:
            headers_cut = True
            break
        header_bytes += size
    truncated = (len(raw) > DEAD_LETTER_VALUE_HEAD or (rec.key is not None and len(rec.key) > DEAD_LETTER_KEY_HEAD)
                 or headers_cut)
    return {
        "original_size": len(raw),
        "original_sha256": hashlib.sha256(raw).hexdigest(),
        "original_value_b64": base64.b64encode(raw[:DEAD_LETTER_VALUE_HEAD]).decode("ascii"),
        "original_key_b64": None if rec.key is None else base64.b64encode(rec.key[:DEAD_LETTER_KEY_HEAD]).decode(),
        "truncated": truncated,
    }


@dataclass
class Expectation:
    """What one sent record must become."""

    rec: Rec
    input: InputTopic
    error: DecodeError | None = None
    envelope: Envelope[Any] | None = None


def expectations(recs: Sequence[Rec], inputs: Sequence[InputTopic], now: datetime | None = None
                 ) -> list[Expectation]:
    """Judge every record with the pure decoder of each worker that reads its topic (one expectation per
    record and reader)."""
    now = now or datetime.now(UTC)
    readers: dict[str, list[InputTopic]] = {}
    for t in inputs:
        readers.setdefault(t.topic.name, []).append(t)
    out = []
    for rec in recs:
        for topic in readers.get(rec.topic, ()):
            try:
                out.append(Expectation(rec, topic, envelope=topic.decode(rec.value, now)))
            except DecodeError as exc:
                out.append(Expectation(rec, topic, error=exc))
    return out


# -- refusals --------------------------------------------------------------------------------------

def refusal_rules(stage: Any) -> frozenset[str]:
    """Every rule ``stage`` can refuse a valid event with (``Refused``, dead-lettered as ``refused`` with the
    message ``<rule>: <detail>``): the rule names the modules of its package raise literally (the dispatcher's
    come from ``team.py`` beside it), and those of its transition table (the refusals of status pairs, the
    default, and the closed and ended rules). Empty for a stage that refuses nothing."""
    module = inspect.getmodule(type(stage))
    assert module is not None and module.__file__ is not None
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(Path(module.__file__).parent.glob("*.py")))
    rules = set(re.findall(r'Refused\(\s*"([a-z_]+)"', source))
    table = getattr(stage, "table", None)
    if table is not None:
        f = table.file
        rules |= {*f.refusals.values(), f.default_refusal, f.closed_refusal, f.ended_refusal}
    return frozenset(rules)


def refused_rule(message: str) -> str:
    """The rule of a refusal's dead-letter message (``<rule>: <detail>``)."""
    return message.split(":", 1)[0].strip()


def parked_copy_sha256(env: Envelope[Any]) -> str:
    """The SHA-256 a refusal of ``env`` has in its dead letter when the stage had parked it first (it keeps the
    event as JSON, not the original bytes, and dead-letters that later, from its timer or when the case
    opens, without source partition and offset)."""
    return hashlib.sha256(env.model_dump_json().encode()).hexdigest()


@dataclass
class Outcome:
    """Everything the workers wrote since the burst started, indexed for the checks."""

    dead_letters: dict[tuple[str, int | None, int | None], list[Any]] = field(default_factory=dict)
    letters: list[Any] = field(default_factory=list)
    topics: dict[str, list[Raw]] = field(default_factory=dict)
