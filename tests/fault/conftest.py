"""The hostile-input run the fault suite's hostile and personal-data tests share, and the lifecycle policy
of the whole fault suite.

Every registered worker is started as its own process, at least 10,000 hypothesis-generated records are
published into every one of their input topics, and once the groups have committed everything (and the
updates the lifecycle parked for complaints it did not know have been applied or dead-lettered), what the
workers are (same process, alive, healthy), logged and expose on ``/metrics`` is noted; then the workers
are stopped and everything they wrote is read back. The workers never outlive the fixture's setup: other
modules of this package run the same consumer groups (and static member ids), and must not meet them.

Every fault test runs the lifecycle worker with :func:`fault_lifecycle_policy`: no quiet hours (messages
go at once, whatever the time of day, so what a live run sends does not depend on when the suite runs), a
grace of 3 s for updates about unknown complaints and timers every 2 s (so parked updates come out within
the run).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from complaint_stream.kafka.clients import client_config
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import DeadLetter, DecodeError, decode
from complaint_stream.topics import DEAD_LETTERS
from complaint_stream.workers.launcher import WorkerProcess, start_workers, stop_workers, wait_ready
from complaint_stream.workers.registry import WORKERS
from tests.fault.hostile import (
    Expectation,
    Generation,
    InputTopic,
    Raw,
    Rec,
    World,
    end_offsets,
    expectations,
    input_topics,
    parked_copy_sha256,
    pool_records,
    publish,
    publish_over_limit,
    read_from,
    sources,
)
from tests.support.workers import lag

#: Records per input topic (hostile and valid mixed); FAULT_RECORDS_PER_TOPIC overrides it for a quick look.
PER_TOPIC = int(os.environ.get("FAULT_RECORDS_PER_TOPIC", "10000"))
CATCH_UP_TIMEOUT = 240.0
#: The lifecycle's grace for an update about a complaint it has not seen, in the fault suite (3 s).
GRACE_MINUTES = 0.05
#: How often the lifecycle's timers sweep in the fault suite. A sweep decodes only the records whose timer is
#: due (``next_due``), but the first one after a start or rebalance reads every record the worker holds
#: (~1.5 s for the hostile run's): at 1 s those would overlap and starve the input.
TIMER_SECONDS = float(os.environ.get("FAULT_LIFECYCLE_TIMER_SECONDS", "2"))
SETTLE_TIMEOUT = 120.0


def fault_lifecycle_policy(directory: Path, grace_minutes: float = GRACE_MINUTES) -> str:
    """The packaged lifecycle policy with no quiet hours, fast timers and a 3 s grace; its path."""
    from complaint_stream.domain.lifecycle.policy import LifecyclePolicy

    policy = json.loads(LifecyclePolicy.load().file.model_dump_json(by_alias=True))
    policy.update(quiet_hours_start="00:00", quiet_hours_end="00:00", timer_seconds=TIMER_SECONDS,
                  unknown_complaint_grace_minutes=grace_minutes)
    path = directory / "lifecycle.json"
    path.write_text(json.dumps(policy), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="package")
def fault_base_settings(base_settings, tmp_path_factory):
    """``base_settings`` with the fault suite's lifecycle policy (for the brokers of the suite's own)."""
    return base_settings.with_overrides(lifecycle_policy=fault_lifecycle_policy(tmp_path_factory.mktemp("policy")))


@pytest.fixture(scope="package")
def kafka_broker(tmp_path_factory, base_settings):
    """The fault suite's own single-node broker, destroyed when the suite ends. The hostile runs leave
    100,000s of records, big tables and the committed offsets of every worker's consumer group behind;
    on the session broker the integration tests that come after (same groups, same table changelogs)
    would first restore and skip all of that, and be slow or disturbed by it."""
    from complaint_stream.kafka.local_broker import ephemeral_broker

    broker = ephemeral_broker(tmp_path_factory.mktemp("fault-kafka"), base_settings.cache_dir,
                              base_settings.kafka_version)
    broker.start(timeout=120)
    yield broker
    broker.destroy()


#: The grace of the worker and broker fault runs, which compare the live outputs with the stages replayed in
#: event time: longer than any stall of a partition in them (a takeover waits for a session timeout, then
#: restores tables and catches up, on a loaded machine). With 3 s, a follow-up's link could reach its case's
#: partition before that case's receipt did, wait out its grace and open a case of its own, which the ideal
#: order of the replay never does (seen once under pytest-xdist).
REPLAY_GRACE_MINUTES = 2.0


@pytest.fixture(scope="package")
def kafka_settings(kafka_broker, fault_base_settings, tmp_path_factory):
    """Settings for the suite's broker, with all topics created and the fault suite's lifecycle policy (with
    :data:`REPLAY_GRACE_MINUTES`)."""
    from complaint_stream.kafka.admin import create_topics

    policy = fault_lifecycle_policy(tmp_path_factory.mktemp("replay-policy"), grace_minutes=REPLAY_GRACE_MINUTES)
    settings = fault_base_settings.with_overrides(kafka_bootstrap=kafka_broker.layout.bootstrap,
                                                  topic_replication_factor=1, lifecycle_policy=policy,
                                                  state_dir=tmp_path_factory.mktemp("fault-state"))
    create_topics(settings)
    return settings


def changelog_topics(settings: Any) -> dict[str, str]:
    """{worker: the changelog topic of its state table} (faust's name: ``<app id>-<table>-changelog``)."""
    out = {}
    for name, entry in WORKERS.items():
        binding = entry.load().binding(settings)
        if binding.table is not None:
            out[name] = f"{entry.app_id}-{binding.table}-changelog"
    return out


@dataclass
class Letter:
    """A dead letter read back, with where it is on the dead-letter topic."""

    raw: Raw
    letter: DeadLetter


@dataclass(repr=False)
class WorkerState:
    """What one worker process was like when the run had been processed, before it was stopped."""

    name: str
    pid_started: int
    pid_now: int
    exit_code: int | None
    healthz: int | str
    log: str
    metrics: str

    def __repr__(self) -> str:
        return (f"WorkerState({self.name}, pid {self.pid_started}->{self.pid_now}, exit {self.exit_code},"
                f" healthz {self.healthz}, log {len(self.log)} chars)")


@dataclass(repr=False)  # a run holds gigabytes: pytest shows fixture values in every failure's traceback
class Run:
    settings: Any
    world: World
    inputs: list[InputTopic]
    log_dir: Path
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    recs: list[Rec] = field(default_factory=list)
    expected: list[Expectation] = field(default_factory=list)
    over_limit: dict[str, list[str]] = field(default_factory=dict)
    start: dict[Any, int] = field(default_factory=dict)
    out: dict[str, list[Raw]] = field(default_factory=dict)
    letters: dict[tuple[str, int | None, int | None], list[Letter]] = field(default_factory=dict)
    #: Dead letters a stage wrote for an event it had kept (parked) first, by (key, SHA-256 of the kept
    #: copy): they have no source partition and offset (see ``hostile.parked_copy_sha256``).
    parked_letters: dict[tuple[bytes | None, str | None], list[Letter]] = field(default_factory=dict)
    undecodable_letters: list[Raw] = field(default_factory=list)
    #: What the workers wrote onto topics that workers read (intake's received complaints, classify's
    #: classifications, the lifecycle's links and outcomes ...), judged by each reader's decoder as the
    #: test's own records are.
    fed: list[Expectation] = field(default_factory=list)
    states: dict[str, WorkerState] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    volume: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> records, bytes read back

    def __repr__(self) -> str:
        return (f"Run({self.world.prefix}: {len(self.recs)} records sent, {len(self.expected)} expectations,"
                f" {sum(map(len, self.out.values()))} records read back, workers {sorted(self.workers)})")

    def topics_read(self) -> list[str]:
        """Every topic a registered worker writes: its stage's outputs, its re-keying topic, its state table's
        changelog, the dead letters (the inputs nobody but the test writes are not read back: the test
        knows what it sent)."""
        names = {DEAD_LETTERS.name, *changelog_topics(self.settings).values()}
        for t in self.inputs:
            names |= {p.name for p in t.stage.produces}
            if t.binding.repartition is not None:
                names.add(t.binding.repartition.name)
        return sorted(names)

    def worker_inputs(self, worker: str) -> list[str]:
        return sorted({t.topic.name for t in self.inputs if t.worker == worker})

    def catch_up(self, timeout: float = CATCH_UP_TIMEOUT) -> None:
        """Wait until every worker's group has committed every record of its inputs (in registry order: a
        worker's outputs are the next one's inputs); fail at once, with its log, if a worker exits."""
        for name in WORKERS:
            deadline = time.monotonic() + timeout
            while True:
                self.check_alive()
                behind = {tp: n for tp, n in lag(self.settings, WORKERS[name].app_id, self.worker_inputs(name)).items()
                          if n}
                if not behind:
                    break
                assert time.monotonic() < deadline, f"{name} left partitions behind after {timeout:.0f}s: {behind}"
                time.sleep(0.3)

    def check_alive(self) -> None:
        for name, proc in self.workers.items():
            code = proc.proc.poll()
            if code is not None:
                log = "\n".join(line[:600] for line in proc.tail(20_000).splitlines()
                                if "dead-lettered" not in line)[-4000:]
                raise AssertionError(f"worker {name} exited with code {code} during the run; its log, but for"
                                     f" dead letters:\n{log}")

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Catch up, then wait until no worker's state holds a parked update (the lifecycle keeps an update
        about a complaint it has not seen for its grace, then applies or dead-letters it from its timer),
        and catch up with what those timers fed back (links, outcomes), until both hold at once. Polls the
        state tables' changelogs from the run's start: the latest record of each key tells."""
        deadline = time.monotonic() + timeout
        self.catch_up()
        topics = list(changelog_topics(self.settings).values())
        consumer = KafkaConsumer(**client_config(self.settings), enable_auto_commit=False, group_id=None,
                                 max_partition_fetch_bytes=4 * 1024 * 1024, check_crcs=False)
        waiting: set[tuple[str, bytes | None]] = set()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self.start.get(tp, 0))
            while True:
                ends = consumer.end_offsets(tps)
                while any(consumer.position(tp) < ends[tp] for tp in tps):
                    for tp, msgs in consumer.poll(timeout_ms=500, max_records=5000).items():
                        for m in msgs:
                            if m.value is not None and b'"parked":[{' in m.value and json.loads(m.value)["parked"]:
                                waiting.add((tp.topic, m.key))
                            else:
                                waiting.discard((tp.topic, m.key))
                if not waiting:
                    before = dict(ends)
                    self.catch_up()  # what the last timers fed back, processed
                    if consumer.end_offsets(tps) == before:
                        return
                    continue
                assert time.monotonic() < deadline, (
                    f"{len(waiting)} records still hold parked updates after {timeout:.0f}s:"
                    f" {sorted(waiting, key=str)[:5]}")
                self.check_alive()
                time.sleep(0.5)  # the timers run every second
        finally:
            consumer.close()

    def start_workers(self, names: list[str] | None = None) -> None:
        names = names or list(WORKERS)
        ports = {n: (self.workers[n].port if n in self.workers else free_port()) for n in names}
        for proc in start_workers(self.settings, names, self.log_dir, ports=ports, log_prefix=""):
            self.workers[proc.name] = proc
            self.pids[proc.name] = proc.proc.pid

    def note_states(self) -> None:
        """Each worker's process, health, log and metrics now (before anything stops it)."""
        for name, proc in self.workers.items():
            try:
                with urllib.request.urlopen(f"{proc.url}/healthz", timeout=5) as resp:
                    health: int | str = resp.status
                metrics = urllib.request.urlopen(f"{proc.url}/metrics", timeout=5).read().decode()
            except OSError as exc:
                health, metrics = f"no answer: {exc}", ""
            self.states[name] = WorkerState(name, self.pids[name], proc.proc.pid, proc.proc.poll(), health,
                                            proc.log.read_text(encoding="utf-8", errors="replace"), metrics)

    def stop(self) -> None:
        stop_workers(list(self.workers.values()))

    def read_back(self) -> None:
        self.out = read_from(self.settings, self.start, self.topics_read())
        self.volume = {t: (len(raws), sum(len(r.value or b"") for r in raws)) for t, raws in self.out.items()}
        self.letters, self.parked_letters, self.undecodable_letters = {}, {}, []
        for raw in self.out[DEAD_LETTERS.name]:
            try:
                letter = decode(raw.value, [DeadLetter]).data
            except DecodeError:
                self.undecodable_letters.append(raw)
                continue
            if letter.source_partition is None and letter.source_offset is None:
                self.parked_letters.setdefault((letter.original_key, letter.original_sha256), []).append(
                    Letter(raw, letter))
                continue
            coords = (letter.source_topic, letter.source_partition, letter.source_offset)
            self.letters.setdefault(coords, []).append(Letter(raw, letter))
        ours = {r.coords for r in self.recs}
        fed = [Rec(raw.topic, raw.key, raw.value, (), "produced", raw.partition, raw.offset)
               for t in sorted({t.topic.name for t in self.inputs}) for raw in self.out.get(t, ())
               if (raw.topic, raw.partition, raw.offset) not in ours]
        self.fed = expectations(fed, self.inputs)

    def letters_of(self, e: Expectation) -> list[Letter]:
        """The dead letters the reader of ``e`` wrote for its record: at the record's coordinates, and, for a
        decodable one, those of the copy it had parked."""
        stage = e.input.stage.name
        found = [x for x in self.letters.get(e.rec.coords, []) if x.letter.stage == stage]
        if e.envelope is not None:
            key = str(e.input.stage.state_key(e.envelope)).encode()
            found += [x for x in self.parked_letters.get((key, parked_copy_sha256(e.envelope)), [])
                      if x.letter.stage == stage]
        return found


def interleave(per_topic: dict[str, list[Rec]]) -> list[Rec]:
    """One record of each topic in turn, so every worker is busy at once."""
    lists = list(per_topic.values())
    out = [r for group in zip(*lists, strict=False) for r in group]
    shortest = min(map(len, lists))
    return out + [r for recs in lists for r in recs[shortest:]]


@pytest.fixture(scope="package")
def hostile_broker(tmp_path_factory, fault_base_settings):
    """A broker of the hostile-input run's own: it writes undecodable records straight onto topics that
    other tests read whole (received, resolved), so it must not share the session broker."""
    from tests.support.faults import broker_of_its_own

    with broker_of_its_own(tmp_path_factory, fault_base_settings, "hostile") as (_broker, settings):
        # No instance fails in this run, so no takeover waits for a session timeout: 30 s instead of the
        # default 6 keeps a loaded 2-core CI machine (the run's records drawn in another process, six workers
        # and a broker) from rebalancing a group over a late heartbeat; a rebalance hands the records
        # acknowledged but not yet committed out again, and their dead letters would be written twice.
        yield settings.with_overrides(consumer_session_timeout_seconds=30.0, consumer_heartbeat_seconds=3.0)


HOSTILE_MODULES = ("test_hostile_input.py", "test_personal_data.py")


def _uses_hostile_run(item) -> bool:
    return Path(str(item.fspath)).parent == Path(__file__).parent and item.fspath.basename in HOSTILE_MODULES


def pytest_collection_modifyitems(items):
    """The modules of the hostile run last within this package (its place in the session kept, so its package
    fixtures are built once): the run's records are drawn (:func:`hostile_generation`, from the package's
    first test on) while the broker and worker fault tests run, which mostly wait on processes and brokers."""
    here = Path(__file__).parent
    places = [i for i, item in enumerate(items) if here in Path(str(item.fspath)).parents]
    ordered = sorted((items[i] for i in places), key=_uses_hostile_run)  # stable
    for i, item in zip(places, ordered, strict=True):
        items[i] = item


@pytest.fixture(scope="package", autouse=True)
def hostile_generation(request, fault_base_settings):
    """The hostile run's world and records, drawn in the background from the package's start (one process,
    leaving the other core to the tests that run meanwhile), when a test of the run is selected;
    :func:`hostile_run` collects them."""
    if not any(_uses_hostile_run(item) for item in request.session.items):
        yield None
        return
    world = World(fault_base_settings, datetime.now(UTC), prefix=f"FLT{uuid.uuid4().hex[:6].upper()}",
                  pool_size=PER_TOPIC // 5)
    generation = Generation(world, sources(input_topics(fault_base_settings)), PER_TOPIC, processes=1)
    yield generation
    generation.pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="package")
def hostile_run(hostile_broker, hostile_generation, tmp_path_factory):
    """PER_TOPIC generated records in every input topic of every registered worker, processed; the
    workers' states noted, the workers stopped, and what they wrote read back."""
    began = time.monotonic()
    settings = hostile_broker
    world = hostile_generation.world
    run = Run(settings, world, input_topics(settings), tmp_path_factory.mktemp("fault-logs"))
    try:
        run.start_workers()
        t = time.monotonic()
        per_topic = hostile_generation.result()
        run.timings["generate (waited)"] = time.monotonic() - t
        run.timings["generate (drawn in)"] = hostile_generation.drew_seconds or 0.0
        t = time.monotonic()
        wait_ready(list(run.workers.values()), timeout=120)
        run.timings["wait_ready"] = time.monotonic() - t

        run.start = end_offsets(settings, run.topics_read())
        t = time.monotonic()
        # the run's complaints first, received and classified before the updates about them come
        run.recs = publish(settings, pool_records(world))
        run.catch_up()
        run.timings["pool"] = time.monotonic() - t
        t = time.monotonic()
        run.recs += publish(settings, interleave(per_topic))
        run.over_limit = {source.name: publish_over_limit(settings, source.name) for source in sources(run.inputs)}
        run.timings["publish"] = time.monotonic() - t
        t = time.monotonic()
        run.catch_up()
        run.timings["catch_up"] = time.monotonic() - t
        t = time.monotonic()
        run.settle()
        run.timings["settle"] = time.monotonic() - t
        run.note_states()
    finally:
        run.stop()
    t = time.monotonic()
    run.expected = expectations(run.recs, run.inputs)
    run.timings["judge"] = time.monotonic() - t
    t = time.monotonic()
    run.read_back()
    run.timings["read_back"] = time.monotonic() - t
    run.timings["total"] = time.monotonic() - began
    return run
