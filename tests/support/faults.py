"""Running every registered worker for a fault case, and measuring how long a fault costs."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from complaint_stream.kafka.local_broker import free_port
from complaint_stream.settings import Settings
from complaint_stream.workers.launcher import WorkerProcess, readiness, start_workers, wait_ready
from complaint_stream.workers.registry import WORKERS
from tests.support.stream import bindings
from tests.support.workers import scrape, total, wait_caught_up


@contextmanager
def broker_of_its_own(tmp_path_factory: Any, base_settings: Settings, name: str) -> Iterator[tuple[Any, Settings]]:
    """A fresh broker with every topic, for tests that must not disturb (or be disturbed by) the session
    broker: they stop it, or write records other tests would trip over. Yields (broker, settings)."""
    from complaint_stream.kafka.admin import create_topics
    from complaint_stream.kafka.local_broker import ephemeral_broker

    broker = ephemeral_broker(tmp_path_factory.mktemp(f"kafka-{name}"), base_settings.cache_dir,
                              base_settings.kafka_version)
    broker.start(timeout=120)
    try:
        settings = base_settings.with_overrides(kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1,
                                                state_dir=tmp_path_factory.mktemp(f"state-{name}"))
        create_topics(settings)
        yield broker, settings
    finally:
        broker.destroy()


def worker_topics(settings: Settings, name: str) -> list[str]:
    """Every topic the worker's group consumes: its inputs and its re-keying topic."""
    b = WORKERS[name].load().binding(settings)
    return [t.name for t in (*b.inputs, *((b.repartition,) if b.repartition else ()))]


def input_partitions(settings: Settings, name: str) -> int:
    """How many partitions one instance reports in ``/readyz`` when it holds all of them."""
    b = WORKERS[name].load().binding(settings)
    return sum({t.name: t.partitions for t in (*b.inputs, b.stream_topic)}.values())


def start(settings: Settings, names: Iterable[str], log_dir: Path, instance: int = 0) -> dict[str, WorkerProcess]:
    names = list(names)
    procs = start_workers(settings, names, log_dir, ports={n: free_port() for n in names}, log_prefix="",
                          instance=instance)
    wait_ready(procs, timeout=120)
    return {p.name: p for p in procs}


def consumed(worker: WorkerProcess) -> float:
    try:
        return total(scrape(worker.port), "complaints_records_consumed_total")
    except OSError:
        return -1.0


def partitions_held(worker: WorkerProcess) -> int:
    ready, why = readiness(worker)
    if ready and why.endswith("partitions"):
        return int(why.split()[-2])  # "ready: 6 partitions"
    return 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll until ``condition()``; return the seconds it took."""
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout:.0f}s"
        time.sleep(interval)
    return time.monotonic() - t0


def wait_all_caught_up(settings: Settings, names: Iterable[str], timeout: float = 180.0) -> None:
    """Wait until each named worker's group has committed everything on its inputs (name only the
    workers that run: a group nobody runs never catches up)."""
    for name in names:
        wait_caught_up(settings, name, worker_topics(settings, name), timeout=timeout)


def alive(worker: WorkerProcess) -> bool:
    if worker.proc.poll() is not None:
        return False
    try:
        with urllib.request.urlopen(f"{worker.url}/healthz", timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


__all__ = ["alive", "bindings", "broker_of_its_own", "consumed", "input_partitions", "partitions_held", "start",
           "wait_all_caught_up", "wait_for", "worker_topics"]
