"""The lifecycle worker on the real broker, with the real intake and classify workers in front of it.

2,000 contacts (1,700 first complaints, 300 follow-ups by the same customers), then status updates,
resolutions, callbacks, merges, reopens and invalid updates, with the lifecycle worker killed (-9)
and restarted in the middle. Every count is read back from the topics, de-duplicated by event id
(at-least-once: a restart may repeat an output, never with another id):

* one case per first complaint, none for a follow-up, one acknowledgement per case;
* every valid update applied once (its change on the lifecycle topic once);
* every invalid update dead-lettered once, with the rule it broke;
* exactly one resolved event per resolution, one closed / cancelled event per case that ended.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from complaint_stream import topics
from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.kafka.clients import producer
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import (
    CallbackRecorded,
    CaseChange,
    CaseUpdated,
    Category,
    ClassificationCorrected,
    CommunicationRequested,
    ComplaintResolved,
    ComplaintStatusChanged,
    DeadLetter,
    MergeComplaints,
    ReclassifyComplaint,
    Resolution,
    TicketStatus,
    encode,
    wrap,
)
from complaint_stream.workers.launcher import stop_workers
from complaint_stream.workers.registry import WORKERS
from tests.support.cli import run_cli
from tests.support.factories import TEXTS, submission
from tests.support.faults import start, wait_for
from tests.support.stream import fresh_start
from tests.support.workers import wait_caught_up

pytestmark = pytest.mark.integration

FIRST, FOLLOW_UPS = 1700, 300
IN_PROGRESS, RESOLVED, REOPENED, CALLBACKS = 1200, 800, 100, 300
RESOLVE_EARLY, UNKNOWN, STALE, MERGES = 100, 50, 50, 20
RECLASSIFY_FROM, RECLASSIFIED = 1000, 10


@pytest.fixture
def settings(kafka_settings, tmp_path):
    """No quiet hours (acknowledgements go at once, whenever the suite runs), fast timers, a short grace."""
    from complaint_stream.domain.lifecycle.policy import LifecyclePolicy

    base = json.loads(LifecyclePolicy.load().file.model_dump_json(by_alias=True))
    base.update(quiet_hours_start="00:00", quiet_hours_end="00:00", timer_seconds=1.0,
                unknown_complaint_grace_minutes=0.1)
    path = tmp_path / "lifecycle.json"
    path.write_text(json.dumps(base), encoding="utf-8")
    return kafka_settings.with_overrides(lifecycle_policy=str(path))


def contacts(tag: str, now: datetime) -> tuple[list, list]:
    """First complaints of FIRST customers, and FOLLOW_UPS second contacts by the first FOLLOW_UPS of
    them, with the same text (so the same category) while their complaint is open."""
    start = fresh_start()
    first = [submission_envelope(validate_submission(
        submission(start + i, now, channel_ref=f"{tag}-{i:05d}"), now=now)) for i in range(FIRST)]
    again = []
    for i in range(FOLLOW_UPS):
        raw = submission(start + i, now, channel_ref=f"{tag}-again-{i:05d}", channel="hotline")
        raw["text"] = TEXTS[(start + i) % len(TEXTS)] + "，请尽快处理"
        again.append(submission_envelope(validate_submission(raw, now=now)))
    return first, again


class Sender:
    def __init__(self, settings):
        self.p = producer(settings)
        self.futures = []

    def send(self, topic, key: str, env) -> None:
        self.futures.append(self.p.send(topic.name, key=key.encode(), value=encode(env)))

    def flush(self) -> None:
        self.p.flush()
        for f in self.futures:
            f.get(timeout=30)
        self.futures.clear()

    def close(self) -> None:
        self.p.close()


def status(cid: str, to: str, at: datetime, n: int, **kw) -> object:
    data = ComplaintStatusChanged(complaint_id=cid, status=TicketStatus(to), changed_at=at, actor=f"agent-{n % 40}",
                                  **kw)
    return wrap(data, source="/crm", subject=cid, event_id=str(uuid.uuid4()), time=at)


def read(settings, topic):
    return [r.envelope for r in read_topic(settings, topic, idle_timeout=3) if r.envelope is not None]


def test_two_thousand_contacts_with_updates_and_a_restart(settings, tmp_path):
    tag = f"LC-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    first, again = contacts(tag, now)
    workers = start(settings, WORKERS, tmp_path / "first")
    out = Sender(settings)
    restarted = None
    try:
        for env in first:
            out.send(topics.SUBMISSIONS, env.data.dedup_key, env)
        out.flush()
        wait_settled(settings)
        ids = {e.data.channel_ref: e.data.complaint_id for e in read(settings, topics.RECEIVED)
               if e.data.channel_ref.startswith(tag)}
        assert len(ids) == FIRST
        case = [ids[f"{tag}-{i:05d}"] for i in range(FIRST)]

        # phase 2: follow-ups, handling and resolutions, invalid updates; the lifecycle worker killed mid-way
        t = datetime.now(UTC)
        for env in again:
            out.send(topics.SUBMISSIONS, env.data.dedup_key, env)
        valid: Counter[str] = Counter()
        for i in range(IN_PROGRESS):
            out.send(topics.STATUS, case[i], status(case[i], "inProgress", t, i))
            valid[case[i]] += 1
        for i in range(FIRST - RESOLVE_EARLY, FIRST):  # acknowledged -> resolved
            out.send(topics.STATUS, case[i], status(case[i], "resolved", t, i,
                                                    resolution=Resolution(code="explanation")))
        ghosts = [f"GHOST-{tag}-{i:03d}" for i in range(UNKNOWN)]
        for i, ghost in enumerate(ghosts):
            out.send(topics.STATUS, ghost, status(ghost, "inProgress", t, i))
        out.flush()
        lifecycle = workers["lifecycle"]
        wait_for(lambda: consumed_status(lifecycle) > 0, 60, "the lifecycle worker applying status updates")
        lifecycle.proc.kill()
        lifecycle.proc.wait()
        restarted = start(settings, ["lifecycle"], tmp_path / "restarted")["lifecycle"]
        wait_settled(settings)
        t2 = datetime.now(UTC)
        for i in range(RESOLVED):
            refund = 1500 if i % 4 == 0 else None
            out.send(topics.STATUS, case[i], status(
                case[i], "resolved", t2, i, resolution=Resolution(code="refund" if refund else "technical_fix",
                                                                 root_cause="billing_error", refund_fen=refund)))
            valid[case[i]] += 1
        for i in range(RESOLVED, RESOLVED + STALE):  # older than the inProgress above, from the same source
            out.send(topics.STATUS, case[i], status(case[i], "pending", t - timedelta(minutes=5), i))
        out.flush()
        wait_settled(settings)

        # phase 3: callbacks close, reopens, merges
        t3 = datetime.now(UTC)
        for i in range(CALLBACKS):
            cb = CallbackRecorded(complaint_id=case[i], outcome="reached", answer="satisfied", actor="survey", at=t3)
            out.send(topics.STATUS, case[i], wrap(cb, source="/callcentre", subject=case[i],
                                                  event_id=str(uuid.uuid4()), time=t3))
        for i in range(CALLBACKS, CALLBACKS + REOPENED):
            out.send(topics.STATUS, case[i], status(case[i], "inProgress", t3, i, reason_code="customer_rejected"))
            valid[case[i]] += 1
        categories = {e.data.complaint_id: e.data.category for e in read(settings, topics.CLASSIFIED)
                      if e.data.complaint_id in set(case)}
        corrected = {}
        for i in range(RECLASSIFY_FROM, RECLASSIFY_FROM + RECLASSIFIED):
            to = Category.OTHER if categories[case[i]] is not Category.OTHER else Category.BILLING
            corrected[case[i]] = to
            cmd = ReclassifyComplaint(complaint_id=case[i], category=to, requested_by="sup-2", reason="misread")
            out.send(topics.COMMANDS, case[i], wrap(cmd, source="/supervisors", subject=case[i],
                                                    event_id=str(uuid.uuid4()), time=t3))
        survivors = range(RESOLVED + STALE, RESOLVED + STALE + MERGES)
        for i in survivors:
            merged = case[i + MERGES]
            cmd = MergeComplaints(complaint_id=case[i], merged_id=merged, requested_by="sup-1", reason="same outage")
            out.send(topics.COMMANDS, case[i], wrap(cmd, source="/supervisors", subject=case[i],
                                                    event_id=str(uuid.uuid4()), time=t3))
        out.flush()
        wait_settled(settings)
        t4 = datetime.now(UTC)
        for i in range(CALLBACKS, CALLBACKS + REOPENED):  # resolved a second time
            out.send(topics.STATUS, case[i], status(case[i], "resolved", t4, i,
                                                    resolution=Resolution(code="compensation", compensation_fen=500)))
            valid[case[i]] += 1
        out.flush()
        wait_settled(settings)
        # the ghosts' grace (6 s) runs out on the worker's timer (every second)
        wait_for(lambda: len(refusals(settings, set(ghosts)).get("unknown_complaint", set())) >= UNKNOWN, 60,
                 "the updates about unknown complaints dead-lettered after their grace", interval=1.0)
    finally:
        out.close()
        stop_workers([*workers.values(), *([restarted] if restarted else [])])

    ours = set(case)
    follow_up_ids = {e.data.complaint_id for e in read(settings, topics.RECEIVED)
                     if e.data.channel_ref.startswith(f"{tag}-again-")}
    assert len(follow_up_ids) == FOLLOW_UPS
    everyone = ours | follow_up_ids
    changes = {e.id: e.data for e in read(settings, topics.CASES) if e.data.complaint_id in everyone}
    by_kind: dict[CaseChange, Counter[str]] = defaultdict(Counter)
    for c in changes.values():
        assert isinstance(c, CaseUpdated)
        by_kind[c.change][c.complaint_id] += 1

    # one case per first complaint, none for a follow-up
    assert set(by_kind[CaseChange.OPENED]) == ours and set(by_kind[CaseChange.OPENED].values()) == {1}
    assert sum(by_kind[CaseChange.FOLLOW_UP].values()) == FOLLOW_UPS
    assert {c.related for c in changes.values() if c.change is CaseChange.FOLLOW_UP} == follow_up_ids

    # every valid update applied once
    applied = Counter()
    for kind in (CaseChange.STATUS, CaseChange.RESOLVED, CaseChange.REOPENED):
        applied.update(by_kind[kind])
    assert applied == valid

    # every invalid one dead-lettered once, with its rule
    rules = refusals(settings, ours | set(ghosts))
    assert {rule: len(ids) for rule, ids in rules.items()} == {
        "resolve_before_handling": RESOLVE_EARLY, "unknown_complaint": UNKNOWN, "stale_update": STALE}

    # exactly one resolved event per resolution; closed after the callback; merged ones cancelled
    outcomes = {e.id: e.data for e in read(settings, topics.RESOLVED) if e.data.complaint_id in ours}
    per_status: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes.values():
        if isinstance(o, ComplaintResolved):
            per_status[o.status.value][o.complaint_id] += 1
    want_resolved = Counter({case[i]: 1 for i in range(RESOLVED)})
    want_resolved.update({case[i]: 1 for i in range(CALLBACKS, CALLBACKS + REOPENED)})
    assert per_status["resolved"] == want_resolved
    assert per_status["closed"] == Counter({case[i]: 1 for i in range(CALLBACKS)})
    assert per_status["cancelled"] == Counter({case[i + MERGES]: 1 for i in survivors})
    refunds = [o for o in outcomes.values() if isinstance(o, ComplaintResolved) and o.refund_fen
               and o.status is TicketStatus.RESOLVED]
    assert len(refunds) == RESOLVED // 4 and {o.refund_fen for o in refunds} == {1500}

    # every correction once on the corrections topic, where `complaints classifier corrections` finds it
    corrections = {e.data.complaint_id: e.data.category for e in read(settings, topics.CORRECTIONS)
                   if isinstance(e.data, ClassificationCorrected) and e.data.complaint_id in ours}
    assert corrections == corrected
    exported = run_cli(settings, "classifier", "corrections")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {row["complaint_id"]: row["category"] for row in lines if row["complaint_id"] in ours} == {
        cid: c.value for cid, c in corrected.items()}
    assert sum(by_kind[CaseChange.RECLASSIFIED].values()) == RECLASSIFIED

    # one acknowledgement per case, none for a follow-up
    acks = Counter(e.data.complaint_id for e in {e.id: e for e in read(settings, topics.NOTIFICATIONS)}.values()
                   if isinstance(e.data, CommunicationRequested) and e.data.template_id == "acknowledgement"
                   and e.data.complaint_id in everyone)
    assert acks == Counter({cid: 1 for cid in ours})


def consumed_status(worker) -> float:
    from tests.support.workers import scrape

    try:
        metrics = scrape(worker.port)
        return sum(v for k, v in metrics.items()
                   if k.startswith("complaints_records_consumed_total") and topics.STATUS.name in k)
    except OSError:
        return 0.0


def wait_settled(settings) -> None:
    for name in ("intake", "classify", "lifecycle"):
        b = WORKERS[name].load().binding(settings)
        names = [t.name for t in (*b.inputs, *((b.repartition,) if b.repartition else ()))]
        wait_caught_up(settings, name, names, timeout=180)


def refusals(settings, tag_ids: set[str]) -> dict[str, set[str]]:
    """Dead letters of the lifecycle stage refused by a rule: rule -> ids of the original events."""
    out: dict[str, set[str]] = defaultdict(set)
    for env in read(settings, topics.DEAD_LETTERS):
        letter = env.data
        if not isinstance(letter, DeadLetter) or letter.stage != "lifecycle" or letter.error.type != "refused":
            continue
        original = json.loads(letter.original_value)
        if original["data"]["complaint_id"] not in tag_ids:
            continue
        out[letter.error.message.split(":", 1)[0]].add(original["id"])
    return dict(out)

