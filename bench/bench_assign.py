"""The assignment workers (assign + dispatch) against a plain kafka-python loop doing the same domain work.

    PYTHONPATH=. .venv/bin/python bench/bench_assign.py [--count 5000] [--rounds 3]
                                                         [--variants plain,workers] [--set NAME=VALUE ...]

The house method of ``bench_pipeline.py`` and ``bench_lifecycle.py`` (whose helpers this script
imports): ONE throwaway KRaft broker on free 127.0.0.1 ports (COMPLAINTS_KAFKA_BOOTSTRAP is ignored:
nothing is sent anywhere else); in every round each variant in turn, odd rounds in reverse order;
before each variant a clean slate (``bench_pipeline.reset_cluster``: every consumer group and every
topic deleted, the workers' changelogs ``complaints-assign-assign-routes-changelog`` and
``complaints-dispatch-dispatch-teams-changelog`` and faust's leader topics included, the catalogue
recreated, every partition with a leader), a fresh state directory and a fresh consumer group;
readiness is waited for, never slept for.

``plain``    the reference: this script in a child process (hidden ``--plain-loop``): one KafkaConsumer
             with every partition of the classified topic (``topics.CLASSIFIED``) assigned by
             hand, from the beginning, offsets committed to a fresh group. Per poll batch (<= 500
             records) each value is decoded with ``decoder_for(AssignStage.consumes)``; the batch is put
             in event-time order (stable) and ``AssignStage`` applied with its state in a dict, as
             ``run_in_event_time`` does (``now`` = the event's time; ``Refused`` counted, not
             dead-lettered); its ``TeamWork`` outputs go straight, in the same process, to
             ``DispatchStage`` (state in a dict keyed by team, ``now`` = the work's time), and every
             ``ComplaintAssigned`` is encoded and produced (key ``output.key``; producer acks=all,
             idempotent, linger 5 ms), then ``producer.flush()`` and ``consumer.commit()``. Both stages
             are built as the workers build them (``workers.assign.binding(settings).stage``, and
             ``workers.dispatch``). It SKIPS the internal topic hop (``topics.ASSIGN_WORK``:
             no TeamWork is encoded, produced, consumed or decoded): the reference is the domain work
             of both stages plus one consume and one produce. No timers, no changelogs. It prints
             ``ready`` once assigned and positioned.
``workers``  the real ``assign`` and ``dispatch`` workers (two processes, the internal topic between
             them, each with its table and changelog), started with ``launcher.start_workers`` and
             waited for with ``wait_ready`` (``/readyz``).

Input per variant: ``--count`` classified complaints (``ComplaintClassified`` built like
``complaints()`` in ``tests/integration/test_assignment.py``: regions in Guangdong, the same category
mix and priorities, a regulator channel now and then, ``language=None``), ids unique in the whole run,
wrapped as the classify worker would, keyed by complaint id, encoded before the clock starts and
published as fast as one producer goes (acks=all) once the variant's consumer(s) are ready. No
resolutions are sent, so with the packaged roster (about 70 agents, some 700 slots) most complaints
wait in their team's queue: each complaint is expected to produce exactly ONE ``ComplaintAssigned``
(to an agent or queued) on the assigned topic (``topics.ASSIGNED``).

Figures: throughput = complaints / (the moment a reader tailing the assigned topic has seen
``count`` records - first publish), wall clock; CPU = utime+stime of the consumer process(es) and
their descendants (``common.cpu_seconds``; both workers summed for ``workers``) from just before the
first publish to that moment, per 1,000 complaints; output records per complaint per topic from the
end offsets (the internal work topic and the changelogs included); to-agent / queued split decoded
from the tail after the clock stops. Ratios are workers / plain within a round, median over rounds.
Progress goes to stderr; the last line of stdout is one JSON summary. Logs are kept in the directory
printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_lifecycle as bl
import bench_pipeline as bp
from common import ROOT, cpu_seconds, throwaway_broker

from complaint_stream import topics
from complaint_stream.kafka.clients import client_config
from complaint_stream.kafka.clients import producer as make_producer
from complaint_stream.settings import Settings, load_settings, to_environ

HEADERS = bp.HEADERS
POLL_RECORDS = bp.POLL_RECORDS
VARIANTS = ("plain", "workers")
WORKERS = ("assign", "dispatch")
log = bp.log

# as tests/integration/test_assignment.py
PLACES = [("广东", "深圳", "南山"), ("广东", "深圳", "福田"), ("广东", "广州", "天河"), ("广东", "广州", "越秀"),
          ("广东", "佛山", "禅城"), ("广东", "东莞", ""), ("广东", "珠海", "香洲"), ("广东", "汕头", "")]
CATEGORY_MIX = [("network", 28), ("billing", 18), ("vas_subscription", 10), ("broadband", 10), ("service_quality", 8),
                ("business_handling", 6), ("marketing", 4), ("number_portability", 4), ("device", 4),
                ("security_fraud", 3), ("other", 5)]


# ==== the plain kafka-python loop (its own process: `--plain-loop`) ==============================

def plain_loop_main(group: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from complaint_stream.domain.stage import Refused, check_outputs, event_time
    from complaint_stream.schemas import ComplaintAssigned, DecodeError, decoder_for, encode
    from complaint_stream.workers.assign import binding as assign_binding
    from complaint_stream.workers.dispatch import binding as dispatch_binding

    settings = load_settings(environ=os.environ)  # the parent passes COMPLAINTS_* (to_environ)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    assign = assign_binding(settings).stage
    dispatch = dispatch_binding(settings).stage
    decode = decoder_for(assign.consumes)
    routes: dict[str, Any] = {}  # complaint id -> Routing
    teams: dict[str, Any] = {}   # team -> TeamState
    counts = {"in": 0, "work": 0, "out": 0, "to_agent": 0, "queued": 0, "batches": 0, "refused": 0,
              "decode_errors": 0}
    refusals: list[str] = []

    def run(stage: Any, state: dict[str, Any], env: Any) -> list[Any]:
        key = stage.state_key(env)
        try:
            new, outputs = stage.apply(state.get(key), env, event_time(env))  # now = event time
        except Refused as refusal:
            counts["refused"] += 1
            if len(refusals) < 5:
                refusals.append(f"{stage.name}: {refusal}")
            return []
        if new is None:
            state.pop(key, None)
        else:
            state[key] = new
        return list(check_outputs(stage, outputs))

    source = topics.CLASSIFIED
    consumer = KafkaConsumer(**client_config(
        settings, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS))
    deadline = time.monotonic() + 30
    while len(consumer.partitions_for_topic(source.name) or ()) < source.partitions:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partitions of {source.name} after 30 s")
        time.sleep(0.05)
    tps = [TopicPartition(source.name, p) for p in sorted(consumer.partitions_for_topic(source.name))]
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
            context = assign.decode_context(datetime.now(UTC))
            events = []
            for records in batch.values():
                for rec in records:
                    counts["in"] += 1
                    try:
                        events.append(decode(rec.value, context))
                    except DecodeError:
                        counts["decode_errors"] += 1
            events.sort(key=event_time)  # stable, as run_in_event_time orders them
            assign.prepare(events)
            work = [out.event for env in events for out in run(assign, routes, env)]
            counts["work"] += len(work)
            dispatch.prepare(work)
            for item in work:  # the internal topic skipped: TeamWork straight to the dispatcher
                for out in run(dispatch, teams, item):
                    producer.send(out.topic.name, key=out.key.encode(), value=encode(out.event), headers=HEADERS)
                    counts["out"] += 1
                    if isinstance(out.event.data, ComplaintAssigned):
                        counts["to_agent" if out.event.data.agent_id else "queued"] += 1
            producer.flush()
            consumer.commit()
            counts["batches"] += 1
    except BaseException as exc:
        failure = exc
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    print(f"plain assign+dispatch loop: {counts}, {len(routes)} routed complaints, {len(teams)} teams,"
          f" refusals {refusals}, failure {failure!r}", file=sys.stderr, flush=True)
    return 1 if failure is not None else 0


class PlainProcess(bl.PlainProcess):
    """The `--plain-loop` child of this script (readiness, log tail and stop as bench_lifecycle's)."""

    def __init__(self, settings: Settings, group: str, log_path: Path):
        self.log = log_path
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-loop", "--group", group]
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=fh,
                                         env={**os.environ, **to_environ(settings)}, cwd=str(ROOT))


# ==== input ======================================================================================

def build_inputs(tag: str, count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` classified complaints ``<tag>-00000`` ... built like the assignment
    test's ``complaints()``, wrapped as the classify worker would, encoded."""
    from complaint_stream.schemas import (
        SEVERITY_OF_PRIORITY,
        Category,
        Channel,
        ComplaintClassified,
        Priority,
        Region,
        RiskFlag,
        encode,
        wrap,
    )

    rnd = random.Random(20261203)
    regions = {p: Region(province=p[0], city=p[1], district=p[2]) for p in PLACES}
    cats = [Category(c) for c, w in CATEGORY_MIX for _ in range(w)]
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        p = Priority(rnd.choice(["P1", "P2", "P3", "P3", "P3", "P4"]))
        channel = Channel.REGULATOR if i % 97 == 0 else Channel(rnd.choice(["hotline", "app", "web", "sms"]))
        cid = f"{tag}-{i:05d}"
        c = ComplaintClassified(
            complaint_id=cid, customer_key=f"{i:032x}", channel=channel,
            region=regions[rnd.choice(PLACES)], customer_tier="standard", language=None, received_at=now,
            category=rnd.choice(cats), confidence=0.9, priority=p, severity=SEVERITY_OF_PRIORITY[p],
            risk_flags=(RiskFlag.REGULATOR,) if i % 211 == 0 else (),
            repeat_of=f"{tag}-old-{i}" if i % 53 == 0 else None, needs_review=i % 41 == 0,
            home_province_code="440000" if i % 7 else "430000")
        env = wrap(c, source="/workers/classify", subject=cid, event_id=str(uuid.uuid4()), time=now)
        out.append((cid.encode(), encode(env)))
    return out


# ==== measuring ==================================================================================

class Tail(threading.Thread):
    """Counts the records on the assigned topic from its current end (values kept, decoded afterwards);
    ``done`` at ``target``."""

    def __init__(self, settings: Settings, target: int):
        super().__init__(name="tail", daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.target = target
        self.count = 0
        self.keys: dict[bytes, int] = {}
        self.values: list[bytes] = []
        self.last = 0.0
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.consumer = KafkaConsumer(**client_config(settings, group_id=None, enable_auto_commit=False,
                                                      fetch_max_wait_ms=100, max_poll_records=5000))
        name = topics.ASSIGNED.name
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
                        self.values.append(r.value)
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
    assigned: int = 0             # ComplaintAssigned records seen
    to_agent: int = 0
    queued: int = 0
    complete: bool = False
    ready_s: float = 0.0
    publish_s: float = 0.0
    elapsed_s: float = 0.0
    throughput: float = 0.0       # complaints/s
    cpu_s_per_1k: float = 0.0     # consumer process(es) CPU seconds per 1,000 complaints
    per_complaint: dict[str, float] = field(default_factory=dict)  # output records per complaint, by topic
    error: str | None = None


def measure(variant: str, rnd: int, n: int, tag: str, base: Settings, scratch: Path) -> Result:
    from complaint_stream.kafka.local_broker import free_port
    from complaint_stream.schemas import ComplaintAssigned, decode
    from complaint_stream.workers.launcher import WorkerFailed, start_workers, stop_workers, wait_ready

    res = Result(rnd, variant, n)
    name = f"r{rnd}-{variant}"
    settings = base.with_overrides(state_dir=scratch / "state" / name)
    logs = scratch / "logs" / name
    logs.mkdir(parents=True, exist_ok=True)
    bp.reset_cluster(settings)
    records = build_inputs(tag, n)
    workers: list[Any] = []
    plain: PlainProcess | None = None
    tail: Tail | None = None
    offsets_before: dict[str, int] = {}
    producer = make_producer(settings)  # acks=all, idempotent
    try:
        producer.partitions_for(topics.CLASSIFIED.name)
        t0 = time.monotonic()
        if variant == "workers":
            workers = start_workers(settings, WORKERS, logs, ports={w: free_port() for w in WORKERS})
            wait_ready(workers, timeout=180)
            procs = [(w.name, w) for w in workers]
        else:
            plain = PlainProcess(settings, f"bench-assign-{name}", logs / "plain.log")
            plain.wait_ready()
            procs = [("plain", plain)]
        pids = [p.proc.pid for _, p in procs]
        res.ready_s = time.monotonic() - t0
        tail = Tail(settings, n)
        tail.start()
        offsets_before = bp.end_offsets(settings)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)

        first_sent = time.time()
        for key, value in records:
            producer.send(topics.CLASSIFIED.name, key=key, value=value, headers=HEADERS)
        last_sent = time.time()
        producer.flush()
        res.publish_s = last_sent - first_sent
        timeout = 60 + n / 10
        deadline = time.monotonic() + timeout
        while not tail.done.wait(0.1):
            dead = [(who, p) for who, p in procs if p.proc.poll() is not None]
            if dead:
                who, p = dead[0]
                raise WorkerFailed(f"{who} exited during the measurement:\n{p.tail()}")
            if time.monotonic() > deadline:
                break
        cpu_after = sum(cpu_seconds(pid) for pid in pids)
        tail.stop()
        res.assigned = tail.count
        res.complete = tail.count >= n
        done = min(n, tail.count)
        if tail.count:
            res.elapsed_s = tail.last - first_sent
            res.throughput = done / res.elapsed_s
        res.cpu_s_per_1k = 1000 * (cpu_after - cpu_before) / max(done, 1)
        for value in tail.values:
            data = decode(value, [ComplaintAssigned]).data
            if data.agent_id:
                res.to_agent += 1
            else:
                res.queued += 1
        if not res.complete:
            res.error = f"only {tail.count}/{n} ComplaintAssigned records within {timeout:.0f}s"
        elif any(c != 1 for c in tail.keys.values()) or len(tail.keys) != n:
            counts = sorted(set(tail.keys.values()))
            res.error = f"{len(tail.keys)} complaints assigned, per complaint {counts} records (expected 1 each)"
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
            inputs = {topics.CLASSIFIED.name, "__consumer_offsets"}
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
    parser.add_argument("--count", type=int, default=5000, help="classified complaints per variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of plain,workers")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a settings override for the workers (and the plain loop's stages),"
                             " e.g. batch_max_records=200, commit_every=500")
    parser.add_argument("--plain-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_loop:
        return plain_loop_main(args.group)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop processes, destroy the broker

    overrides: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set wants NAME=VALUE, not {item!r}")
        overrides[key.strip()] = value.strip()
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-assign-"))
    t_run = time.monotonic()
    results: list[Result] = []
    with throwaway_broker(scratch / "kafka") as (broker, broker_pid):
        base = load_settings(environ={}).with_overrides(
            kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1, state_dir=scratch / "state",
            **overrides)
        log(f"broker {broker.layout.bootstrap} (pid {broker_pid}); overrides {overrides or 'none'}; scratch {scratch}")
        run_tag = uuid.uuid4().hex[:4].upper()
        for rnd in range(args.rounds):
            order = chosen if rnd % 2 == 0 else chosen[::-1]
            for v in order:
                log(f"round {rnd} {v}: {args.count} classified complaints")
                r = measure(v, rnd, args.count, f"BA{run_tag}R{rnd}{v[0].upper()}", base, scratch)
                results.append(r)
                if not r.error:
                    log(f"  {r.throughput:.0f} complaints/s, {r.cpu_s_per_1k:.2f} CPU s per 1k,"
                        f" ready after {r.ready_s:.1f}s, {r.to_agent} to agents, {r.queued} queued,"
                        f" outputs/complaint {r.per_complaint}")
    shutil.rmtree(scratch / "state", ignore_errors=True)
    results.sort(key=lambda r: (r.round, VARIANTS.index(r.variant)))

    by = {(r.round, r.variant): r for r in results}
    tput_ratios, cpu_ratios = [], []
    for rnd in range(args.rounds):
        w, p = by.get((rnd, "workers")), by.get((rnd, "plain"))
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

    print(f"bench_assign: {args.count} classified complaints per variant, {args.rounds} rounds,"
          f" {topics.CLASSIFIED.partitions} partitions, 1 broker + consumers on {os.cpu_count()} cores;"
          f" overrides: {overrides or 'none'}")
    print()
    head = (f"{'variant':<8} {'round':>5} {'complaints/s':>12} {'CPU s/1k':>9} {'elapsed s':>9} {'ready s':>7}"
            f" {'agent':>6} {'queued':>6}  error")
    print(head)
    print("-" * len(head))
    for r in results:
        err = r.error.splitlines()[0][:80] if r.error else ""
        print(f"{r.variant:<8} {r.round:>5} {r.throughput:>12.0f} {r.cpu_s_per_1k:>9.2f} {r.elapsed_s:>9.2f}"
              f" {r.ready_s:>7.1f} {r.to_agent:>6} {r.queued:>6}  {err}")
    print()
    for v, m in medians.items():
        print(f"median {v:<8} {m['complaints_per_s']:.0f} complaints/s, {m['cpu_s_per_1k']:.2f} CPU s per 1k")
    print("output records per complaint (round 0): "
          + "; ".join(f"{r.variant}: {r.per_complaint}" for r in results if r.round == 0))
    print(f"workers/plain throughput ratio, median over {len(tput_ratios)} rounds:"
          f" {ratio if ratio is not None else '-'}  (per round {[round(x, 3) for x in tput_ratios]});"
          f" CPU per complaint ratio {cpu_ratio if cpu_ratio is not None else '-'}"
          f" (per round {[round(x, 3) for x in cpu_ratios]})")
    failed = [r for r in results if r.error]
    print(f"{len(failed)} failed measurements; logs kept in {scratch / 'logs'}; total {time.monotonic() - t_run:.0f}s")
    summary = {
        "bench": "bench_assign", "count": args.count, "rounds": args.rounds, "overrides": overrides,
        "cpus": os.cpu_count(), "medians": medians, "ratio_workers_to_plain": ratio,
        "cpu_ratio_workers_to_plain": cpu_ratio, "ratios_per_round": [round(x, 3) for x in tput_ratios],
        "cpu_ratios_per_round": [round(x, 3) for x in cpu_ratios],
        "measurements": [asdict(r) for r in results], "seconds": round(time.monotonic() - t_run, 1),
    }
    print(json.dumps(summary, ensure_ascii=False, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
