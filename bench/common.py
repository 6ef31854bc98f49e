"""What the broker benchmarks share: a broker on loopback, percentiles, process CPU time."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from complaint_stream.kafka.local_broker import ephemeral_broker  # noqa: E402
from complaint_stream.settings import Settings, load_settings  # noqa: E402

if TYPE_CHECKING:
    from complaint_stream.kafka.local_broker import LocalBroker


def pct(values, p: float):
    """The p-th percentile (nearest rank) of ``values``."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


@contextmanager
def bench_settings() -> Iterator[tuple[Settings, Path]]:
    """Settings for a benchmark: COMPLAINTS_KAFKA_BOOTSTRAP when set, else a throwaway broker on
    127.0.0.1; a scratch directory for state. Everything is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        settings = load_settings().with_overrides(state_dir=scratch / "state")
        broker = None
        if settings.uses_local_broker:
            broker = ephemeral_broker(scratch / "kafka", settings.cache_dir, settings.kafka_version)
            broker.start()
            settings = settings.with_overrides(kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1)
        try:
            yield settings, scratch
        finally:
            if broker is not None:
                broker.destroy()


@contextmanager
def throwaway_broker(root: Path) -> Iterator[tuple[LocalBroker, int]]:
    """ONE fresh single-node KRaft broker on free loopback ports under ``root`` (never an external
    cluster, whatever COMPLAINTS_KAFKA_BOOTSTRAP says); yields it with its pid, destroys it afterwards."""
    base = load_settings(environ={})
    broker = ephemeral_broker(root, base.cache_dir, base.kafka_version)
    report = broker.start(timeout=120)
    try:
        yield broker, report.pid
    finally:
        broker.destroy()


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """utime+stime (plus reaped children) of ``pid`` from /proc/<pid>/stat, in seconds; with
    ``descendants`` also of every live process below it. 0.0 for a process that is gone."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p: int) -> float:
        try:
            with open(f"/proc/{p}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime

    pids = {pid}
    if descendants:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
        todo = [pid]
        while todo:
            for child in parents.get(todo.pop(), ()):
                if child not in pids:
                    pids.add(child)
                    todo.append(child)
    return sum(one(p) for p in pids)
