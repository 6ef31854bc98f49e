"""Calm reconnects while a broker is away: exponential, capped connection backoff and rate-limited logs.

aiokafka 0.14 retries a lost broker on a fixed ``retry_backoff_ms`` (100 ms) in each of its loops —
metadata, fetcher, group coordinator, producer sender — and logs every failure at ERROR. With the
broker down, one worker made about 65 connection attempts and log lines a second (1,289 lines in 20 s
measured; the issue saw 3,922 in 38 s). faust does not expose a backoff setting, and aiokafka has no
exponential reconnect backoff of its own (kafka-python's ``reconnect_backoff_max_ms`` has no aiokafka
counterpart).

* :func:`install_connect_backoff` wraps ``AIOKafkaClient._get_conn``: after a failed connection to a
  node, the next attempt to that node waits ``base * 2**(failures-1)`` seconds (with ±20 % jitter,
  capped at ``cap``); until then callers get "not ready" at once, as they do after a failed attempt,
  without touching the network. One success resets the node.
* :class:`RateLimit` is a logging filter: the same message template from the same logger passes
  ``burst`` times, then at most once per ``period`` seconds, and the line that passes says how many
  were suppressed. :func:`rate_limit_loggers` attaches it to the Kafka clients' loggers.
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from aiokafka import client as _client

TESTED_AIOKAFKA = "0.14.0"
_original_get_conn = _client.AIOKafkaClient._get_conn


@dataclass
class _NodeBackoff:
    failures: int = 0
    next_attempt: float = 0.0


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: ``base * 2**(n-1)``, capped, with ±jitter."""

    base: float = 0.2
    cap: float = 5.0
    jitter: float = 0.2

    def delay(self, failures: int, rnd: Callable[[], float] = random.random) -> float:
        raw = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rnd())


_backoff = Backoff()
_clock: Callable[[], float] = time.monotonic


async def _get_conn(self: Any, node_id: Any, *, group: Any = _client.ConnectionGroup.DEFAULT,
                    no_hint: bool = False) -> Any:
    conn = self._conns.get((node_id, group))
    if conn is not None and conn.connected():
        return conn
    states: dict[Any, _NodeBackoff] = self.__dict__.setdefault("_cs_backoff", {})
    state = states.setdefault(node_id, _NodeBackoff())
    if _clock() < state.next_attempt:
        return None  # as after a failed attempt: callers back off and retry
    result = await _original_get_conn(self, node_id, group=group, no_hint=no_hint)
    if result is None:
        state.failures += 1
        state.next_attempt = _clock() + _backoff.delay(state.failures)
    else:
        state.failures, state.next_attempt = 0, 0.0
    return result


def install_connect_backoff(backoff: Backoff | None = None) -> None:
    """Wrap aiokafka's connection factory with per-node exponential backoff (idempotent). Refuses an
    aiokafka other than the pinned one: the wrapped method is private."""
    global _backoff
    installed = version("aiokafka")
    if installed != TESTED_AIOKAFKA:
        raise RuntimeError(f"aiokafka {installed} is installed; complaint_stream.workers.reconnect was written for"
                           f" {TESTED_AIOKAFKA}. Review the connection backoff against the new release.")
    if backoff is not None:
        _backoff = backoff
    _client.AIOKafkaClient._get_conn = _get_conn


class RateLimit(logging.Filter):
    """Pass a message template ``burst`` times, then once per ``period`` seconds, saying how many
    similar lines were suppressed in between."""

    def __init__(self, burst: int = 3, period: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst, self.period, self.clock = burst, period, clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [count in window, window start, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(getattr(record, "template", record.msg))[:200])
        now = self.clock()
        entry = self._seen.get(key)
        if entry is None or now - entry[1] >= self.period:
            suppressed = 0 if entry is None else int(entry[2])
            self._seen[key] = [1, now, 0]
            if len(self._seen) > 10_000:  # bounded memory under any message variety
                self._seen.clear()
            if suppressed:
                record.msg = f"{record.msg} ({suppressed} similar lines suppressed in the last {self.period:.0f} s)"
            return True
        if entry[0] < self.burst:
            entry[0] += 1
            return True
        entry[2] += 1
        return False


KAFKA_LOGGERS = ("aiokafka", "faust.transport")
# Modules whose loggers must exist before filters are attached (some are imported lazily by faust).
_LOGGING_MODULES = ("aiokafka.client", "aiokafka.conn", "aiokafka.consumer.fetcher",
                    "aiokafka.consumer.group_coordinator", "aiokafka.producer.sender",
                    "faust.transport.consumer", "faust.transport.drivers.aiokafka")


def rate_limit_loggers(prefixes: Iterable[str] = KAFKA_LOGGERS, limiter: RateLimit | None = None) -> RateLimit:
    """Attach one :class:`RateLimit` to every existing logger under these prefixes (and the prefixes
    themselves). A filter on a logger sees only the records made by that logger, hence each one."""
    for module in _LOGGING_MODULES:
        importlib.import_module(module)
    limiter = limiter or RateLimit()
    names = [name for name in list(logging.Logger.manager.loggerDict)
             if any(name == p or name.startswith(p + ".") for p in prefixes)]
    for name in {*names, *prefixes}:
        logger = logging.getLogger(name)
        if limiter not in logger.filters:
            logger.addFilter(limiter)
    return limiter
