"""The stream workers against a plain kafka-python loop doing the same work, side by side.

    .venv/bin/python bench/bench_pipeline.py [--count 1500] [--rounds 3] [--rate 200] [--paced-seconds 20]
                                             [--set batch_max_records=200 --set commit_every=500 ...]
                                             [--variants plain,pipeline,...]

Starts ONE throwaway KRaft broker on free 127.0.0.1 ports (COMPLAINTS_KAFKA_BOOTSTRAP is ignored:
nothing is sent anywhere else) and measures, in every round, variants in alternating order
(odd rounds run the list backwards):

``plain``           the reference: a plain kafka-python loop doing the workers' domain work over the
                    catalogued topics. Process ``plain intake``: consume submissions -> decode ->
                    ``IntakeStage`` (built as ``workers.intake.binding(settings).stage``, state in a
                    dict) -> produce received. Process ``plain classify`` (two loops in two threads):
                    consume received -> produce to the by-customer topic keyed by customer key; consume
                    that -> decode -> ``ClassifyStage`` (``workers.classify.binding(settings).stage``)
                    -> produce classified. Partitions assigned by hand, offsets committed to a group.
                    Producers acks=all (idempotent), linger 5 ms; per poll batch
                    (<= 500 records) ``producer.flush()`` then ``consumer.commit()``. Two processes,
                    as the workers are two processes, so the CPU and the parallelism compare fairly.
``transport``       the same three hops forwarding the bytes (same key), no decoding, no domain work.
``plain-intake``    the plain loop's intake hop alone: the reference of ...
``intake``          the real intake worker alone (``complaints worker intake``).
``plain-classify``  the plain loop's classify hops alone (re-key + classify): the reference of ...
``classify``        the real classify worker alone, on received events made by ``IntakeStage``.
``pipeline``        both real workers: submissions -> classified.
``plain-paced``, ``pipeline-paced``: the same at a paced rate (``--rate`` per second for
                    ``--paced-seconds``), for latency and whether the pipeline keeps up.

Clean slate. Before each variant every process of the previous one is stopped, every consumer group
is deleted, and every topic (the catalogue's, the faust changelogs ``complaints-intake-intake-seen-
changelog`` and ``complaints-classify-classify-customer-history-changelog`` and faust's leader topics)
is deleted and the catalogue recreated with ``create_topics``; the workers get a fresh
``COMPLAINTS_STATE_DIR`` and the plain loops fresh group names. Resetting group offsets instead
would leave the changelogs (and so the recovered tables) growing from variant to variant, and a
deleted-but-not-reset group would re-read everything from the earliest offset; recreating the topics
is the one reset that leaves nothing behind. Submissions are unique in the whole run (distinct
``channel_ref``; dev-set texts from ``data/eval/complaints_dev.jsonl``, Chinese, English and mixed;
two complaints per customer so repeat detection has history to read), validated with
``channel_api.validate_submission`` and keyed ``<channel>:<channel_ref>`` exactly as
``ChannelPublisher`` does, and encoded before the clock starts.

How each figure is taken:

* Input. Every variant starts its processes and waits until they are ready (workers: ``wait_ready``,
  which polls ``/readyz``; plain loops: every consumer has its partitions, assigned by hand, and its
  starting position), and only then publishes
  the whole input as fast as one producer goes (acks=all, pre-encoded records, > 10k records/s, far
  above any stage here). That is "pre-loaded" for the stage being measured, without counting worker
  start-up (imports, classifier, recovery) in its CPU time, and without the up to ~0.5 s a
  /readyz poll lags behind the moment the worker really starts consuming. The ``classify`` variants'
  input is what ``IntakeStage`` makes of the submissions (received events, keyed by complaint id),
  stamped just before publishing.
* Throughput: complaints / (last output record seen by a reader tailing the output topic - first
  publish), wall clock. Output = classified (received for the intake-only variants).
* Latency received -> classified: the reader's wall clock when it first sees the classified record
  minus the CloudEvent ``time`` of the received event (the intake's ``now`` for its batch); for
  ``transport``, which has no events, the broker timestamp (CreateTime) of the received record.
  p50/p99 in ms. Under a burst this is mostly queueing; the paced runs are the latency figure.
  ``kept up`` (paced) = every complaint came out and the last one within 2 s of the last publish.
* Records per complaint: growth of the end offsets of every topic but ``__consumer_offsets`` (data,
  changelogs, dead letters), measured from just before the first publish to after the processes are
  stopped, / complaints. ``commits/c``: the same for ``__consumer_offsets``.
* CPU per complaint: utime+stime from /proc/<pid>/stat of the measured processes (the workers, or
  the plain loop's processes) and of the broker JVM, from just before the first publish to the last
  output record seen.

The table lists every measurement; the ratios are each variant against its reference measured in
the same round (median over rounds), then the targets; the last line of stdout is one JSON summary.
Progress and failures go to stderr; worker logs are kept in the directory printed at the end.
"""

from __future__ import annotations

import argparse
import collections
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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import ROOT, cpu_seconds, pct, throwaway_broker

from complaint_stream import topics
from complaint_stream.kafka.clients import admin as make_admin
from complaint_stream.kafka.clients import client_config
from complaint_stream.kafka.clients import producer as make_producer
from complaint_stream.settings import Settings, load_settings, to_environ

HEADERS = [("content-type", b"application/cloudevents+json; charset=utf-8")]
DEV_SET = ROOT / "data" / "eval" / "complaints_dev.jsonl"
WORKER_GROUPS = ("complaints-intake", "complaints-classify")
POLL_RECORDS = 500  # the plain loop's batch: one poll, then flush, then commit


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str                  # plain | transport | workers
    stages: tuple[str, ...]    # intake, classify, or both
    paced: bool = False
    reference: str | None = None

    @property
    def input_topic(self) -> topics.TopicSpec:
        return topics.SUBMISSIONS if self.stages[0] == "intake" else topics.RECEIVED

    @property
    def output_topic(self) -> topics.TopicSpec:
        return topics.CLASSIFIED if "classify" in self.stages else topics.RECEIVED


VARIANTS = (
    Variant("plain", "plain", ("intake", "classify")),
    Variant("transport", "transport", ("intake", "classify"), reference="plain"),
    Variant("plain-intake", "plain", ("intake",)),
    Variant("intake", "workers", ("intake",), reference="plain-intake"),
    Variant("plain-classify", "plain", ("classify",)),
    Variant("classify", "workers", ("classify",), reference="plain-classify"),
    Variant("pipeline", "workers", ("intake", "classify"), reference="plain"),
    Variant("plain-paced", "plain", ("intake", "classify"), paced=True),
    Variant("pipeline-paced", "workers", ("intake", "classify"), paced=True, reference="plain-paced"),
)
BY_NAME = {v.name: v for v in VARIANTS}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ==== the plain kafka-python loop (runs in its own process: `--plain-hop intake|classify`) =====

def plain_hop_main(hop: str, group: str, transport: bool) -> int:
    """One process of the plain loop; prints READY when every consumer has its partitions, runs
    until SIGTERM, then prints what it did to stderr."""
    from kafka import KafkaConsumer, TopicPartition

    from complaint_stream.schemas import DecodeError, decode, encode

    settings = load_settings(environ=os.environ)  # the parent passes COMPLAINTS_* (to_environ)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    errors: list[str] = []
    Handler = Callable[[Any, datetime], Iterable[tuple[str, bytes | None, bytes]]]

    def forward(target: topics.TopicSpec) -> Handler:
        return lambda rec, now: ((target.name, rec.key, rec.value),)

    def run_stage(stage: Any) -> Handler:
        state: dict[str, Any] = {}

        def handle(rec: Any, now: datetime) -> Iterable[tuple[str, bytes | None, bytes]]:
            try:
                env = decode(rec.value, stage.consumes, context=stage.decode_context(now))
            except DecodeError as exc:
                errors.append(f"{rec.topic}@{rec.offset}: {exc.message}")
                return ()
            key = stage.state_key(env)
            new, outputs = stage.apply(state.get(key), env, now)
            if new is None:
                state.pop(key, None)
            else:
                state[key] = new
            return [(o.topic.name, o.key.encode(), rec.value if o.event is env else encode(o.event))
                    for o in outputs]
        return handle

    def rekey(stage: Any) -> Handler:
        def handle(rec: Any, now: datetime) -> Iterable[tuple[str, bytes | None, bytes]]:
            try:
                env = decode(rec.value, stage.consumes, context=stage.decode_context(now))
            except DecodeError as exc:
                errors.append(f"{rec.topic}@{rec.offset}: {exc.message}")
                return ()
            return ((topics.CLASSIFY_BY_CUSTOMER.name, stage.state_key(env).encode(), rec.value),)
        return handle

    counts: collections.Counter[str] = collections.Counter()

    class Loop(threading.Thread):
        def __init__(self, name: str, source: topics.TopicSpec, handler: Handler):
            super().__init__(name=name, daemon=True)
            self.handler = handler
            self.consumer = KafkaConsumer(**client_config(
                settings, group_id=f"{group}-{name}", enable_auto_commit=False, auto_offset_reset="earliest",
                max_poll_records=POLL_RECORDS))
            # Partitions assigned by hand (offsets still committed to the group): joining a group right
            # after the topics were recreated left kafka-python consumers with no partitions, or with
            # partitions and no records, now and then. Reading the positions here (committed offset,
            # else the earliest) means that once READY is printed nothing published afterwards is missed.
            deadline = time.monotonic() + 30
            while len(self.consumer.partitions_for_topic(source.name) or ()) < source.partitions:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no partitions of {source.name} after 30 s")
                time.sleep(0.05)
            tps = [TopicPartition(source.name, p) for p in sorted(self.consumer.partitions_for_topic(source.name))]
            self.consumer.assign(tps)
            for tp in tps:
                self.consumer.position(tp)
            self.producer = make_producer(settings, linger_ms=5)  # acks=all, idempotent
            self.failure: BaseException | None = None

        def run(self) -> None:
            try:
                while not stop.is_set():
                    batch = self.consumer.poll(timeout_ms=100, max_records=POLL_RECORDS)
                    if not batch:
                        continue
                    now = datetime.now(UTC)
                    for records in batch.values():
                        for rec in records:
                            counts[f"{self.name} in"] += 1
                            for topic, key, value in self.handler(rec, now):
                                self.producer.send(topic, key=key, value=value, headers=HEADERS)
                                counts[f"{self.name} out"] += 1
                    self.producer.flush()
                    self.consumer.commit()
                    counts[f"{self.name} batches"] += 1
            except BaseException as exc:
                self.failure = exc
                stop.set()
            finally:
                self.consumer.close(autocommit=False)
                self.producer.close(timeout=10)

    loops: list[Loop] = []
    if hop == "intake":
        from complaint_stream.workers.intake import binding as intake_binding
        loops.append(Loop("intake", topics.SUBMISSIONS,
                          forward(topics.RECEIVED) if transport else run_stage(intake_binding(settings).stage)))
    else:
        from complaint_stream.workers.classify import binding as classify_binding
        stage = None if transport else classify_binding(settings).stage
        loops.append(Loop("rekey", topics.RECEIVED,
                          forward(topics.CLASSIFY_BY_CUSTOMER) if stage is None else rekey(stage)))
        loops.append(Loop("classify", topics.CLASSIFY_BY_CUSTOMER,
                          forward(topics.CLASSIFIED) if stage is None else run_stage(stage)))
    for loop in loops:
        loop.start()
    print("READY", flush=True)  # every consumer has its partitions and positions
    stop.wait()
    for loop in loops:
        loop.join(timeout=30)
    failures = [f"{loop.name}: {loop.failure!r}" for loop in loops if loop.failure is not None]
    print(f"plain {hop}{' (transport)' if transport else ''}: {dict(counts)}, {len(errors)} decode errors"
          f" {errors[:3]}; failures: {failures}",
          file=sys.stderr, flush=True)
    return 1 if failures else 0


class PlainProcess:
    """A `--plain-hop` child of this script."""

    def __init__(self, settings: Settings, hop: str, group: str, transport: bool, log_path: Path):
        self.name = f"plain-{hop}"
        self.log = log_path
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-hop", hop, "--group", group]
        if transport:
            cmd.append("--transport")
        with open(log_path, "ab") as fh:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=fh,
                                         env={**os.environ, **to_environ(settings)}, cwd=str(ROOT))

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready and self.proc.stdout.readline().strip() == b"READY":
                return
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

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


# ==== input =====================================================================================

def dev_texts() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["channel"], r["text"]) for r in rows]


class Inputs:
    """Unique, validated submissions for the whole run, encoded and keyed as ChannelPublisher does."""

    def __init__(self, settings: Settings):
        from tests.support.factories import submission  # realistic regions, tiers, times
        self.settings = settings
        self.texts = dev_texts()
        self.factory = submission
        self.next = 0

    def submissions(self, n: int, tag: str) -> list[tuple[bytes, bytes]]:
        from complaint_stream.channel_api import SubmissionRejected, submission_envelope, validate_submission
        from complaint_stream.schemas import encode

        now = datetime.now(UTC)
        out: list[tuple[bytes, bytes]] = []
        while len(out) < n:
            i = self.next
            self.next += 1
            channel, text = self.texts[i % len(self.texts)]
            customer = i // 2  # two complaints per customer: the classifier's history is read and updated
            obj = self.factory(i, now, channel=channel, channel_ref=f"PB-{tag}-{i:07d}", text=text,
                               customer={"msisdn": f"13{(customer % 9) + 1}{customer:08d}",
                                         "tier": ["standard", "silver", "gold"][customer % 3]})
            try:
                sub = validate_submission(obj, self.settings)
            except SubmissionRejected as exc:
                log(f"skipping an invalid submission {i}: {exc.reason}")
                continue
            env = submission_envelope(sub)
            out.append((sub.dedup_key.encode("utf-8"), encode(env)))
        return out

    def received(self, subs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """What the intake stage makes of ``subs`` now: received events keyed by complaint id."""
        from complaint_stream.schemas import decode, encode
        from complaint_stream.workers.intake import binding

        stage = binding(self.settings).stage
        now = datetime.now(UTC)
        out = []
        for _key, value in subs:
            env = decode(value, stage.consumes, context=stage.decode_context(now))
            _, outputs = stage.apply(None, env, now)
            out += [(o.key.encode(), encode(o.event)) for o in outputs]
        return out


# ==== measuring =================================================================================

class Tail(threading.Thread):
    """Tails the output topic (and the received topic when the output is classified) from their
    current ends; remembers per key when the output was first seen, and the received records."""

    def __init__(self, settings: Settings, output: topics.TopicSpec, target: int):
        super().__init__(name="tail", daemon=True)
        from kafka import KafkaConsumer, TopicPartition

        self.output = output.name
        self.target = target
        self.seen: dict[bytes, float] = {}
        self.received: dict[bytes, tuple[bytes, int]] = {}
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.consumer = KafkaConsumer(**client_config(settings, group_id=None, enable_auto_commit=False,
                                                      fetch_max_wait_ms=100, max_poll_records=5000))
        names = [output.name] + ([topics.RECEIVED.name] if output is topics.CLASSIFIED else [])
        tps = [TopicPartition(t, p) for t in names for p in sorted(self.consumer.partitions_for_topic(t) or ())]
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
                for tp, records in batch.items():
                    if tp.topic == self.output:
                        for r in records:
                            self.seen.setdefault(r.key, now)
                    else:
                        for r in records:
                            self.received.setdefault(r.key, (r.value, r.timestamp))
                if len(self.seen) >= self.target:
                    self.done.set()
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


def end_offsets(settings: Settings) -> dict[str, int]:
    """Sum of end offsets per topic, every topic including changelogs and __consumer_offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_config(settings, group_id=None, enable_auto_commit=False,
                                             exclude_internal_topics=False))
    try:
        names = set(consumer.topics()) | {"__consumer_offsets"}
        tps = [TopicPartition(t, p) for t in names for p in (consumer.partitions_for_topic(t) or ())]
        totals: dict[str, int] = {}
        for tp, offset in consumer.end_offsets(tps).items():
            totals[tp.topic] = totals.get(tp.topic, 0) + offset
        return totals
    finally:
        consumer.close()


def reset_cluster(settings: Settings) -> None:
    """Delete every consumer group and every topic, then create the catalogue's topics again."""
    from complaint_stream.kafka.admin import create_topics

    client = make_admin(settings)
    try:
        deadline = time.monotonic() + 60
        while True:
            groups = [g["group_id"] if isinstance(g, dict) else g[0] for g in client.list_groups()]
            if not groups:
                break
            results = client.delete_groups(groups)
            failed = [r for r in results if r[1] is not None and getattr(r[1], "errno", 0) != 0
                      and type(r[1]).__name__ not in ("GroupIdNotFoundError", "NoError")]
            if not failed:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not delete consumer groups: {failed}")
            time.sleep(0.2)
        names = [t for t in client.list_topics() if not t.startswith("__")]
        if names:
            client.delete_topics(names, timeout_ms=30000)
        while set(names) & set(client.list_topics()):
            if time.monotonic() > deadline:
                raise RuntimeError("topics still listed 60 s after deleting them")
            time.sleep(0.1)
        create_topics(settings)
        # a consumer that joins while a new topic has no leader yet gets no partitions, and kafka-python
        # only notices the partitions at its next metadata refresh (5 min): wait until all have leaders
        client.wait_for_topics([t.name for t in topics.ALL], timeout_ms=60000)
    finally:
        client.close()


@dataclass
class Result:
    round: int
    variant: str
    n: int
    delivered: int = 0
    complete: bool = False
    ready_s: float = 0.0
    publish_s: float = 0.0
    elapsed_s: float = 0.0
    throughput: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    drain_s: float | None = None
    kept_up: bool | None = None
    records_per_complaint: float = 0.0
    commits_per_complaint: float = 0.0
    dead_letters: int = 0
    cpu_ms_per_complaint: float = 0.0
    broker_cpu_ms_per_complaint: float = 0.0
    topics_delta: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def received_times(tail: Tail, transport: bool) -> dict[bytes, float]:
    out = {}
    for key, (value, ts) in tail.received.items():
        if transport:
            out[key] = ts / 1000
        else:
            out[key] = datetime.fromisoformat(json.loads(value)["time"].replace("Z", "+00:00")).timestamp()
    return out


def publish(producer: Any, topic: str, records: list[tuple[bytes, bytes]], rate: float | None) -> tuple[float, float]:
    """Send ``records`` (as fast as possible, or paced at ``rate``/s); return (first, last) send wall times."""
    start = time.time()
    t0 = time.monotonic()
    for i, (key, value) in enumerate(records):
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing, not waiting for anything
        producer.send(topic, key=key, value=value, headers=HEADERS)
    last = time.time()
    producer.flush()
    return start, last


def measure(variant: Variant, rnd: int, n: int, base: Settings, inputs: Inputs, scratch: Path,
            broker_pid: int, rate: float) -> Result:
    from complaint_stream.kafka.local_broker import free_port
    from complaint_stream.workers.launcher import WorkerFailed, start_workers, stop_workers, wait_ready

    res = Result(rnd, variant.name, n)
    offsets_before: dict[str, int] = {}
    tag = f"r{rnd}{variant.name}"
    settings = base.with_overrides(state_dir=scratch / "state" / tag)
    reset_cluster(settings)
    subs = inputs.submissions(n, f"R{rnd}{VARIANTS.index(variant)}")
    procs: list[Any] = []
    workers: list[Any] = []
    tail: Tail | None = None
    logs = scratch / "logs" / tag
    logs.mkdir(parents=True, exist_ok=True)
    producer = make_producer(settings)  # as ChannelPublisher: acks=all, idempotent
    try:
        producer.partitions_for(variant.input_topic.name)
        t_start = time.monotonic()
        if variant.kind == "workers":
            workers = start_workers(settings, variant.stages, logs,
                                    ports={name: free_port() for name in variant.stages})
            wait_ready(workers, timeout=180)
            pids = [w.proc.pid for w in workers]
        else:
            group = f"bench-{tag}"
            procs = [PlainProcess(settings, hop, group, variant.kind == "transport", logs / f"plain-{hop}.log")
                     for hop in variant.stages]
            for p in procs:
                p.wait_ready()
            pids = [p.proc.pid for p in procs]
        res.ready_s = time.monotonic() - t_start
        records = subs if variant.input_topic is topics.SUBMISSIONS else inputs.received(subs)
        tail = Tail(settings, variant.output_topic, len(records))
        tail.start()
        offsets_before = end_offsets(settings)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        broker_before = cpu_seconds(broker_pid, descendants=False)

        first, last_sent = publish(producer, variant.input_topic.name, records, rate if variant.paced else None)
        res.publish_s = last_sent - first
        timeout = (len(records) / rate if variant.paced else 0) + 60 + len(records) / 25
        deadline = time.monotonic() + timeout
        while not tail.done.wait(0.1):
            dead = [w for w in workers if w.proc.poll() is not None] + [p for p in procs if not p.alive()]
            if dead:
                d = dead[0]
                raise WorkerFailed(f"{d.name} exited during the measurement:\n{d.tail()}")
            if time.monotonic() > deadline:
                break
        cpu_after = sum(cpu_seconds(pid) for pid in pids)
        broker_after = cpu_seconds(broker_pid, descendants=False)
        tail.stop()
        seen = dict(tail.seen)
        res.delivered = len(seen)
        res.complete = res.delivered >= len(records)
        if seen:
            last_seen = max(seen.values())
            res.elapsed_s = last_seen - first
            res.throughput = res.delivered / res.elapsed_s
            if variant.paced:
                res.drain_s = last_seen - last_sent
                res.kept_up = res.complete and res.drain_s <= 2.0
        if not res.complete:
            res.error = (f"only {res.delivered}/{len(records)} complaints reached {variant.output_topic.name}"
                         f" within {timeout:.0f}s")
        if variant.output_topic is topics.CLASSIFIED:
            start = received_times(tail, variant.kind == "transport")
            lat = [(seen[k] - start[k]) * 1000 for k in seen if k in start]
            if lat:
                res.p50_ms, res.p99_ms = round(pct(lat, 50), 1), round(pct(lat, 99), 1)
        res.cpu_ms_per_complaint = 1000 * (cpu_after - cpu_before) / max(res.delivered, 1)
        res.broker_cpu_ms_per_complaint = 1000 * (broker_after - broker_before) / max(res.delivered, 1)
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        if tail is not None and tail.is_alive():
            tail.stop()
        producer.close(timeout=10)
        stop_workers(workers)
        for p in procs:
            p.stop()
    if res.delivered:
        try:
            after = end_offsets(settings)
            delta = {t: after.get(t, 0) - offsets_before.get(t, 0) for t in after}
            res.topics_delta = {t: d for t, d in sorted(delta.items()) if d}
            data = sum(d for t, d in delta.items() if t != "__consumer_offsets")
            res.records_per_complaint = data / res.delivered
            res.commits_per_complaint = delta.get("__consumer_offsets", 0) / res.delivered
            res.dead_letters = delta.get(topics.DEAD_LETTERS.name, 0)
        except Exception as exc:
            res.error = (res.error or "") + f" (end offsets: {exc!r})"
    if res.error:
        log(f"round {rnd} {variant.name}: FAILED: {res.error}\n(logs: {logs})")
    return res


# ==== reporting =================================================================================

def fmt(value: Any, spec: str = ".1f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, spec)


def table(results: list[Result]) -> str:
    head = (f"{'rnd':>3} {'variant':<15} {'n':>5} {'done':>5} {'ready s':>7} {'c/s':>7} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'kept up':>7} {'drain s':>7} {'rec/c':>6} {'commits/c':>9} {'cpu ms/c':>8} {'brk ms/c':>8}  error")
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.round:>3} {r.variant:<15} {r.n:>5} {r.delivered:>5} {r.ready_s:>7.1f} {r.throughput:>7.0f}"
            f" {fmt(r.p50_ms):>8} {fmt(r.p99_ms):>8} {fmt(r.kept_up):>7} {fmt(r.drain_s, '.2f'):>7}"
            f" {r.records_per_complaint:>6.2f} {r.commits_per_complaint:>9.3f} {r.cpu_ms_per_complaint:>8.2f}"
            f" {r.broker_cpu_ms_per_complaint:>8.2f}  {(r.error or '').splitlines()[0][:80] if r.error else ''}")
    return "\n".join(lines)


RATIO_FIELDS = {  # name in the summary -> (Result attribute, higher is better?)
    "throughput": ("throughput", True),
    "p50": ("p50_ms", False),
    "p99": ("p99_ms", False),
    "records_per_complaint": ("records_per_complaint", False),
    "cpu_per_complaint": ("cpu_ms_per_complaint", False),
    "broker_cpu_per_complaint": ("broker_cpu_ms_per_complaint", False),
}


def ratios(results: list[Result]) -> dict[str, dict[str, float | None]]:
    """Per variant with a reference: median over rounds of variant/reference in the same round."""
    by = {(r.round, r.variant): r for r in results}
    out: dict[str, dict[str, float | None]] = {}
    for v in VARIANTS:
        if v.reference is None:
            continue
        per: dict[str, list[float]] = {k: [] for k in RATIO_FIELDS}
        for (rnd, name), r in by.items():
            ref = by.get((rnd, v.reference))
            if name != v.name or ref is None or r.error or ref.error:
                continue
            for key, (attr, _) in RATIO_FIELDS.items():
                a, b = getattr(r, attr), getattr(ref, attr)
                if a is not None and b:
                    per[key].append(a / b)
        if any(per.values()):
            out[v.name] = {k: (round(statistics.median(x), 3) if x else None) for k, x in per.items()}
            out[v.name]["rounds"] = len(per["throughput"])
    return out


def medians(results: list[Result]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for v in VARIANTS:
        rs = [r for r in results if r.variant == v.name and not r.error]
        if not rs:
            continue
        out[v.name] = {}
        for attr in ("throughput", "p50_ms", "p99_ms", "records_per_complaint", "commits_per_complaint",
                     "cpu_ms_per_complaint", "broker_cpu_ms_per_complaint", "ready_s", "drain_s"):
            xs = [getattr(r, attr) for r in rs if getattr(r, attr) is not None]
            out[v.name][attr] = round(statistics.median(xs), 3) if xs else None
    return out


def targets(results: list[Result], rat: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    def ratio(v: str, k: str) -> float | None:
        return rat.get(v, {}).get(k)

    checks = []
    for name, want in (("intake", 0.6), ("classify", 0.6), ("pipeline", 0.5)):
        got = ratio(name, "throughput")
        checks.append({"target": f"{name} throughput >= {want}x {BY_NAME[name].reference}", "value": got,
                       "met": None if got is None else got >= want})
    paced = [r for r in results if r.variant == "pipeline-paced"]
    if paced and not all(r.error and r.kept_up is None for r in paced):
        kept = all(bool(r.kept_up) for r in paced)
        checks.append({"target": "pipeline keeps up at the paced rate (every round)", "value": kept, "met": kept})
    got = ratio("pipeline-paced", "p99")
    checks.append({"target": "pipeline p99 <= 2x plain p99 at the paced rate", "value": got,
                   "met": None if got is None else got <= 2.0})
    return checks


# ==== main ======================================================================================

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1500, help="complaints per burst variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="complaints/s of the paced variants")
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                        help="comma-separated subset, in this order")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a settings override for the workers (and the plain loop's domain stages),"
                             " e.g. batch_max_records=200, commit_every=500, producer_linger_ms=1")
    parser.add_argument("--plain-hop", choices=("intake", "classify"), help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--transport", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_hop:
        return plain_hop_main(args.plain_hop, args.group, args.transport)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop workers, destroy the broker

    overrides: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set wants NAME=VALUE, not {item!r}")
        overrides[name.strip()] = value.strip()
    chosen = [BY_NAME[n.strip()] for n in args.variants.split(",") if n.strip()]
    paced_n = int(args.rate * args.paced_seconds)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    t_run = time.monotonic()
    results: list[Result] = []
    with throwaway_broker(scratch / "kafka") as (broker, broker_pid):
        base = load_settings(environ={}).with_overrides(
            kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1, state_dir=scratch / "state",
            **overrides)
        log(f"broker {broker.layout.bootstrap} (pid {broker_pid}); overrides {overrides or 'none'};"
            f" scratch {scratch}")
        inputs = Inputs(base)
        for rnd in range(args.rounds):
            order = chosen if rnd % 2 == 0 else chosen[::-1]
            for v in order:
                n = paced_n if v.paced else args.count
                log(f"round {rnd} {v.name}: {n} complaints{f' at {args.rate:.0f}/s' if v.paced else ''}")
                r = measure(v, rnd, n, base, inputs, scratch, broker_pid, args.rate)
                results.append(r)
                if not r.error:
                    log(f"  {r.throughput:.0f} c/s, p99 {fmt(r.p99_ms)} ms, cpu {r.cpu_ms_per_complaint:.2f} ms/c,"
                        f" broker {r.broker_cpu_ms_per_complaint:.2f} ms/c, {r.records_per_complaint:.2f} rec/c"
                        f" (ready after {r.ready_s:.1f}s)")
    shutil.rmtree(scratch / "state", ignore_errors=True)
    results.sort(key=lambda r: (r.round, [v.name for v in VARIANTS].index(r.variant)))
    rat = ratios(results)
    checks = targets(results, rat)
    med = medians(results)

    print(f"bench_pipeline: {args.count} complaints per burst, {paced_n} paced at {args.rate:.0f}/s,"
          f" {args.rounds} rounds, 6 partitions per lifecycle topic, 1 broker + workers on {os.cpu_count()} cores;"
          f" worker overrides: {overrides or 'none'}")
    print()
    print(table(results))
    print()
    print("medians over rounds:")
    for name, m in med.items():
        print(f"  {name:<15} " + ", ".join(f"{k} {fmt(x, '.2f')}" for k, x in m.items()))
    print()
    print("ratios to the reference measured in the same round (median over rounds;"
          " throughput: higher is better, the rest: lower is better):")
    for name, rr in rat.items():
        print(f"  {name:<15} vs {BY_NAME[name].reference:<15} " +
              ", ".join(f"{k} {fmt(x, '.2f')}" for k, x in rr.items() if k != "rounds") + f" ({rr['rounds']} rounds)")
    print()
    print("targets:")
    for c in checks:
        met = "n/a" if c["met"] is None else ("MET" if c["met"] else "NOT MET")
        print(f"  {c['target']}: {fmt(c['value'], '.2f') if not isinstance(c['value'], bool) else c['value']}"
              f" -> {met}")
    failed = [r for r in results if r.error]
    print()
    print(f"{len(failed)} failed measurements; worker and plain-loop logs kept in {scratch / 'logs'};"
          f" total {time.monotonic() - t_run:.0f}s")
    summary = {
        "bench": "bench_pipeline", "count": args.count, "rounds": args.rounds, "rate": args.rate,
        "paced_seconds": args.paced_seconds, "overrides": overrides, "cpus": os.cpu_count(),
        "medians": med, "ratios": rat, "targets": checks,
        "measurements": [asdict(r) for r in results],
        "seconds": round(time.monotonic() - t_run, 1),
    }
    print(json.dumps(summary, ensure_ascii=False, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
