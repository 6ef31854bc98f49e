"""Fault injection on the broker: stopped (SIGTERM) and killed (kill -9) in the middle of a steady
stream, then started again. Workers and the publisher must recover by themselves (same processes, no
restart), lose nothing, and repeat only identical outputs. The module runs its own broker, so the
session broker other tests use is never disturbed."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from complaint_stream.kafka.local_broker import _pid_alive
from complaint_stream.settings import load_settings
from complaint_stream.workers.launcher import stop_workers
from tests.fault.conftest import REPLAY_GRACE_MINUTES, fault_lifecycle_policy
from tests.fault.test_worker_faults import COUNT, RATE, check
from tests.support.faults import alive, broker_of_its_own, consumed, start, wait_all_caught_up, wait_for
from tests.support.stream import Publisher, replayable_workers, traffic

pytestmark = [pytest.mark.integration, pytest.mark.fault]


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory, fault_base_settings):
    """A broker of the module's own (it is stopped), with the replay comparison's grace (see
    ``tests/fault/conftest.py``: ``REPLAY_GRACE_MINUTES``)."""
    policy = fault_lifecycle_policy(tmp_path_factory.mktemp("replay-policy"), grace_minutes=REPLAY_GRACE_MINUTES)
    with broker_of_its_own(tmp_path_factory, fault_base_settings.with_overrides(lifecycle_policy=policy),
                           "faults") as pair:
        yield pair


def sigkill(broker):
    pid = broker.running_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def gone():
        broker._reap(pid)  # the broker is our child only when this process started it
        return not _pid_alive(pid)

    wait_for(gone, 30, "the broker gone")


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
def test_broker_stopped_mid_stream_and_started_again_loses_nothing(own_broker, tmp_path, how):
    broker, settings = own_broker
    envelopes = traffic(COUNT, tag=f"BRK-{uuid.uuid4().hex[:6]}")
    workers = start(settings, replayable_workers(load_settings(environ={})), tmp_path / "workers")
    pids = {n: w.proc.pid for n, w in workers.items()}
    try:
        publisher = Publisher(settings, envelopes, RATE)
        publisher.start()
        publisher.wait_sent(COUNT // 3)
        if how == "SIGTERM":
            broker.stop()
        else:
            sigkill(broker)
        down_at = time.monotonic()
        publisher.wait_sent(COUNT // 2)  # the publisher goes on handing records over while the broker is away
        broker.start(timeout=120)
        outage = time.monotonic() - down_at
        before = {n: consumed(w) for n, w in workers.items()}
        recovery = max(wait_for(lambda n=n, w=w: consumed(w) > before[n], 120, f"{n} processing again")
                       for n, w in workers.items())
        publisher.join(timeout=300)
        assert not publisher.failed, publisher.failed[:3]
        wait_all_caught_up(settings, workers)
        for name, w in workers.items():
            assert alive(w) and w.proc.pid == pids[name], f"{name} did not survive the outage:\n{w.tail()}"
    finally:
        stop_workers(workers.values())
    check(settings, None, envelopes, f"broker {how} + start", "all", recovery,
          f"broker back to every worker processing; outage {outage:.1f} s")
