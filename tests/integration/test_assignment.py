"""The assign and dispatch workers on the real broker: 10,000 classified complaints and a stream of
resolutions, with each worker killed (-9) and restarted in the middle.

The test plays the lifecycle's part: it publishes the classified complaints (routed by the packaged
roster: 19 teams, about 70 agents) and, in waves, reports every complaint an agent holds as resolved
(``CaseUpdated`` on the lifecycle topic), which frees the agent for the next one in its team's queue.
Between waves both workers' consumer groups are waited for until they have committed everything, so
at each wave's end the open complaints of every agent are known exactly from the output events:

* every complaint is given to an agent exactly once (distinct event ids; an event repeated after a
  restart keeps its id), and waits in a queue at most once before that;
* at the end of every wave no agent holds more open complaints than its capacity;
* agents of one team with the same capacity (and skills and languages) got numbers of complaints within
  10 % of each other (where each got at least 20: a team's last few complaints cannot split evenly; and
  within one capacity where an agent got fewer than ten times its capacity: see ``allowed``);
* every queued complaint was given to an agent once capacity freed.

The roster is the packaged one without working hours: with them, what waits depends on the hour the
suite runs at (a team outside its hours keeps its queue until they start; the unit tests cover that).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from importlib import resources

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from complaint_stream import topics
from complaint_stream.domain import assignment
from complaint_stream.domain.assignment.roster import Roster
from complaint_stream.kafka.clients import client_config, producer
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    ComplaintAssigned,
    ComplaintClassified,
    Priority,
    Region,
    RiskFlag,
    TicketStatus,
    decode,
    encode,
    wrap,
)
from complaint_stream.workers.launcher import stop_workers
from complaint_stream.workers.registry import WORKERS
from tests.support.faults import consumed, start, wait_for
from tests.support.workers import wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

N = 10_000
KILL_DISPATCH_AT_WAVE, KILL_ASSIGN_AT_WAVE = 2, 5
PLACES = [("广东", "深圳", "南山"), ("广东", "深圳", "福田"), ("广东", "广州", "天河"), ("广东", "广州", "越秀"),
          ("广东", "佛山", "禅城"), ("广东", "东莞", ""), ("广东", "珠海", "香洲"), ("广东", "汕头", "")]
CATEGORY_MIX = [("network", 28), ("billing", 18), ("vas_subscription", 10), ("broadband", 10), ("service_quality", 8),
                ("business_handling", 6), ("marketing", 4), ("number_portability", 4), ("device", 4),
                ("security_fraud", 3), ("other", 5)]


def complaints(tag: str, now: datetime) -> list[ComplaintClassified]:
    rnd = random.Random(20261203)
    regions = {p: Region(province=p[0], city=p[1], district=p[2]) for p in PLACES}
    cats = [Category(c) for c, w in CATEGORY_MIX for _ in range(w)]
    out = []
    for i in range(N):
        p = Priority(rnd.choice(["P1", "P2", "P3", "P3", "P3", "P4"]))
        channel = Channel.REGULATOR if i % 97 == 0 else Channel(rnd.choice(["hotline", "app", "web", "sms"]))
        out.append(ComplaintClassified(
            complaint_id=f"{tag}-{i:05d}", customer_key=f"{i:032x}", channel=channel,
            region=regions[rnd.choice(PLACES)], customer_tier="standard", received_at=now,
            category=rnd.choice(cats), confidence=0.9, priority=p, severity=SEVERITY_OF_PRIORITY[p],
            risk_flags=(RiskFlag.REGULATOR,) if i % 211 == 0 else (),
            repeat_of=f"{tag}-old-{i}" if i % 53 == 0 else None, needs_review=i % 41 == 0,
            home_province_code="440000" if i % 7 else "430000"))
    return out


def ended(cid: str, c: ComplaintClassified, at: datetime) -> CaseUpdated:
    return CaseUpdated(complaint_id=cid, change=CaseChange.RESOLVED, sequence=3, at=at, status=TicketStatus.RESOLVED,
                       category=c.category, priority=c.priority, channel=c.channel, received_at=c.received_at,
                       first_contact_at=c.received_at)


class Tail:
    """The assigned topic from the test's start: every record since, in order, read as far as it goes."""

    def __init__(self, settings):
        self.consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
        parts = [TopicPartition(topics.ASSIGNED.name, p) for p in range(topics.ASSIGNED.partitions)]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)
        self.parts = parts
        for tp in parts:
            self.consumer.position(tp)

    def read(self) -> list:
        end = self.consumer.end_offsets(self.parts)
        out = []
        while any(self.consumer.position(tp) < end[tp] for tp in self.parts):
            for records in self.consumer.poll(timeout_ms=500).values():
                out += [decode(r.value, [ComplaintAssigned]) for r in records]
        return out

    def close(self) -> None:
        self.consumer.close()


def skip_to_end(settings, worker: str, names: list[str]) -> None:
    """Commit the worker's group at the end of its inputs: complaints of earlier tests on the shared broker
    are not this test's (they would hold agents the test never frees)."""
    consumer = KafkaConsumer(**client_config(settings), group_id=WORKERS[worker].app_id, enable_auto_commit=False)
    try:
        parts = [TopicPartition(n, p) for n in names for p in consumer.partitions_for_topic(n) or ()]
        ends = consumer.end_offsets(parts)
        consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in ends.items()})
    finally:
        consumer.close()


def settle(settings) -> None:
    for name in ("assign", "dispatch"):
        wait_caught_up(settings, name, [t.name for t in WORKERS[name].load().binding(settings).inputs], timeout=240)


@pytest.fixture(scope="module")
def kafka_settings(tmp_path_factory, base_settings):
    """A broker of this module's own: the dispatcher's table keeps every team's agents and what they hold,
    and complaints other tests left with agents (never resolved) would hold their capacity here."""
    from tests.support.faults import broker_of_its_own

    with broker_of_its_own(tmp_path_factory, base_settings, "assignment") as (_broker, settings):
        yield settings


def always_open_roster(directory, **changes) -> str:
    """The packaged roster without working hours (see the module's docstring), with ``changes``."""
    raw = json.loads((resources.files(assignment) / "roster.json").read_text(encoding="utf-8"))
    for team in raw["teams"]:
        team.pop("hours", None)
    raw.update(changes)
    path = directory / "roster.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_ten_thousand_complaints_each_assigned_once_within_capacity_through_restarts(kafka_settings, tmp_path):
    # commits every 0.5 s: each of the ~30 waves waits for both groups to have committed everything
    path = always_open_roster(tmp_path)
    settings = kafka_settings.with_overrides(commit_interval_seconds=0.5, roster=path)
    roster = Roster.load(path)
    assert all(t.hours is None for t in roster.teams)
    capacity = {a.id: a.capacity for t in roster.teams for a in t.agents}
    team_of = {a.id: t.id for t in roster.teams for a in t.agents}
    tag = f"AS{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    batch = complaints(tag, now)
    by_id = {c.complaint_id: c for c in batch}
    for name in ("assign", "dispatch"):
        skip_to_end(settings, name, [t.name for t in WORKERS[name].load().binding(settings).inputs])
    tail = Tail(settings)
    workers = start(settings, ["assign", "dispatch"], tmp_path / "first")
    out = producer(settings)
    seen: dict[str, ComplaintAssigned] = {}  # event id -> assignment
    to_agent: dict[str, list[str]] = defaultdict(list)  # complaint -> ids of events giving it to an agent
    queued: dict[str, list[str]] = defaultdict(list)
    holder: dict[str, str] = {}  # complaint -> agent, while not reported ended
    total_by_agent: Counter[str] = Counter()
    waves = 0
    kills = []
    started = time.monotonic()
    try:
        for c in batch:
            out.send(topics.CLASSIFIED.name, key=c.complaint_id.encode(),
                     value=encode(wrap(c, source="/workers/classify", subject=c.complaint_id,
                                       event_id=str(uuid.uuid4()), time=now)))
        out.flush()
        while True:
            settle(settings)
            for env in tail.read():
                a = env.data
                if env.id in seen or a.complaint_id not in by_id:
                    continue
                seen[env.id] = a
                if a.agent_id is None:
                    queued[a.complaint_id].append(env.id)
                else:
                    to_agent[a.complaint_id].append(env.id)
                    holder[a.complaint_id] = a.agent_id
                    total_by_agent[a.agent_id] += 1
            load = Counter(holder.values())  # exact: everything sent is processed and acknowledged
            over = {agent: n for agent, n in load.items() if n > capacity[agent]}
            assert not over, f"wave {waves}: agents above capacity {over}"
            if not holder:
                break
            waves += 1
            at = datetime.now(UTC)
            for cid in list(holder):
                e = ended(cid, by_id[cid], at)
                out.send(topics.CASES.name, key=cid.encode(),
                         value=encode(wrap(e, source="/workers/lifecycle", subject=cid, event_id=str(uuid.uuid4()),
                                           time=at)))
            holder.clear()
            out.flush()
            victim = {KILL_DISPATCH_AT_WAVE: "dispatch", KILL_ASSIGN_AT_WAVE: "assign"}.get(waves)
            if victim:
                proc = workers[victim]
                before = consumed(proc)
                wait_for(lambda p=proc, b=before: consumed(p) > b, 60, f"the {victim} worker consuming wave {waves}",
                         interval=0.05)
                proc.proc.kill()
                proc.proc.wait()
                kills.append(victim)
                workers[victim] = start(settings, [victim], tmp_path / f"restart-{waves}")[victim]
            assert waves < 100, "the queues stopped draining"
    finally:
        out.close()
        tail.close()
        stop_workers(list(workers.values()))
    seconds = time.monotonic() - started

    twice = {cid: ids for cid, ids in to_agent.items() if len(ids) != 1}
    missing = set(by_id) - set(to_agent)
    assert not missing, f"{len(missing)} complaints never given to an agent, e.g. {sorted(missing)[:5]}"
    assert not twice, f"{len(twice)} complaints given to an agent more than once, e.g. {list(twice.items())[:3]}"
    assert all(len(ids) == 1 for ids in queued.values()), "a complaint was queued twice"
    dequeued = [seen[ids[0]] for ids in to_agent.values() if seen[ids[0]].cause == "dequeued"]
    assert len(dequeued) == len(queued), "every queued complaint was given to an agent once capacity freed"
    assert len(queued) > N / 2  # most complaints had to wait: the waves really exercised the queues
    assert kills == ["dispatch", "assign"]

    groups: dict[tuple, list[int]] = defaultdict(list)
    for t in roster.teams:
        for a in t.agents:
            groups[(t.id, a.capacity, t.skills_of(a), t.languages_of(a))].append(total_by_agent[a.id])
    def allowed(capacity: int, counts: list[int]) -> float:
        """10 % of the most; where an agent got fewer than ten times its capacity, one capacity: an agent is
        refilled the moment it is freed (most spare capacity), so in the last wave, when the queue runs out,
        the agents freed first take what remains — up to one capacity more than an equal one (seen: 42 vs
        37 of capacity 6)."""
        return 0.1 * max(counts) if min(counts) >= 10 * capacity else max(0.1 * max(counts), capacity)

    uneven = {k[0]: v for k, v in groups.items()
              if len(v) > 1 and min(v) >= 20 and max(v) - min(v) > allowed(k[1], v)}
    assert not uneven, f"agents of equal skills and capacity got uneven numbers of complaints: {uneven}"
    compared = sum(1 for v in groups.values() if len(v) > 1 and min(v) >= 20)
    assert compared >= 5
    print(f"assignment: {N} complaints, {len(queued)} queued first, {waves} waves of resolutions, "
          f"{len(seen)} distinct assignment events, kills {kills}, {seconds:.0f} s; "
          f"per team {dict(Counter(team_of[seen[ids[0]].agent_id] for ids in to_agent.values()))}")


def test_a_repeat_goes_back_to_its_previous_handler_through_the_routers_own_topic(kafka_settings, tmp_path):
    """``repeat_to: previous_handler``: the repeat's router asks the repeated complaint's router (another
    key, maybe another partition) on ``complaints.assign.links.v1`` and routes on the answer."""
    path = always_open_roster(tmp_path, repeat_to="previous_handler")
    settings = kafka_settings.with_overrides(roster=path)
    roster = Roster.load(path)
    # (no skip_to_end: the groups' static members of the test before are still in them for a session timeout,
    # and that test leaves everything it sent processed and committed, every complaint ended)
    tag = f"RP{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    first, = [c.model_copy(update={"complaint_id": f"{tag}-FIRST", "category": Category.NETWORK, "repeat_of": None,
                                   "follow_up_of": None, "risk_flags": (), "needs_review": False,
                                   "channel": Channel.APP, "priority": Priority.P3,
                                   "severity": SEVERITY_OF_PRIORITY[Priority.P3]})
              for c in complaints(tag, now)[1:2]]
    tail = Tail(settings)
    workers = start(settings, ["assign", "dispatch"], tmp_path / "workers")
    out = producer(settings)

    def send(topic, cid, payload, at):
        out.send(topic, key=cid.encode(), value=encode(wrap(payload, source="/test", subject=cid,
                                                            event_id=str(uuid.uuid4()), time=at)))
        out.flush()

    events: list[ComplaintAssigned] = []

    def assignment_of(cid) -> ComplaintAssigned:
        def given() -> bool:
            events.extend(e.data for e in tail.read())
            return any(a.complaint_id == cid and a.agent_id for a in events)

        try:
            wait_for(given, 120, f"{cid} given to an agent", interval=0.2)
        except AssertionError as exc:
            seen = [(a.team, a.agent_id, a.cause, a.queue_position, a.explanation) for a in events if a.complaint_id == cid]
            raise AssertionError(f"{exc}; its assignment events: {seen}") from None
        return next(a for a in events if a.complaint_id == cid and a.agent_id)

    try:
        send(topics.CLASSIFIED.name, first.complaint_id, first, now)
        a = assignment_of(first.complaint_id)
        team = roster.team(a.team)
        # the lifecycle reports it handled by another agent of the team (moved by a supervisor), then resolved
        handler = next(x.id for x in team.agents if x.id != a.agent_id)
        done = ended(first.complaint_id, first, now).model_copy(update={"handler": handler})
        send(topics.CASES.name, first.complaint_id, done, now)
        settle(settings)  # the router knows the handler before it is asked (the topics are read independently)
        repeat = first.model_copy(update={"complaint_id": f"{tag}-REPEAT", "repeat_of": first.complaint_id})
        stranger = first.model_copy(update={"complaint_id": f"{tag}-STRANGER", "repeat_of": f"{tag}-NEVER"})
        later = datetime.now(UTC)
        send(topics.CLASSIFIED.name, repeat.complaint_id, repeat, later)
        send(topics.CLASSIFIED.name, stranger.complaint_id, stranger, later)
        back, elsewhere = assignment_of(repeat.complaint_id), assignment_of(stranger.complaint_id)
    finally:
        out.close()
        tail.close()
        stop_workers(list(workers.values()))
    repeat_rule = next(r for r in roster.rules if r.match.repeat)
    assert (back.team, back.agent_id, back.rule) == (team.id, handler, repeat_rule.name), back
    assert any(f"the previous handler: {handler}" in line for line in back.explanation), back.explanation
    assert elsewhere.team == repeat_rule.team and elsewhere.rule == repeat_rule.name, elsewhere
    assert any("never routed here" in line for line in elsewhere.explanation), elsewhere.explanation
