"""Run the real workers (``complaints worker NAME``) as subprocesses against the test broker, wait until
they report ready, and wait until their consumer groups have committed everything before counting."""

from __future__ import annotations

import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from complaint_stream.kafka.clients import admin, client_config
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.workers.launcher import start_workers, stop_workers, wait_ready
from complaint_stream.workers.registry import WORKERS


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def total(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


@contextmanager
def running_workers(settings, names, log_dir: Path, *, ready: bool = True):
    """Start the named workers on free ports; yield {name: port} once each reports ready on /readyz."""
    ports = {name: free_port() for name in names}
    workers = start_workers(settings, names, log_dir, ports=ports, log_prefix="")
    try:
        if ready:
            wait_ready(workers, timeout=120)
        yield ports
    finally:
        stop_workers(workers)


def lag(settings, group: str, topic_names) -> dict[tuple[str, int], int]:
    """End offset minus committed offset of each partition (a missing commit counts from 0)."""
    client = admin(settings)
    consumer = KafkaConsumer(**client_config(settings))
    try:
        committed = client.list_group_offsets({group: None}).get(group, {})
        tps = [TopicPartition(t, p) for t in topic_names for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps}
    finally:
        consumer.close()
        client.close()


def wait_caught_up(settings, worker: str, topic_names, timeout: float = 120.0) -> None:
    """Wait until the worker's group has committed every record of its input topics: all of them are
    processed and their outputs acknowledged, so counting now is final."""
    group = WORKERS[worker].app_id
    deadline = time.monotonic() + timeout
    while True:
        try:
            behind: object = {tp: n for tp, n in lag(settings, group, topic_names).items() if n}
        except KafkaError as exc:
            if not exc.retriable:  # e.g. the group coordinator still loading its offsets after a broker restart
                raise
            behind = f"{type(exc).__name__} while reading the group's offsets"
        if not behind:
            return
        assert time.monotonic() < deadline, f"{worker} left partitions behind after {timeout:.0f}s: {behind}"
        time.sleep(0.3)
