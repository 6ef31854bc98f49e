"""A steady stream of complaints through every registered worker, the outputs an undisturbed run would
give (the stages' pure code replayed in event time, no broker), and the comparison of the two.

Used by the fault-injection suite: whatever is done to workers or the broker mid-stream, every expected
output must be on its topic (0 lost), a repeated output must carry the same event id and the same
content as the original, and after de-duplication by id the outputs equal the undisturbed run's.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import TopicPartition

from complaint_stream import topics
from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.kafka.clients import consumer as make_consumer
from complaint_stream.kafka.clients import producer
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import CaseUpdated, CommunicationRequested, Envelope, encode
from complaint_stream.settings import Settings
from complaint_stream.topics import TopicSpec
from complaint_stream.workers.registry import WORKERS
from tests.support.factories import submission


def fresh_start() -> int:
    """A factory index range of its own (10,000 wide, above what other tests use), so that customers
    never overlap with another test's: an earlier complaint of the same customer would make these
    repeats (重复投诉) and change their priority."""
    return 10_000_000 + random.randrange(8_900) * 10_000


def traffic(n: int, *, start: int | None = None, tag: str | None = None,
            now: datetime | None = None) -> list[Envelope[Any]]:
    """``n`` valid submission envelopes with channel references ``<tag>-<i>``, each from a customer no
    other call of this function uses (unless ``start`` is given: the same start gives the same customers)."""
    now = now or datetime.now(UTC)
    tag = tag or uuid.uuid4().hex[:8]
    start = fresh_start() if start is None else start
    return [submission_envelope(validate_submission(
        submission(start + i, now, channel_ref=f"{tag}-{start + i:06d}"), now=now)) for i in range(n)]


class Publisher(threading.Thread):
    """Sends the envelopes at a steady rate with one kafka-python producer (acks=all, the client's own
    retries): what a channel system does. ``sent`` counts handed-over records, ``failed`` the sends the
    producer gave up on."""

    def __init__(self, settings: Settings, envelopes: list[Envelope[Any]], rate: float):
        super().__init__(daemon=True)
        self.settings, self.envelopes, self.rate = settings, envelopes, rate
        self.sent = 0
        self.failed: list[BaseException] = []
        self.acked = 0
        self._lock = threading.Lock()

    def _ok(self, _meta: Any) -> None:
        with self._lock:
            self.acked += 1

    def _err(self, exc: BaseException) -> None:
        with self._lock:
            self.failed.append(exc)

    def run(self) -> None:
        p = producer(self.settings, delivery_timeout_ms=180_000, request_timeout_ms=20_000)
        started = time.monotonic()
        try:
            for i, env in enumerate(self.envelopes):
                wait = started + i / self.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # pacing the stream, not waiting for an outcome
                fut = p.send(topics.SUBMISSIONS.name, key=env.data.dedup_key.encode(), value=encode(env))
                fut.add_callback(self._ok)
                fut.add_errback(self._err)
                self.sent += 1
            p.flush(timeout=200)
        finally:
            p.close(timeout=30)

    def wait_sent(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < n:
            assert self.is_alive() or self.sent >= n, "the publisher stopped early"
            assert time.monotonic() < deadline, f"only {self.sent} of {n} sent after {timeout:.0f}s"
            time.sleep(0.05)


# -- what an undisturbed run gives -------------------------------------------------------------

def stage_outputs(settings: Settings) -> list[TopicSpec]:
    """The topics the registered stages produce, without dead letters, internal topics (re-keying, the
    lifecycle's links) and the submissions topic (the pipeline's input, which the lifecycle also writes)."""
    internal = {b.repartition.name for b in bindings(settings) if b.repartition is not None}
    skip = {topics.DEAD_LETTERS.name, topics.SUBMISSIONS.name}
    seen: list[TopicSpec] = []
    for b in bindings(settings):
        for t in b.stage.produces:
            if t not in seen and t.name not in skip and t.name not in internal and not t.internal:
                seen.append(t)
    return seen


def replayable_workers(settings: Settings) -> list[str]:
    """The registered workers whose live outputs a replay of the stages in event time reproduces, and so
    which the fault runs compare against it: all but an order-dependent stage (the dispatcher) and the
    workers whose outputs only it reads (the router). Those two are killed and restarted mid-stream in
    tests/integration/test_assignment.py, against invariants instead (once each, within capacity)."""
    entries = {name: e.load().binding(settings) for name, e in WORKERS.items()}
    out_of = {name for name, b in entries.items() if getattr(b.stage, "order_dependent", False)}
    for name, b in entries.items():
        readers = {other for other, ob in entries.items() for t in b.stage.produces
                   if t in ob.inputs and t is not topics.DEAD_LETTERS}
        if readers and readers <= out_of:
            out_of.add(name)
    return [name for name in WORKERS if name not in out_of]


def bindings(settings: Settings) -> list[Any]:
    return [WORKERS[name].load().binding(settings) for name in replayable_workers(settings)]


def expected_outputs(settings: Settings, envelopes: Iterable[Envelope[Any]]) -> dict[str, dict[str, Envelope[Any]]]:
    """Each registered stage's pure code over the submissions, in registry (pipeline) order and event
    time: {topic name: {event id: event}}, as an undisturbed live run would produce them."""
    by_topic: dict[str, list[Envelope[Any]]] = defaultdict(list)
    by_topic[topics.SUBMISSIONS.name] = list(envelopes)
    for b in bindings(settings):
        events = [e for t in b.inputs for e in by_topic.get(t.name, ())]
        produced_by_stage = {t.name for t in b.stage.produces}
        feedback = [t for t in b.inputs if t.name in produced_by_stage]
        for out in run_in_event_time(b.stage, events, feedback=feedback):
            if out.topic != topics.DEAD_LETTERS and out.topic != b.repartition:
                by_topic[out.topic.name].append(out.event)
    produced = {t.name for t in stage_outputs(settings)}
    return {name: {e.id: e for e in by_topic.get(name, ())} for name in produced}


# -- what the live run gave --------------------------------------------------------------------

def content(env: Envelope[Any]) -> dict[str, Any]:
    """What must be equal between a live output and the replayed one: the event's id, type and data,
    without processing timestamps (``received_at`` and the like are wall-clock time live, event time
    in a replay)."""
    data = env.data.model_dump(mode="json")
    # a message's text and parameters carry the promised time; outside quiet hours its send_after is the
    # processing time (now), so a repeat after a crash has a later one
    timed = {"text", "parameters", "send_after"} if env.type == CommunicationRequested.event_type else set()
    return {"id": env.id, "type": env.type,
            "data": {k: v for k, v in data.items() if not _timed(k) and k not in timed}}


def _timed(field_name: str) -> bool:
    """A time field: ``*_at``, and a case change's ``at`` (the receipt's time for ``opened``, wall clock live)."""
    return field_name == "at" or field_name.endswith("_at")


def difference(live: dict[str, Any], replayed: dict[str, Any]) -> dict[str, Any]:
    """The data fields in which a live event differs from the replayed one: {field: (live, replayed)}."""
    a, b = live["data"], replayed["data"]
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


@dataclass
class Observed:
    events: dict[str, dict[str, list[Envelope[Any]]]] = field(default_factory=dict)  # topic -> id -> copies
    #: Receipts of the traffic's channel references under a complaint id the undisturbed run never gives:
    #: a retry the intake did not recognise (its de-duplication state was missing), described.
    strays: list[str] = field(default_factory=list)

    def ids(self, topic: str) -> set[str]:
        return set(self.events.get(topic, {}))

    def duplicates(self) -> int:
        return sum(len(copies) - 1 for per in self.events.values() for copies in per.values())


def mark(settings: Settings) -> dict[str, dict[int, int]]:
    """Where every output topic ends now ({topic: {partition: offset}}): :func:`observe` given it reads only
    what was written since (the suite's broker holds every earlier test's records too)."""
    consumer = make_consumer(settings, enable_auto_commit=False, group_id=None)
    try:
        ends: dict[str, dict[int, int]] = {}
        for topic in stage_outputs(settings):
            tps = [TopicPartition(topic.name, p) for p in sorted(consumer.partitions_for_topic(topic.name) or ())]
            ends[topic.name] = {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
        return ends
    finally:
        consumer.close()


def observe(settings: Settings, expected: dict[str, dict[str, Envelope[Any]]],
            since: dict[str, dict[int, int]] | None = None) -> Observed:
    """Read every output topic (from ``since``, a :func:`mark`, up to its end when reading starts: the
    workers are stopped); keep the events that belong to the expected complaints (by complaint id), so
    other tests' records on the shared broker do not count."""
    complaint_ids = {e.data.complaint_id for per in expected.values() for e in per.values()}
    received = expected.get(topics.RECEIVED.name, {})
    refs = {e.data.channel_ref: e for e in received.values()}
    seen = Observed()
    for topic in stage_outputs(settings):  # the intake's receipts first (registry order)
        per: dict[str, list[Envelope[Any]]] = defaultdict(list)
        for rec in read_topic(settings, topic, idle_timeout=2, to_end=True,
                              from_offsets=None if since is None else since.get(topic.name)):
            env = rec.envelope
            if env is None:
                continue
            cid = getattr(env.data, "complaint_id", None)
            if topic is topics.RECEIVED and cid not in complaint_ids and env.data.channel_ref in refs:
                complaint_ids.add(cid)  # a second complaint from one channel reference: count what it made
                seen.strays.append(_stray(settings, env, rec, refs[env.data.channel_ref]))
            if cid in complaint_ids:
                per[env.id].append(env)
        seen.events[topic.name] = dict(per)
    return seen


def _stray(settings: Settings, env: Envelope[Any], rec: Any, original: Envelope[Any]) -> str:
    """What the broker holds about a channel reference received twice: both receipts and the intake's
    de-duplication state for its key (the changelog records), so a failure says which copy was missing."""
    entry = WORKERS["intake"]
    key = f"{env.data.channel.value}:{env.data.channel_ref}"
    changelog = f"{entry.app_id}-{entry.load().binding(settings).table}-changelog"
    states = []
    consumer = make_consumer(settings, enable_auto_commit=False, group_id=None, consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(changelog, p) for p in sorted(consumer.partitions_for_topic(changelog) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        for msg in consumer:
            if msg.key == key.encode():
                states.append(f"[{msg.partition}]@{msg.offset} t={msg.timestamp} {(msg.value or b'<tombstone>')[:90]!r}")
    finally:
        consumer.close()
    return (f"{key} received again as {env.data.complaint_id} ([{rec.partition}]@{rec.offset},"
            f" t={rec.timestamp_ms}) besides {original.data.complaint_id}; its de-duplication state on"
            f" {changelog}: {states or 'none'}")


@dataclass
class Comparison:
    lost: dict[str, int]
    unexpected: dict[str, int]
    duplicates: int
    differing: list[str]
    #: The first few outputs no undisturbed run gives, described (type, complaint, change or kind).
    unexpected_examples: list[str] = field(default_factory=list)
    #: Channel references received as a second complaint (:attr:`Observed.strays`).
    strays: list[str] = field(default_factory=list)

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())


def _story(data: Any, got: dict[str, list[Envelope[Any]]], want: dict[str, Envelope[Any]]) -> str:
    """For an unexpected case change: the complaint's changes live and in the replay (sequence, change,
    related complaint), so a failure says what happened without a second run."""
    if not isinstance(data, CaseUpdated):
        return ""

    def changes(envs: Iterable[Envelope[Any]]) -> list[str]:
        of = sorted((e.data for e in envs if e.data.complaint_id == data.complaint_id), key=lambda d: d.sequence)
        return [f"{d.sequence}:{d.change.value}" + (f">{d.related}" if d.related else "") for d in of]

    return (f" (seq {data.sequence}, related {data.related}, at {data.at.isoformat()}; live"
            f" {changes(c[0] for c in got.values())}; replayed {changes(want.values())})")


def compare(expected: dict[str, dict[str, Envelope[Any]]], seen: Observed) -> Comparison:
    lost, unexpected, differing = {}, {}, []
    examples: list[str] = []
    for topic, want in expected.items():
        got = seen.events.get(topic, {})
        lost[topic] = len(set(want) - set(got))
        unexpected[topic] = len(set(got) - set(want))
        for eid in sorted(set(got) - set(want))[:5]:
            data = got[eid][0].data
            what = getattr(data, "change", None) or getattr(data, "kind", None) or getattr(data, "status", None)
            examples.append(f"{topic} {eid} {type(data).__name__} {getattr(data, 'complaint_id', '')}"
                            f" {getattr(what, 'value', what)} {getattr(data, 'reason_code', '')}".rstrip()
                            + _story(data, got, want))
        for eid, copies in got.items():
            variants = {repr(content(c)) for c in copies}
            if len(variants) > 1:
                first, other = content(copies[0]), next(content(c) for c in copies if repr(content(c)) != repr(
                    content(copies[0])))
                differing.append(f"{topic} {eid} ({first['type']}): {len(variants)} different copies, e.g."
                                 f" {difference(first, other)}")
            elif eid in want and variants != {repr(content(want[eid]))}:
                live, replayed = content(copies[0]), content(want[eid])
                differing.append(f"{topic} {eid} ({live['type']}): differs from the undisturbed run in"
                                 f" (live, replayed): {difference(live, replayed)}")
    return Comparison(lost, unexpected, seen.duplicates(), differing, seen.strays[:3] + examples, seen.strays)

