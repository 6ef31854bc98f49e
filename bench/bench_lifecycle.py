"""The lifecycle worker alone against a plain kafka-python loop doing the same domain work.

    PYTHONPATH=. .venv/bin/python bench/bench_lifecycle.py [--count 2000] [--rounds 3]
                                                            [--variants plain,worker] [--set NAME=VALUE ...]

The house method of ``bench_pipeline.py`` (whose helpers this script imports): ONE throwaway KRaft
broker on free 127.0.0.1 ports (COMPLAINTS_KAFKA_BOOTSTRAP is ignored: nothing is sent anywhere
else); in every round each variant in turn, odd rounds in reverse order; before each variant a clean
slate (``bench_pipeline.reset_cluster``: every consumer group and every topic deleted, the faust
changelog ``complaints-lifecycle-lifecycle-cases-changelog`` and faust's leader topic included, the
catalogue recreated with ``create_topics``, every partition with a leader), a fresh state directory
and a fresh consumer group; readiness is waited for, never slept for.

``plain``   the reference: this script in a child process (hidden ``--plain-loop``): one KafkaConsumer
            with every partition of the lifecycle's 8 input topics (``INPUT_TOPICS``: received,
            classified, assigned, status, commands, SLA events, escalations, links) assigned by hand,
            from their beginning, offsets committed to a fresh group; per poll batch (<= 500 records)
            each value is decoded with ``decoder_for(stage.consumes)`` and ``LifecycleStage`` (built as
            the worker builds it, ``workers.lifecycle.binding(settings).stage``) applied with its state
            in a dict, as ``run_in_event_time`` does per event (``now`` = wall clock; ``Refused`` is
            counted, not dead-lettered); every output is encoded and produced (key ``output.key``,
            topic ``output.topic.name``; producer acks=all, idempotent, linger 5 ms), then
            ``producer.flush()`` and ``consumer.commit()``. It prints ``ready`` once assigned and
            positioned. No timers, no changelog: that is the worker's overhead being measured.
``worker``  the real lifecycle worker (``complaints worker lifecycle``), started with
            ``launcher.start_workers`` and waited for with ``wait_ready`` (``/readyz``).

Input per variant: ``--count`` complaints with numbers unique in the whole run, each four events built
with ``tests/support/cases.py`` (received + classified = ``opened``, status inProgress, resolved with a
resolution; every 4th with ``refund_fen``), keyed by complaint id, complaint by complaint, encoded
before the clock starts, and published as fast as one producer goes (acks=all) once the variant's
consumer is ready. The lifecycle policy is the packaged one with quiet hours off, so every complaint is
acknowledged at once. Expected output per complaint: 3 ``CaseUpdated`` (opened, status, resolved) on
the lifecycle topic (``topics.CASES``), 1 ``ComplaintResolved``, 2 ``CommunicationRequested`` (acknowledgement,
resolution).

Figures: throughput = complaints / (the moment a reader tailing the lifecycle topic (``topics.CASES``) has seen
3 x count records - first publish), wall clock; CPU = utime+stime of the consumer process
(/proc/<pid>/stat; psutil when installed) from just before the first publish to that moment, per
1,000 complaints; output records per complaint per topic from the end offsets. The ratio is
worker / plain within a round, median over rounds. Progress goes to stderr; the last line of stdout is
one JSON summary. Logs are kept in the directory printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline as bp
from common import ROOT, throwaway_broker

from complaint_stream import topics
from complaint_stream.kafka.clients import client_config
from complaint_stream.kafka.clients import producer as make_producer
from complaint_stream.settings import Settings, load_settings, to_environ

HEADERS = bp.HEADERS
POLL_RECORDS = 500
VARIANTS = ("plain", "worker")
CHANGES_PER_COMPLAINT = 3  # CaseUpdated: opened, status (inProgress), resolved
log = bp.log


def cpu_seconds(pid: int) -> float:
    """utime+stime of ``pid`` and its live descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        return bp.cpu_seconds(pid)
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0


# ==== the plain kafka-python loop (its own process: `--plain-loop`) ==============================

def plain_loop_main(group: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from complaint_stream.domain.lifecycle.stage import INPUT_TOPICS
    from complaint_stream.domain.stage import Refused, check_outputs
    from complaint_stream.schemas import DecodeError, decoder_for, encode
    from complaint_stream.workers.lifecycle import binding

    settings = load_settings(environ=os.environ)  # the parent passes COMPLAINTS_* (to_environ)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stage = binding(settings).stage
    decode = decoder_for(stage.consumes)
    state: dict[str, Any] = {}
    counts = {"in": 0, "out": 0, "batches": 0, "refused": 0, "decode_errors": 0}
    refusals: list[str] = []

    consumer = KafkaConsumer(**client_config(
        settings, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS))
    deadline = time.monotonic() + 30
    tps: list[Any] = []
    for spec in INPUT_TOPICS:
        while len(consumer.partitions_for_topic(spec.name) or ()) < spec.partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions of {spec.name} after 30 s")
            time.sleep(0.05)
        tps += [TopicPartition(spec.name, p) for p in sorted(consumer.partitions_for_topic(spec.name))]
    consumer.assign(tps)
    for tp in tps:
        consumer.position(tp)  # committed offset (none: a fresh group), else the earliest
    producer = make_producer(settings, linger_ms=5)  # acks=all, idempotent
    print("ready", flush=True)

    failure: BaseException | None = None
    try:
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=100, max_records=POLL_RECORDS)
            if not batch:
                continue
            now = datetime.now(UTC)
            context = stage.decode_context(now)
            events = []
            for records in batch.values():
                for rec in records:
                    counts["in"] += 1
                    try:
                        events.append(decode(rec.value, context))
                    except DecodeError:
                        counts["decode_errors"] += 1
            stage.prepare(events)
            for env in events:
                key = stage.state_key(env)
                try:
                    new, outputs = stage.apply(state.get(key), env, now)
                except Refused as refusal:
                    counts["refused"] += 1
                    if len(refusals) < 5:
                        refusals.append(str(refusal))
                    continue
                if new is None:
                    state.pop(key, None)
                else:
                    state[key] = new
                for out in check_outputs(stage, outputs):
                    producer.send(out.topic.name, key=out.key.encode(), value=encode(out.event), headers=HEADERS)
                    counts["out"] += 1
            producer.flush()
            consumer.commit()
            counts["batches"] += 1
    except BaseException as exc:
        failure = exc
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    print(f"plain lifecycle loop: {counts}, refusals {refusals}, failure {failure!r}", file=sys.stderr, flush=True)
    return 1 if failure is not None else 0


class PlainProcess:
    """The `--plain-loop` child of this script."""

    name = "plain"

    def __init__(self, settings: Settings, group: str, log_path: Path):
        self.log = log_path
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-loop", "--group", group]
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=fh,
                                         env={**os.environ, **to_environ(settings)}, cwd=str(ROOT))

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"plain loop exited with {self.proc.returncode}:\n{self.tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready and self.proc.stdout.readline().strip() == b"ready":
                return
        raise RuntimeError(f"plain loop not ready after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ==== input ======================================================================================

def lifecycle_policy_file(scratch: Path) -> Path:
    """The packaged lifecycle policy with quiet hours off (as tests/integration/test_lifecycle.py)."""
    from complaint_stream.domain.lifecycle.policy import LifecyclePolicy

    policy = json.loads(LifecyclePolicy.load().file.model_dump_json(by_alias=True))
    policy.update(quiet_hours_start="00:00", quiet_hours_end="00:00")
    path = scratch / "lifecycle.json"
    path.write_text(json.dumps(policy), encoding="utf-8")
    return path


def build_inputs(first: int, count: int) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of ``count`` complaints from number ``first``: received, classified, status
    inProgress, resolved (every 4th with a refund), complaint by complaint, encoded."""
    from complaint_stream.schemas import encode
    from tests.support import cases

    at = datetime.now(UTC) - timedelta(minutes=10)
    out = []
    for i in range(count):
        n = first + i
        key = cases.cid(n).encode()
        received, classified = cases.opened(n, at, customer=n)
        working = cases.status(n, "inProgress", at + timedelta(minutes=1))
        resolved = cases.resolve(n, at + timedelta(minutes=2), refund_fen=500 if i % 4 == 3 else None)
        out += [(topics.RECEIVED.name, key, encode(received)), (topics.CLASSIFIED.name, key, encode(classified)),
                (topics.STATUS.name, key, encode(working)), (topics.STATUS.name, key, encode(resolved))]
    return out


# ==== measuring ==================================================================================

class Tail(threading.Thread):
    """Counts the records on the lifecycle topic (``topics.CASES``) from its current end; ``done`` at ``target``."""

    def __init__(self, settings: Settings, target: int):
        super().__init__(name="tail", daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.target = target
        self.count = 0
        self.keys: dict[bytes, int] = {}
        self.last = 0.0
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.consumer = KafkaConsumer(**client_config(settings, group_id=None, enable_auto_commit=False,
                                                      fetch_max_wait_ms=100, max_poll_records=5000))
        name = topics.CASES.name
        tps = [TopicPartition(name, p) for p in sorted(self.consumer.partitions_for_topic(name) or ())]
        self.consumer.assign(tps)
        for tp, offset in self.consumer.end_offsets(tps).items():
            self.consumer.seek(tp, offset)
        for tp in tps:
            self.consumer.position(tp)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                batch = self.consumer.poll(timeout_ms=50)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        self.keys[r.key] = self.keys.get(r.key, 0) + 1
                    if records:
                        self.count += len(records)
                        self.last = now
                if self.count >= self.target:
                    self.done.set()
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


@dataclass
class Result:
    round: int
    variant: str
    n: int
    changes: int = 0              # CaseUpdated records seen
    complete: bool = False
    ready_s: float = 0.0
    publish_s: float = 0.0
    elapsed_s: float = 0.0
    throughput: float = 0.0       # complaints/s
    cpu_s_per_1k: float = 0.0     # consumer process CPU seconds per 1,000 complaints
    per_complaint: dict[str, float] = field(default_factory=dict)  # output records per complaint, by topic
    error: str | None = None


def measure(variant: str, rnd: int, n: int, first: int, base: Settings, scratch: Path) -> Result:
    from complaint_stream.kafka.local_broker import free_port
    from complaint_stream.workers.launcher import WorkerFailed, start_workers, stop_workers, wait_ready

    res = Result(rnd, variant, n)
    tag = f"r{rnd}-{variant}"
    settings = base.with_overrides(state_dir=scratch / "state" / tag)
    logs = scratch / "logs" / tag
    logs.mkdir(parents=True, exist_ok=True)
    bp.reset_cluster(settings)
    records = build_inputs(first, n)
    workers: list[Any] = []
    plain: PlainProcess | None = None
    tail: Tail | None = None
    offsets_before: dict[str, int] = {}
    producer = make_producer(settings)  # acks=all, idempotent
    try:
        for spec in (topics.RECEIVED, topics.CLASSIFIED, topics.STATUS):
            producer.partitions_for(spec.name)
        t0 = time.monotonic()
        if variant == "worker":
            workers = start_workers(settings, ["lifecycle"], logs, ports={"lifecycle": free_port()})
            wait_ready(workers, timeout=180)
            pid = workers[0].proc.pid
        else:
            plain = PlainProcess(settings, f"bench-lifecycle-{tag}", logs / "plain.log")
            plain.wait_ready()
            pid = plain.proc.pid
        res.ready_s = time.monotonic() - t0
        target = CHANGES_PER_COMPLAINT * n
        tail = Tail(settings, target)
        tail.start()
        offsets_before = bp.end_offsets(settings)
        cpu_before = cpu_seconds(pid)

        first_sent = time.time()
        for topic, key, value in records:
            producer.send(topic, key=key, value=value, headers=HEADERS)
        last_sent = time.time()
        producer.flush()
        res.publish_s = last_sent - first_sent
        timeout = 60 + n / 10
        deadline = time.monotonic() + timeout
        proc = workers[0].proc if workers else plain.proc  # type: ignore[union-attr]
        while not tail.done.wait(0.1):
            if proc.poll() is not None:
                who = workers[0] if workers else plain
                raise WorkerFailed(f"{variant} exited during the measurement:\n{who.tail()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                break
        cpu_after = cpu_seconds(pid)
        tail.stop()
        res.changes = tail.count
        res.complete = tail.count >= target
        done = min(n, tail.count / CHANGES_PER_COMPLAINT)
        if tail.count:
            res.elapsed_s = tail.last - first_sent
            res.throughput = done / res.elapsed_s
        res.cpu_s_per_1k = 1000 * (cpu_after - cpu_before) / max(done, 1)
        if not res.complete:
            res.error = f"only {tail.count}/{target} CaseUpdated records within {timeout:.0f}s"
        elif any(c != CHANGES_PER_COMPLAINT for c in tail.keys.values()) or len(tail.keys) != n:
            counts = sorted(set(tail.keys.values()))
            res.error = f"{len(tail.keys)} complaints updated, per complaint {counts} records (expected 3 each)"
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        if tail is not None and tail.is_alive():
            tail.stop()
        producer.close(timeout=10)
        stop_workers(workers)
        if plain is not None:
            plain.stop()
    if offsets_before:
        try:
            after = bp.end_offsets(settings)
            inputs = {topics.RECEIVED.name, topics.CLASSIFIED.name, topics.STATUS.name, "__consumer_offsets"}
            res.per_complaint = {t: round((after.get(t, 0) - offsets_before.get(t, 0)) / n, 3)
                                 for t in sorted(after) if t not in inputs and after.get(t, 0) != offsets_before.get(t, 0)}
        except Exception as exc:
            res.error = (res.error or "") + f" (end offsets: {exc!r})"
    if res.error:
        log(f"round {rnd} {variant}: FAILED: {res.error}\n(logs: {logs})")
    return res


# ==== main =======================================================================================

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="complaints per variant (4 events each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of plain,worker")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a settings override for the worker (and the plain loop's stage),"
                             " e.g. batch_max_records=200, commit_every=500")
    parser.add_argument("--plain-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_loop:
        return plain_loop_main(args.group)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop processes, destroy the broker

    overrides: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set wants NAME=VALUE, not {item!r}")
        overrides[name.strip()] = value.strip()
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    t_run = time.monotonic()
    results: list[Result] = []
    with throwaway_broker(scratch / "kafka") as (broker, broker_pid):
        base = load_settings(environ={}).with_overrides(
            kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1, state_dir=scratch / "state",
            lifecycle_policy=str(lifecycle_policy_file(scratch)), **overrides)
        log(f"broker {broker.layout.bootstrap} (pid {broker_pid}); overrides {overrides or 'none'}; scratch {scratch}")
        number = 1
        for rnd in range(args.rounds):
            order = chosen if rnd % 2 == 0 else chosen[::-1]
            for v in order:
                log(f"round {rnd} {v}: {args.count} complaints ({4 * args.count} events)")
                r = measure(v, rnd, args.count, number, base, scratch)
                number += args.count
                results.append(r)
                if not r.error:
                    log(f"  {r.throughput:.0f} complaints/s, {r.cpu_s_per_1k:.2f} CPU s per 1k,"
                        f" ready after {r.ready_s:.1f}s, outputs/complaint {r.per_complaint}")
    shutil.rmtree(scratch / "state", ignore_errors=True)
    results.sort(key=lambda r: (r.round, VARIANTS.index(r.variant)))

    by = {(r.round, r.variant): r for r in results}
    tput_ratios, cpu_ratios = [], []
    for rnd in range(args.rounds):
        w, p = by.get((rnd, "worker")), by.get((rnd, "plain"))
        if w and p and not w.error and not p.error and p.throughput and p.cpu_s_per_1k:
            tput_ratios.append(w.throughput / p.throughput)
            cpu_ratios.append(w.cpu_s_per_1k / p.cpu_s_per_1k)
    medians = {}
    for v in chosen:
        ok = [r for r in results if r.variant == v and not r.error]
        if ok:
            medians[v] = {"complaints_per_s": round(statistics.median(r.throughput for r in ok), 1),
                          "cpu_s_per_1k": round(statistics.median(r.cpu_s_per_1k for r in ok), 3)}
    ratio = round(statistics.median(tput_ratios), 3) if tput_ratios else None
    cpu_ratio = round(statistics.median(cpu_ratios), 3) if cpu_ratios else None

    print(f"bench_lifecycle: {args.count} complaints (x4 events) per variant, {args.rounds} rounds,"
          f" 6 partitions per input topic, 1 broker + consumer on {os.cpu_count()} cores;"
          f" overrides: {overrides or 'none'}")
    print()
    head = f"{'variant':<8} {'round':>5} {'complaints/s':>12} {'CPU s/1k':>9} {'elapsed s':>9} {'ready s':>7}  error"
    print(head)
    print("-" * len(head))
    for r in results:
        err = r.error.splitlines()[0][:80] if r.error else ""
        print(f"{r.variant:<8} {r.round:>5} {r.throughput:>12.0f} {r.cpu_s_per_1k:>9.2f} {r.elapsed_s:>9.2f}"
              f" {r.ready_s:>7.1f}  {err}")
    print()
    for v, m in medians.items():
        print(f"median {v:<8} {m['complaints_per_s']:.0f} complaints/s, {m['cpu_s_per_1k']:.2f} CPU s per 1k")
    print("output records per complaint (round 0): "
          + "; ".join(f"{r.variant}: {r.per_complaint}" for r in results if r.round == 0))
    print(f"worker/plain throughput ratio, median over {len(tput_ratios)} rounds:"
          f" {ratio if ratio is not None else '-'}  (per round {[round(x, 3) for x in tput_ratios]});"
          f" CPU per complaint ratio {cpu_ratio if cpu_ratio is not None else '-'}")
    failed = [r for r in results if r.error]
    print(f"{len(failed)} failed measurements; logs kept in {scratch / 'logs'}; total {time.monotonic() - t_run:.0f}s")
    summary = {
        "bench": "bench_lifecycle", "count": args.count, "rounds": args.rounds, "overrides": overrides,
        "cpus": os.cpu_count(), "medians": medians, "ratio_worker_to_plain": ratio,
        "cpu_ratio_worker_to_plain": cpu_ratio, "ratios_per_round": [round(x, 3) for x in tput_ratios],
        "measurements": [asdict(r) for r in results], "seconds": round(time.monotonic() - t_run, 1),
    }
    print(json.dumps(summary, ensure_ascii=False, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
