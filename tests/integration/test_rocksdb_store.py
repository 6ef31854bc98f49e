"""A worker whose binding keeps its table in RocksDB (``Binding.store = "rocksdb"``), on a broker of its own.

The intake worker (its de-duplication table ``intake-seen``, a timer stage) runs with its binding switched
to RocksDB. After it stops, every changelog partition's database records the offset of the last record
on the changelog (the runtime persists it once the broker acknowledged its writes), so a restart has
nothing to read from the changelog: the number of records the restart must read is 0, against the number
the first run wrote. The state really is on disk: retries of what came before each restart (a clean stop,
then a kill -9) are still recognised as duplicates.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from complaint_stream import topics
from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.kafka.clients import client_config, producer
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import encode
from complaint_stream.settings import to_environ
from complaint_stream.workers.due_index import UNKNOWN, peek
from complaint_stream.workers.launcher import WorkerProcess, stop_workers, wait_ready
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import worker_datadir
from tests.support.factories import submission
from tests.support.faults import broker_of_its_own
from tests.support.workers import scrape, total, wait_caught_up

pytestmark = pytest.mark.integration

FIRST, SECOND, THIRD, RETRIES = 300, 200, 100, 40
INSTANCE = f"{socket.gethostname()}-rocks"
OFFSET_KEY = b"__faust\0offset__"  # where faust's RocksDB store keeps a partition's persisted offset

#: ``complaints worker NAME`` with the worker's registered binding switched to RocksDB.
RUN_WITH_ROCKSDB = """
import dataclasses, sys
from complaint_stream.settings import load_settings
from complaint_stream.workers import runtime
from complaint_stream.workers.registry import WORKERS

entry = WORKERS[sys.argv[1]]
settings = load_settings()
binding = dataclasses.replace(entry.load().binding(settings), store="rocksdb")
create = runtime.create_worker
runtime.create_worker = lambda e, s, **kw: create(e, s, binding=binding, **kw)
sys.exit(runtime.run_worker(entry, settings))
"""


@pytest.fixture(scope="module")
def rocks(tmp_path_factory, base_settings):
    with broker_of_its_own(tmp_path_factory, base_settings, "rocksdb") as (_broker, settings):
        yield settings.with_overrides(worker_instance=INSTANCE)


def start(settings, log_dir: Path, name: str = "intake") -> WorkerProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, **to_environ(settings), "COMPLAINTS_METRICS_PORT": str(port)}
    log = log_dir / f"{name}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-c", RUN_WITH_ROCKSDB, name], stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, env=env)
    worker = WorkerProcess(name, port, proc, log)
    wait_ready([worker], timeout=120)
    return worker


def publish(settings, subs) -> None:
    p = producer(settings)
    for s in subs:
        p.send(topics.SUBMISSIONS.name, key=s.dedup_key.encode(), value=encode(submission_envelope(s)))
    p.flush()
    p.close()


def changelog_ends(settings) -> dict[int, int]:
    """End offset of each partition of the intake table's changelog (a fresh broker: the records it holds)."""
    name = f"{WORKERS['intake'].app_id}-intake-seen-changelog"
    consumer = KafkaConsumer(**client_config(settings))
    try:
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def on_disk(settings) -> dict[int, tuple[int | None, int, int]]:
    """{partition: (persisted offset, keys, keys whose value carries a due)} read from the stopped worker's
    RocksDB files (one database per changelog partition)."""
    import rocksdict

    root = worker_datadir(WORKERS["intake"].app_id, settings)
    out = {}
    for path in sorted(root.rglob("intake-seen-*.db")):
        partition = int(path.name.removesuffix(".db").rsplit("-", 1)[1])
        db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                             access_type=rocksdict.AccessType.read_only())
        try:
            offset = db.get(OFFSET_KEY)
            values = [v for k, v in db.items() if k != OFFSET_KEY]
        finally:
            db.close()
        out[partition] = (None if offset is None else int(offset), len(values),
                          sum(1 for v in values if peek(v) is not UNKNOWN))
    return out


def to_read_on_restart(settings) -> tuple[int, int]:
    """(changelog records a restart must read: past each partition's persisted offset, records written)."""
    ends, disk = changelog_ends(settings), on_disk(settings)
    tail = sum(end - 1 - (disk[p][0] if p in disk and disk[p][0] is not None else -1) for p, end in ends.items())
    return tail, sum(ends.values())


def recovery_reads(log: str) -> tuple[int, int]:
    """From faust's recovery log of a start: (records it read from the changelog: highwater minus where reading
    started, summed over the partitions; the highwaters summed)."""
    tables: dict[str, dict[int, int]] = {}
    current = None
    for line in log.splitlines():
        if "Highwater - Active" in line or "Reading Starts At - Active" in line:
            current = tables.setdefault("high" if "Highwater" in line else "start", {})
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if current is not None and len(cells) == 3 and cells[1].isdigit():
            current[int(cells[1])] = int(cells[2])
        elif not line.startswith(("|", "+")):
            current = None
    high, start = tables.get("high", {}), tables.get("start", {})
    assert high and set(high) == set(start), f"no recovery tables in the log: {tables}"
    return sum(high[p] - start[p] for p in high), sum(high.values())


def subs(start: int, n: int, now: datetime) -> list:
    return [validate_submission(submission(i, now, channel_ref=f"RDB-{i:05d}"), now=now) for i in range(start, start + n)]


def test_a_rocksdb_worker_restarts_with_its_state_and_reads_only_the_changelog_tail(rocks, tmp_path):
    now = datetime.now(UTC)
    first, second, third = subs(0, FIRST, now), subs(FIRST, SECOND, now), subs(FIRST + SECOND, THIRD, now)

    worker = start(rocks, tmp_path / "first")
    try:
        publish(rocks, first)
        wait_caught_up(rocks, "intake", [topics.SUBMISSIONS.name])
        assert total(scrape(worker.port), "complaints_intake_accepted_total") == FIRST
    finally:
        stop_workers([worker])
    assert worker.proc.returncode == 0, worker.tail()
    disk = on_disk(rocks)
    assert sum(keys for _o, keys, _d in disk.values()) == FIRST  # the table is on disk ...
    assert sum(due for _o, _k, due in disk.values()) == FIRST  # ... each state behind its due (a timer stage)
    tail, written = to_read_on_restart(rocks)
    assert (tail, written) == (0, FIRST)  # a restart reads none of the FIRST records the run wrote

    worker = start(rocks, tmp_path / "second")
    try:
        publish(rocks, subs(0, RETRIES, now) + second)  # retries of the first run's submissions, recognised
        wait_caught_up(rocks, "intake", [topics.SUBMISSIONS.name])
        metrics = scrape(worker.port)
        assert total(metrics, "complaints_intake_duplicates_total") == RETRIES
        assert total(metrics, "complaints_intake_accepted_total") == SECOND
    finally:
        worker.proc.send_signal(signal.SIGKILL)  # no clean stop: what is on disk is what the writes left
        worker.proc.wait()
    tail, written = to_read_on_restart(rocks)
    assert written == FIRST + SECOND and tail == 0  # each flush persisted its offsets once acknowledged
    last_offsets = sum(end - 1 for end in changelog_ends(rocks).values())

    worker = start(rocks, tmp_path / "third")
    try:
        publish(rocks, subs(FIRST, RETRIES, now) + third)
        wait_caught_up(rocks, "intake", [topics.SUBMISSIONS.name])
        metrics = scrape(worker.port)
        assert total(metrics, "complaints_intake_duplicates_total") == RETRIES
        assert total(metrics, "complaints_intake_accepted_total") == THIRD
        log = worker.tail(200_000)
        read, highwaters = recovery_reads(log)
        assert read == 0 and highwaters == last_offsets  # faust's highwater: each partition's last offset
        assert "Restoring state from changelog topics" not in log  # faust found nothing to read
        assert f"timer index rebuilt from {FIRST + SECOND} stored values" in log
    finally:
        stop_workers([worker])
    assert sum(keys for _o, keys, _d in on_disk(rocks).values()) == FIRST + SECOND + THIRD
