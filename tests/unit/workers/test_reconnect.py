"""Connection backoff and log rate limiting for a broker that is away."""

from __future__ import annotations

import logging

import pytest

from complaint_stream.workers import reconnect
from complaint_stream.workers.reconnect import Backoff, RateLimit


def test_backoff_doubles_from_the_base_up_to_the_cap_with_bounded_jitter():
    b = Backoff(base=0.2, cap=5.0, jitter=0.2)
    assert [b.delay(n, rnd=lambda: 0.5) for n in (1, 2, 3, 4, 5, 6, 10)] == pytest.approx(
        [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert b.delay(10, rnd=lambda: 0.0) == pytest.approx(4.0) and b.delay(10, rnd=lambda: 1.0) == pytest.approx(6.0)


class FakeConn:
    def connected(self):
        return True


class FakeClient:
    def __init__(self, results):
        self._conns = {}
        self.results = list(results)
        self.attempts = 0


async def test_a_failing_node_is_not_retried_before_its_backoff_and_a_success_resets_it(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(reconnect, "_clock", lambda: now[0])
    monkeypatch.setattr(reconnect, "_backoff", Backoff(base=1.0, cap=8.0, jitter=0.0))

    async def original(self, node_id, *, group, no_hint):
        self.attempts += 1
        return self.results.pop(0)

    monkeypatch.setattr(reconnect, "_original_get_conn", original)
    client = FakeClient([None, None, FakeConn(), None])
    assert await reconnect._get_conn(client, 1) is None and client.attempts == 1   # fails: wait 1 s
    now[0] += 0.5
    assert await reconnect._get_conn(client, 1) is None and client.attempts == 1   # within the backoff: no attempt
    now[0] += 0.6
    assert await reconnect._get_conn(client, 1) is None and client.attempts == 2   # fails again: wait 2 s
    now[0] += 1.9
    assert await reconnect._get_conn(client, 1) is None and client.attempts == 2
    now[0] += 0.2
    assert isinstance(await reconnect._get_conn(client, 1), FakeConn) and client.attempts == 3
    assert await reconnect._get_conn(client, 1) is None and client.attempts == 4   # reset: first failure again
    now[0] += 1.01
    assert client.results == [] and client.__dict__["_cs_backoff"][1].failures == 1


def record(msg, *args, name="aiokafka.client"):
    rec = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)
    rec.template = msg
    return rec


def test_the_same_line_passes_a_burst_then_once_a_period_saying_how_many_were_suppressed():
    now = [0.0]
    limit = RateLimit(burst=3, period=30.0, clock=lambda: now[0])
    passed = []
    for i in range(100):
        now[0] = i * 0.1
        r = record("Unable connect to node with id %s: %s", 1, f"attempt {i}")
        if limit.filter(r):
            passed.append(r)
    assert len(passed) == 3
    now[0] = 31.0
    r = record("Unable connect to node with id %s: %s", 1, "again")
    assert limit.filter(r) and "97 similar lines suppressed" in r.msg
    other = record("Heartbeat failed", name="aiokafka.consumer.group_coordinator")
    assert limit.filter(other)


def test_the_loggers_the_kafka_client_modules_log_through_get_the_filter():
    import importlib

    limiter = reconnect.rate_limit_loggers()
    try:
        for module in ("aiokafka.client", "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator",
                       "aiokafka.producer.sender"):
            assert limiter in importlib.import_module(module).log.filters, module
    finally:
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.removeFilter(limiter)
