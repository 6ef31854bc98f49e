"""The SLA worker holding 1,000,000 open complaints: breach lateness under a steady update load, memory,
and the time from start (and restart) to ready.

    PYTHONPATH=. .venv/bin/python bench/bench_sla.py [--open 1000000] [--seconds 60] [--new-rate 50]
                                                       [--update-rate 200]

ONE throwaway KRaft broker on free 127.0.0.1 ports (COMPLAINTS_KAFKA_BOOTSTRAP is ignored).

1. Load. ``--open`` open complaints (billing, P4, received in the last three hours, so none of their
   steps falls due during the run) are written straight onto the worker's table changelog
   (``complaints-sla-sla-clocks-changelog``) as the worker would have written them: each state is the
   SLA stage's own (``SlaStage.apply`` of an ``opened`` case event, 1,000 distinct receipt times, the
   complaint id replaced), stored with its ``next_due`` prefix (``workers.due_index.pack``), keyed and
   partitioned as the runtime does. Loading through the worker would cost 1M input and 3M output events
   for the same table; what is measured is holding them.
2. Cold start: the real worker (``complaints worker sla``, RocksDB store) starts on an empty state
   directory and recovers the whole changelog; seconds to ``/readyz``.
3. Steady load for ``--seconds``: a producer publishes ``--new-rate`` new P1 complaints per second (the
   bench policy gives P1 a 15-second first response, so each breaches 15 s after it opened) and
   ``--update-rate`` status updates per second of loaded complaints (first response: the update clock
   starts, the first-response clock is fulfilled — a read and a write of RocksDB state each). A reader
   tails the SLA topic. Lateness of each breach = ``observed_at - at`` (the worker's clock: deadline ->
   the sweep that published it) and, end to end, the reader's receipt time - ``at``.
4. Memory: the worker's RSS at the end and its peak (``VmHWM``), from /proc.
5. Restart: SIGTERM (the worker commits and leaves), start again on the same state directory; seconds to
   ``/readyz`` (RocksDB has the table: only the changelog's tail is read). Then kill -9 and start again.

No plain-client reference here: the figures are latencies against deadlines and a recovery time, not a
throughput. Progress on stderr; the last line of stdout is one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiokafka.partitioner import murmur2
from common import ROOT, pct, throwaway_broker
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from complaint_stream import topics
from complaint_stream.bootstrap import build_sla_stage
from complaint_stream.domain import sla
from complaint_stream.kafka.admin import create_topics
from complaint_stream.kafka.clients import admin, client_config
from complaint_stream.kafka.clients import producer as make_producer
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import (
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    Priority,
    SlaEvent,
    TicketStatus,
    decode,
    encode,
    wrap,
)
from complaint_stream.settings import load_settings
from complaint_stream.workers.due_index import pack
from complaint_stream.workers.launcher import start_workers, stop_workers, wait_ready
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.wiring import StateCodec

CHANGELOG = f"{WORKERS['sla'].app_id}-sla-clocks-changelog"


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def bench_policy(directory: Path) -> str:
    raw = json.loads((resources.files(sla) / "policy.json").read_text(encoding="utf-8"))
    raw["clocks"]["first_response"]["targets"]["P1"] = "PT15S"
    path = directory / "sla-bench-policy.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return str(path)


def case_event(cid: str, seq: int, change: str, at: datetime, received: datetime, priority: Priority,
               status: TicketStatus, answered: datetime | None = None):
    data = CaseUpdated(complaint_id=cid, change=CaseChange(change), sequence=seq, at=at, status=status,
                       category=Category.BILLING, priority=priority, channel=Channel.APP, team="billing-back-office",
                       received_at=received, first_contact_at=received, first_response_at=answered)
    return wrap(data, source="/workers/lifecycle", subject=cid, event_id=str(uuid.uuid4()), time=at)


def load(settings, n: int, now: datetime) -> tuple[list[tuple[str, datetime]], float]:
    """Write ``n`` open complaints' states onto the changelog; returns (id, received) of each and seconds."""
    stage = build_sla_stage(settings)
    codec = StateCodec(stage.state_type)
    templates = []
    for i in range(1000):
        received = now - timedelta(seconds=10.8 * i)  # the last three hours
        state, _ = stage.apply(None, case_event("BENCH-T", 1, "opened", received, received, Priority.P4,
                                                 TicketStatus.ACKNOWLEDGED), received)
        templates.append((received, state))
    client = admin(settings)
    try:
        client.create_topics([NewTopic(CHANGELOG, topics.CASES.partitions, 1,
                                       topic_configs={"cleanup.policy": "compact"})])
    finally:
        client.close()
    out = make_producer(settings, linger_ms=20, batch_size=512 * 1024, acks=1, enable_idempotence=False)
    started = time.monotonic()
    ids = []
    size = 0
    for i in range(n):
        received, template = templates[i % len(templates)]
        cid = f"CMP20261203-B{i:011d}"
        state = replace(template, complaint_id=cid)
        value = pack(stage.next_due(state), codec.dumps(state))
        size += len(value)
        key = cid.encode()
        out.send(CHANGELOG, key=key, value=value,
                 partition=(murmur2(key) & 0x7FFFFFFF) % topics.CASES.partitions)
        ids.append((cid, received))
        if i and i % 200_000 == 0:
            log(f"  {i:,} states written")
    out.flush()
    out.close()
    seconds = time.monotonic() - started
    log(f"loaded {n:,} states ({size / n:.0f} bytes each, {size / 2**20:.0f} MiB) in {seconds:.1f} s")
    return ids, seconds


def rss(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) / 1024  # MiB
    return fields


def start(settings, log_dir: Path, port: int):
    t = time.monotonic()
    procs = start_workers(settings, ["sla"], log_dir, ports={"sla": port}, log_prefix="")
    wait_ready(procs, timeout=900)
    return procs[0], time.monotonic() - t


class Tail(threading.Thread):
    """Reads the SLA topic from its end; keeps each breach with the time it was read."""

    def __init__(self, settings):
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
        parts = [TopicPartition(topics.SLA_EVENTS.name, p) for p in range(topics.SLA_EVENTS.partitions)]
        self.consumer.assign(parts)
        self.consumer.seek_to_end(*parts)
        for tp in parts:
            self.consumer.position(tp)
        self.breaches: dict[str, tuple[SlaEvent, float]] = {}
        self.records = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                read = time.time()
                for r in records:
                    self.records += 1
                    env = decode(r.value, [SlaEvent])
                    if env.data.step.value == "breached" and env.data.clock.value == "first_response":
                        self.breaches.setdefault(env.id, (env.data, read))
        self.consumer.close()


def steady(settings, ids, seconds: float, new_rate: float, update_rate: float) -> dict:
    out = make_producer(settings)
    rnd = random.Random(7)
    updated: set[str] = set()
    sent_new: list[str] = []
    t0 = time.monotonic()
    next_new = next_update = t0
    while time.monotonic() - t0 < seconds:
        now_m = time.monotonic()
        if now_m >= next_new:
            at = datetime.now(UTC)
            cid = f"CMP20261203-N{len(sent_new):011d}"
            out.send(topics.CASES.name, key=cid.encode(),
                     value=encode(case_event(cid, 1, "opened", at, at, Priority.P1, TicketStatus.ACKNOWLEDGED)))
            sent_new.append(cid)
            next_new += 1 / new_rate
        if now_m >= next_update:
            cid, received = ids[rnd.randrange(len(ids))]
            if cid not in updated:
                updated.add(cid)
                at = datetime.now(UTC)
                out.send(topics.CASES.name, key=cid.encode(),
                         value=encode(case_event(cid, 2, "status", at, received, Priority.P4,
                                                 TicketStatus.IN_PROGRESS, answered=at)))
            next_update += 1 / update_rate
        time.sleep(max(0.0, min(next_new, next_update) - time.monotonic()))
    out.flush()
    out.close()
    return {"new": sent_new, "updates": len(updated)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--open", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--new-rate", type=float, default=50.0)
    ap.add_argument("--update-rate", type=float, default=200.0)
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, RocksDB) afterwards")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sla-"))
    summary: dict = {"open": args.open}
    with throwaway_broker(work / "kafka") as (broker, _pid):
        settings = load_settings(environ={}).with_overrides(
            kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1, state_dir=work / "state")
        settings = settings.with_overrides(sla_policy=bench_policy(work))
        create_topics(settings)
        now = datetime.now(UTC)
        ids, summary["load_seconds"] = load(settings, args.open, now)
        port = free_port()
        worker, summary["cold_start_to_ready_s"] = start(settings, work / "logs", port)
        log(f"cold start (the whole changelog into RocksDB): ready in {summary['cold_start_to_ready_s']:.1f} s;"
            f" {rss(worker.proc.pid)}")
        tail = Tail(settings)
        tail.start()
        try:
            sent = steady(settings, ids, args.seconds, args.new_rate, args.update_rate)
            deadline = time.monotonic() + 60
            want = len(sent["new"])
            while len(tail.breaches) < want and time.monotonic() < deadline:
                time.sleep(0.2)  # polling for the breaches still due (each 15 s after its complaint opened)
            memory = rss(worker.proc.pid)
        finally:
            tail.stop.set()
            tail.join(timeout=10)
        breaches = list(tail.breaches.values())
        late = sorted((b.observed_at - b.at).total_seconds() for b, _read in breaches)
        e2e = sorted(read - b.at.timestamp() for b, read in breaches)
        summary.update({
            "new_complaints": len(sent["new"]), "updates": sent["updates"], "breaches_seen": len(breaches),
            "lateness_p50_s": round(statistics.median(late), 3) if late else None,
            "lateness_p99_s": round(pct(late, 99), 3) if late else None,
            "lateness_max_s": round(late[-1], 3) if late else None,
            "end_to_end_p50_s": round(statistics.median(e2e), 3) if e2e else None,
            "end_to_end_p99_s": round(pct(e2e, 99), 3) if e2e else None,
            "rss_mib": round(memory.get("VmRSS", 0)), "peak_rss_mib": round(memory.get("VmHWM", 0)),
        })
        log(f"steady load: {summary}")
        worker.proc.send_signal(signal.SIGTERM)
        worker.proc.wait(timeout=120)
        worker, summary["restart_to_ready_s"] = start(settings, work / "logs-restart", port)
        log(f"restart after SIGTERM: ready in {summary['restart_to_ready_s']:.1f} s")
        worker.proc.kill()
        worker.proc.wait()
        worker, summary["restart_after_kill9_to_ready_s"] = start(settings, work / "logs-kill", port)
        log(f"restart after kill -9: ready in {summary['restart_after_kill9_to_ready_s']:.1f} s")
        stop_workers([worker])
    if args.keep:
        summary["state_dir"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
