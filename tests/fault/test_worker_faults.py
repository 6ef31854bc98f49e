"""Fault injection on the workers (real broker on loopback; every registered worker whose outputs a replay
reproduces joins: all but the assignment pair, which tests/integration/test_assignment.py kills instead).

* kill -9 of each worker in the middle of a steady stream, then a restart;
* two instances of every worker, one stopped (SIGTERM) and started again mid-stream.

Each case checks 0 lost at every stage, repeated outputs identical to the original (same event id,
same content), and, after de-duplication by id, outputs equal to the stages' pure code replayed over
the same submissions (an undisturbed run). Recovery times go to the reliability table.
"""

from __future__ import annotations

import time
import uuid

import pytest

from complaint_stream import topics
from complaint_stream.settings import load_settings
from complaint_stream.workers.launcher import stop_workers
from tests.support import reliability
from tests.support.faults import (
    alive,
    consumed,
    input_partitions,
    partitions_held,
    start,
    wait_all_caught_up,
    wait_for,
)
from tests.support.stream import (
    Publisher,
    compare,
    expected_outputs,
    fresh_start,
    mark,
    observe,
    replayable_workers,
    traffic,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COUNT, RATE = 1500, 150.0
#: The workers these runs start and compare with a replay (all but the assignment pair, whose decisions
#: depend on arrival order: see ``tests.support.stream.replayable_workers``).
WORKERS = replayable_workers(load_settings(environ={}))
#: What submissions alone make every stage produce (status updates, commands and callbacks make the rest):
#: the acknowledgements too, since the fault suite's lifecycle policy has no quiet hours (conftest.py).
DRIVEN_BY_SUBMISSIONS = (topics.RECEIVED, topics.CLASSIFIED, topics.CASES, topics.NOTIFICATIONS)


def check(settings, since, envelopes, fault, worker, recovery, note=""):
    expected = expected_outputs(settings, envelopes)
    result = compare(expected, observe(settings, expected, since))
    reliability.record(reliability.Row(fault, worker, len({e.data.channel_ref for e in envelopes}),
                                       result.lost_total, result.duplicates, len(result.differing), recovery, note))
    assert result.lost_total == 0, f"lost per topic: {result.lost}"
    assert not any(result.unexpected.values()), (f"outputs no undisturbed run gives: {result.unexpected},"
                                                 f" e.g. {result.unexpected_examples}")
    assert result.differing == [], result.differing[:5]
    for topic in DRIVEN_BY_SUBMISSIONS:
        assert expected[topic.name], f"the undisturbed run gives nothing on {topic.name}: the check would be empty"


@pytest.mark.parametrize("victim", list(WORKERS))
def test_kill_9_mid_stream_and_restart_loses_nothing(kafka_settings, tmp_path, victim):
    envelopes = traffic(COUNT, tag=f"K9-{victim}-{uuid.uuid4().hex[:6]}")
    since = mark(kafka_settings)
    workers = start(kafka_settings, WORKERS, tmp_path / "first")
    restarted = None
    try:
        publisher = Publisher(kafka_settings, envelopes, RATE)
        publisher.start()
        publisher.wait_sent(COUNT * 2 // 5)
        target = workers[victim]
        # downstream workers start later (what they read is written by the ones before them): wait for it
        wait_for(lambda: consumed(target) > 0, 60, f"{victim} processing before the kill", interval=0.05)
        target.proc.kill()
        target.proc.wait()
        killed_at = time.monotonic()
        restarted = start(kafka_settings, [victim], tmp_path / "restarted")[victim]
        wait_for(lambda: consumed(restarted) > 0, 60, f"{victim} processing again after the restart")
        recovery = time.monotonic() - killed_at
        publisher.join(timeout=240)
        assert not publisher.failed, publisher.failed[:3]
        wait_all_caught_up(kafka_settings, WORKERS)
        others = [w for n, w in workers.items() if n != victim]
        assert all(alive(w) for w in [*others, restarted]), "a worker died"
    finally:
        stop_workers([*workers.values(), *([restarted] if restarted else [])])
    check(kafka_settings, since, envelopes, "kill -9 + restart", victim, recovery, "kill to first record processed")


def kill_9(workers):
    for w in workers:
        w.proc.kill()
        w.proc.wait()


@pytest.mark.parametrize("stop", [stop_workers, kill_9], ids=["SIGTERM", "kill-9"])
def test_two_instances_one_stopped_and_started_mid_stream_moves_partitions_and_state(kafka_settings, tmp_path,
                                                                                     stop):
    tag, start_at = f"TWO-{uuid.uuid4().hex[:6]}", fresh_start()
    envelopes = traffic(COUNT, tag=tag, start=start_at)
    # retries of the first complaints (new events, same channel references), sent after the partitions
    # moved twice: the de-duplication state must have moved with them, so they make no new complaint
    retries = traffic(200, tag=tag, start=start_at)
    since = mark(kafka_settings)
    first = start(kafka_settings, WORKERS, tmp_path / "a", instance=0)
    second = start(kafka_settings, WORKERS, tmp_path / "b", instance=1)
    again = {}
    try:
        for name in WORKERS:
            wait_for(lambda n=name: partitions_held(second[n]) > 0, 60, f"{name} instance 2 assigned partitions")
        publisher = Publisher(kafka_settings, envelopes, RATE)
        publisher.start()
        publisher.wait_sent(COUNT // 3)
        stop(second.values())
        stopped_at = time.monotonic()
        for name in WORKERS:
            wait_for(lambda n=name: partitions_held(first[n]) == input_partitions(kafka_settings, n), 60,
                     f"{name} instance 1 holding every partition")
        takeover = time.monotonic() - stopped_at
        publisher.wait_sent(COUNT * 2 // 3)
        again = start(kafka_settings, WORKERS, tmp_path / "b-again", instance=1)
        started_at = time.monotonic()
        for name in WORKERS:
            wait_for(lambda n=name: 0 < partitions_held(first[n]) < input_partitions(kafka_settings, n), 60,
                     f"{name} partitions shared again")
        rebalance = time.monotonic() - started_at
        publisher.join(timeout=240)
        assert not publisher.failed, publisher.failed[:3]
        retry_publisher = Publisher(kafka_settings, retries, 1000.0)
        retry_publisher.run()
        assert not retry_publisher.failed
        wait_all_caught_up(kafka_settings, WORKERS)
        assert all(alive(w) for w in [*first.values(), *again.values()]), "a worker died"
    finally:
        stop_workers([*first.values(), *second.values(), *again.values()])
    how = "stopped (SIGTERM)" if stop is stop_workers else "killed (kill -9)"
    check(kafka_settings, since, envelopes + retries, f"2 instances, one {how} and started again", "all", takeover,
          f"stop to survivor holding all partitions; back to shared {rebalance:.1f} s after the restart")
