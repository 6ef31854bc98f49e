"""The runtime's timer index without a broker: a sweep looks only at the keys due (and the unknown ones), a
stage with timers stores each state behind its due, the index is rebuilt from those prefixes without
decoding a state, and the faust tables (in memory and in RocksDB) are read and written by partition."""

from __future__ import annotations

import asyncio
import gc
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from complaint_stream.domain.stage import ALWAYS, StageBase
from complaint_stream.schemas import ComplaintReceived
from complaint_stream.topics import RECEIVED
from complaint_stream.workers.due_index import PREFIX_LEN, UNKNOWN, pack, peek, unpack
from complaint_stream.workers.metrics import RuntimeMetrics
from complaint_stream.workers.runtime import (
    BuiltWorker,
    DeadLetterSink,
    DictStore,
    StageRunner,
    TableStore,
    make_app,
    state_table,
    worker_datadir,
)
from complaint_stream.workers.wiring import Binding, StateCodec
from tests.agent.conftest import NOW

S = timedelta(seconds=1)
PARTITIONS = 4


@dataclass(frozen=True)
class Tick:
    key: str
    due_at: datetime | None
    fired: int = 0


CODEC: StateCodec[Tick] = StateCodec(Tick)


class Ticking(StageBase[Tick]):
    """A stage whose timer fires at ``due_at`` and moves it an hour on; it records every key it looks at."""

    name = "ticking"
    consumes = (ComplaintReceived,)
    produces = ()
    state_type = Tick
    timer_interval = 60.0

    def __init__(self) -> None:
        self.looked: list[str] = []
        self.failing: set[str] = set()

    def state_key(self, event: Any) -> str:
        return event.data.complaint_id

    def apply(self, state: Tick | None, event: Any, now: datetime) -> tuple[Tick | None, Any]:
        return state, ()

    def due(self, state: Tick, now: datetime) -> tuple[Tick | None, Any]:
        self.looked.append(state.key)
        if state.key in self.failing:
            raise ValueError("bad state")
        if state.due_at is None or state.due_at > now:
            return state, ()
        return replace(state, due_at=now + 3600 * S, fired=state.fired + 1), ()

    def next_due(self, state: Tick) -> datetime | None:
        return state.due_at


def runner(clock, outbox, table=None, stage=None):
    stage = stage or Ticking()
    metrics = RuntimeMetrics(stage.name, CollectorRegistry())
    run = StageRunner(Binding(stage, inputs=(RECEIVED,), table="ticking-state"), table=table or DictStore(),
                      outbox=outbox, dead_letters=DeadLetterSink(outbox, stage.name, metrics, clock),
                      metrics=metrics, clock=clock)
    return run, stage


def stored(run, key) -> Tick:
    return CODEC.loads(unpack(run.table.get(key))[1])


# -- the sweep ---------------------------------------------------------------------------------------

async def test_a_stage_with_timers_stores_each_state_behind_its_due_and_readers_strip_it(clock, outbox):
    run, _stage = runner(clock, outbox)
    run.reset_due()
    run.store("k1", None, Tick("k1", NOW + 60 * S))
    run.store("k2", None, Tick("k2", None))
    raw = run.table.data["k1"]
    assert peek(raw) == NOW + 60 * S and CODEC.loads(raw[PREFIX_LEN:]) == Tick("k1", NOW + 60 * S)
    assert peek(run.table.data["k2"]) is None
    assert run.load("k1") == Tick("k1", NOW + 60 * S)
    view = BuiltWorker(app=None, name="ticking", metrics=run.metrics, runner=replace_prefix(run), agents={}).views()
    body = view["/ticks/"]("k1")
    assert body == CODEC.dumps(Tick("k1", NOW + 60 * S)) and json.loads(body)["key"] == "k1"
    assert view["/ticks/"]("nope") is None


def replace_prefix(run):
    run.binding = replace(run.binding, http_prefix="/ticks/")
    return run


async def test_a_stage_without_timers_stores_the_codecs_bytes_as_before(clock, outbox):
    stage = Ticking()
    stage.timer_interval = None
    run, _ = runner(clock, outbox, stage=stage)
    run.store("k", None, Tick("k", NOW))
    assert run.table.data["k"] == CODEC.dumps(Tick("k", NOW)) and len(run.due) == 0


async def test_a_million_keys_of_which_ten_are_due_the_sweep_looks_at_ten(clock, outbox):
    run, stage = runner(clock, outbox)
    later = pack(NOW + 86400 * S, CODEC.dumps(Tick("later", NOW + 86400 * S)))
    data = run.table.data
    for n in range(1_000_000 - 10):
        data[f"CMP-{n:07d}"] = later  # as recovery puts them: no store() call
    for n in range(10):
        data[f"DUE-{n}"] = pack(NOW - n * S, CODEC.dumps(Tick(f"DUE-{n}", NOW - n * S)))
    run.reset_due()
    assert await run.rebuild_due() == 1_000_000 and run.rebuilt == 1_000_000
    assert len(run.due) == 1_000_000 and run.due.unknown == 0
    await run.sweep()
    assert run.swept == 10 and sorted(stage.looked) == [f"DUE-{n}" for n in range(10)]
    assert stored(run, "DUE-3") == Tick("DUE-3", NOW + 3600 * S, fired=1)
    assert peek(data["DUE-3"]) == NOW + 3600 * S  # stored behind its new due
    await run.sweep()
    assert run.swept == 0 and len(stage.looked) == 10


async def test_the_sweep_takes_the_due_keys_and_no_others(clock, outbox):
    run, stage = runner(clock, outbox)
    run.reset_due()
    for n in range(100):
        run.store(f"k{n}", None, Tick(f"k{n}", NOW + n * 60 * S))
    clock.now = NOW + 150 * S
    await run.sweep()
    assert run.swept == 3 and stage.looked == ["k0", "k1", "k2"]
    await run.sweep()
    assert run.swept == 0


async def test_a_key_whose_timer_raises_is_looked_at_again_at_the_next_sweep_only_it(clock, outbox):
    run, stage = runner(clock, outbox)
    run.reset_due()
    for key in ("good", "bad", "later"):
        run.store(key, None, Tick(key, NOW if key != "later" else NOW + 3600 * S))
    stage.failing.add("bad")
    await run.sweep()
    assert sorted(stage.looked) == ["bad", "good"] and run.due.due_of("bad") is UNKNOWN
    assert run.metrics.registry.get_sample_value("complaints_timer_failures_total", {"worker": "ticking"}) == 1
    stage.looked.clear()
    clock.now = NOW + 60 * S
    await run.sweep()
    assert stage.looked == ["bad"] and run.swept == 1
    stage.failing.clear()
    stage.looked.clear()
    await run.sweep()
    assert stage.looked == ["bad"] and stored(run, "bad").fired == 1
    await run.sweep()
    assert run.swept == 0


async def test_a_key_deleted_behind_the_index_is_dropped_when_it_falls_due(clock, outbox):
    run, stage = runner(clock, outbox)
    run.reset_due()
    run.store("gone", None, Tick("gone", NOW))
    del run.table.data["gone"]  # its partition revoked, or deleted by another path
    await run.sweep()
    assert run.swept == 1 and stage.looked == [] and "gone" not in run.due


async def test_after_a_reset_only_keys_stored_since_are_looked_at_until_the_rebuild(clock, outbox):
    run, stage = runner(clock, outbox)
    run.reset_due()
    run.store("old", None, Tick("old", NOW))
    run.reset_due()  # partitions revoked: nothing noted holds
    run.store("new", None, Tick("new", NOW))
    await run.sweep()
    assert stage.looked == ["new"]
    await run.rebuild_due()
    await run.sweep()
    assert stage.looked == ["new", "old"]


async def test_forget_due_looks_at_every_key_once(clock, outbox):
    run, stage = runner(clock, outbox)
    run.reset_due()
    for n in range(5):
        run.store(f"k{n}", None, Tick(f"k{n}", NOW + 3600 * S))
    run.forget_due()
    await run.sweep()
    assert run.swept == 5 and sorted(stage.looked) == [f"k{n}" for n in range(5)]
    await run.sweep()
    assert run.swept == 0


async def test_values_written_before_the_prefix_are_unknown_and_looked_at_once(clock, outbox):
    run, stage = runner(clock, outbox)
    run.table.data["old"] = CODEC.dumps(Tick("old", NOW + 3600 * S))  # no prefix: an older changelog
    run.table.data["new"] = pack(NOW + 3600 * S, CODEC.dumps(Tick("new", NOW + 3600 * S)))
    run.reset_due()
    await run.rebuild_due()
    assert run.due.unknown == 1
    await run.sweep()
    assert stage.looked == ["old"] and run.due.due_of("old") == NOW + 3600 * S
    await run.sweep()
    assert stage.looked == ["old"]


async def test_a_rebuild_yields_to_batches_and_keeps_what_they_stored(clock, outbox):
    run, stage = runner(clock, outbox)
    for n in range(50):
        run.table.data[f"k{n}"] = pack(NOW, CODEC.dumps(Tick(f"k{n}", NOW)))
    run.reset_due()
    progress = []

    async def batch():
        for n in range(50):
            await asyncio.sleep(0)
            progress.append(n)
            if n == 3:  # the rebuild has read a few chunks (k1 among them), not k30 or k40 yet
                run.store("k40", Tick("k40", NOW), Tick("k40", NOW + 7200 * S))
                run.store("k30", Tick("k30", NOW), None)
                run.store("k1", Tick("k1", NOW), Tick("k1", NOW + 7200 * S))

    rebuilt, _ = await asyncio.gather(run.rebuild_due(chunk=2), batch())
    assert rebuilt == 49 and len(progress) == 50  # interleaved; k30 was gone before the pass reached it
    await run.sweep()
    assert sorted(stage.looked) == sorted(f"k{n}" for n in range(50) if n not in (1, 30, 40))
    assert run.due.due_of("k40") == run.due.due_of("k1") == NOW + 7200 * S and "k30" not in run.due


async def test_a_rebuild_superseded_by_a_revocation_stops(clock, outbox):
    run, _stage = runner(clock, outbox)
    for n in range(20):
        run.table.data[f"k{n}"] = pack(NOW, b"{}")
    run.reset_due()
    task = run.schedule_rebuild()
    await asyncio.sleep(0)
    run.reset_due()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(run.due) == 0


async def test_a_rebuild_that_cannot_read_the_store_falls_back_to_looking_at_every_key(clock, outbox):
    class Unreadable(DictStore):
        def scan(self, chunk):
            raise OSError("IO error: lock held")

    run, stage = runner(clock, outbox, table=Unreadable())
    for n in range(3):
        run.table.data[f"k{n}"] = pack(NOW + 3600 * S, CODEC.dumps(Tick(f"k{n}", NOW + 3600 * S)))
    run.reset_due()
    assert await run.schedule_rebuild() == 0
    await run.sweep()
    assert run.swept == 3 and sorted(stage.looked) == ["k0", "k1", "k2"]


# -- faust's in-memory table -------------------------------------------------------------------------

@pytest.fixture
def memory_table(base_settings, tmp_path):
    app = make_app("complaints-due-test", base_settings.with_overrides(state_dir=tmp_path))
    table = state_table(app, "ticking-state", PARTITIONS)
    return app, table


def hold(app, table, partitions):
    """Pretend the assignor gave this instance these partitions of the table as active."""
    name = table.changelog_topic.get_topic_name()
    app.assignor.assigned_actives = lambda: {TP(name, p) for p in partitions}


async def test_the_memory_table_knows_each_keys_partition_and_a_rebuild_skips_standby_keys(memory_table, clock,
                                                                                            outbox):
    app, table = memory_table
    store = TableStore(table, PARTITIONS, Changelog())
    run, stage = runner(clock, outbox, table=store)
    keys = [f"CMP-{n}" for n in range(40)]
    for key in keys:
        run.store(key, None, Tick(key, NOW))
    assert {table.data._key_partition[k] for k in keys} == {store.partition(k) for k in keys}
    mine = {store.partition(keys[0]), store.partition(keys[1])}
    standby = pack(NOW, CODEC.dumps(Tick("standby", NOW)))
    table.data.data["standby"] = standby  # applied from a standby changelog partition
    table.data._key_partition["standby"] = min(set(range(PARTITIONS)) - mine)
    hold(app, table, mine)
    run.reset_due()
    await run.rebuild_due(chunk=7)
    await run.sweep()
    assert sorted(stage.looked) == sorted(k for k in keys if store.partition(k) in mine)
    assert "standby" not in stage.looked
    store.delete(keys[0])
    assert keys[0] not in table.data._key_partition and store.get(keys[0]) is None


# -- faust's RocksDB store ---------------------------------------------------------------------------

def rocksdb_app(settings, app_id="complaints-due-rocks"):
    app = make_app(app_id, settings, store="rocksdb")
    table = state_table(app, "ticking-state", PARTITIONS)
    hold(app, table, range(PARTITIONS))
    return app, table


def close(table):
    for db in table.data._dbs.values():
        db.close()
    table.data._dbs.clear()
    gc.collect()


class Changelog:
    """A changelog send that the "broker" acknowledges with consecutive offsets per partition."""

    def __init__(self):
        self.records: list[tuple[int, bytes, bytes | None]] = []
        self.next: dict[int, int] = {}

    async def __call__(self, topic, partition, key, value):
        offset = self.next.get(partition, 0)
        self.next[partition] = offset + 1
        self.records.append((partition, key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(SimpleNamespace(topic=topic, partition=partition, offset=offset))
        return fut


async def test_the_rocksdb_table_is_written_by_partition_and_persists_the_changelog_offset(base_settings, tmp_path,
                                                                                           clock, outbox):
    settings = base_settings.with_overrides(state_dir=tmp_path, worker_instance="host-0")
    app, table = rocksdb_app(settings)
    changelog = Changelog()
    store = TableStore(table, PARTITIONS, changelog)
    assert store.rocksdb
    run, stage = runner(clock, outbox, table=store)
    run.reset_due()
    keys = [f"CMP-{n}" for n in range(30)]
    for n, key in enumerate(keys):  # outside any stream event: faust's own Store.__setitem__ would fail here
        run.store(key, None, Tick(key, NOW + (n % 3) * 3600 * S))
    store.delete(keys[-1])
    await store.flush()
    assert sorted(store.all_keys()) == sorted(keys[:-1])
    for key in keys[:5]:  # in its partition's database, under the key's UTF-8 bytes (as on the changelog)
        db = table.data._dbs[store.partition(key)]
        assert db.get(key.encode()) == store.get(key) and peek(store.get(key)) is not UNKNOWN
    assert store.view(keys[0]) == store.get(keys[0])
    name = table.changelog_topic.get_topic_name()
    for partition, last in changelog.next.items():
        assert table.data.persisted_offset(TP(name, partition)) == last - 1
    assert {(p, k) for p, k, _v in changelog.records} == {(store.partition(k), k.encode()) for k in keys}
    assert store.size() > 0

    # recovery (faust applies changelog records to the partition's database by their raw key) and our reads agree
    p = store.partition("CMP-restored")
    offset = changelog.next[p]  # written by another instance that held the partition meanwhile
    changelog.next[p] += 1
    event = SimpleNamespace(message=SimpleNamespace(
        key=b"CMP-restored", value=pack(NOW, CODEC.dumps(Tick("CMP-restored", NOW))),
        partition=p, offset=offset, tp=TP(name, p)))
    table.data.apply_changelog_batch([event], table._to_key, table._to_value)
    assert stored(run, "CMP-restored") == Tick("CMP-restored", NOW)
    assert table.data.persisted_offset(TP(name, p)) == offset

    await run.rebuild_due(chunk=4)  # through RocksDB iterators, a few keys at a time
    assert run.rebuilt == len(keys)  # 29 written + 1 restored
    await run.sweep()
    assert sorted(stage.looked) == sorted([k for n, k in enumerate(keys[:-1]) if n % 3 == 0] + ["CMP-restored"])
    await store.flush()
    close(table)

    # a restart with the same instance finds the states and where the changelog was read up to
    app2, table2 = rocksdb_app(settings)
    assert str(app2.conf.tabledir).startswith(str(worker_datadir("complaints-due-rocks", settings)))
    for partition in range(PARTITIONS):  # as faust's Store.assign_partitions opens them on assignment
        table2.data._db_for_partition(partition)
    store2 = TableStore(table2, PARTITIONS)
    assert sorted(store2.all_keys()) == sorted([*keys[:-1], "CMP-restored"])
    assert CODEC.loads(unpack(store2.get(keys[0]))[1]).fired == 1
    for partition, last in changelog.next.items():
        assert table2.data.persisted_offset(TP(name, partition)) == last - 1
    close(table2)


def test_each_instance_has_its_own_data_directory(base_settings, tmp_path):
    one = worker_datadir("complaints-sla", base_settings.with_overrides(state_dir=tmp_path, worker_instance="h-0"))
    two = worker_datadir("complaints-sla", base_settings.with_overrides(state_dir=tmp_path, worker_instance="h-1"))
    bare = worker_datadir("complaints-sla", base_settings.with_overrides(state_dir=tmp_path))
    odd = worker_datadir("complaints-sla", base_settings.with_overrides(state_dir=tmp_path, worker_instance="a/../b"))
    assert len({one, two, bare}) == 3 and bare == tmp_path / "workers" / "complaints-sla"
    assert one.parent == two.parent == bare / "instances" and odd.parent == bare / "instances"
    app = make_app("complaints-sla", base_settings.with_overrides(state_dir=tmp_path, worker_instance="h-0"),
                   store="rocksdb")
    assert str(app.conf.store) == "rocksdb:" and str(app.conf.datadir).startswith(str(one))


def test_a_binding_asks_for_rocksdb_and_the_worker_gets_it(base_settings, tmp_path):
    from complaint_stream.workers.runtime import build_worker

    binding = Binding(Ticking(), inputs=(RECEIVED,), table="ticking-state", store="rocksdb")
    metrics = RuntimeMetrics("ticking", CollectorRegistry())
    built = build_worker("ticking", "complaints-ticking", binding, base_settings.with_overrides(state_dir=tmp_path),
                         metrics=metrics)
    assert str(built.app.conf.store) == "rocksdb:" and built.runner.table.rocksdb
    assert Binding(Ticking(), inputs=(RECEIVED,)).store == "memory"


def test_always_and_unknown_are_stored_too(clock, outbox):
    class Teams(Ticking):
        def next_due(self, state):
            if state.key == "broken":
                raise ValueError("no due")
            return ALWAYS

    run, _stage = runner(clock, outbox, stage=Teams())
    run.store("team", None, Tick("team", None))
    run.store("broken", None, Tick("broken", None))
    assert peek(run.table.data["team"]) == ALWAYS and peek(run.table.data["broken"]) is UNKNOWN


def test_complaints_show_reads_a_case_record_as_the_lifecycle_worker_now_stores_it(base_settings, clock, outbox):
    """``complaints show --from changelog`` parses the changelog value itself: the due prefix is JSON whitespace."""
    from complaint_stream.cli import case_cmds
    from complaint_stream.domain.stage import run_in_event_time
    from complaint_stream.schemas import CaseRecord
    from complaint_stream.workers import lifecycle
    from tests.support import cases as c

    states: dict[str, CaseRecord] = {}
    list(run_in_event_time(c.stage(), c.opened(1), state=states))
    record = states[c.cid(1)]
    metrics = RuntimeMetrics("lifecycle", CollectorRegistry())
    run = StageRunner(lifecycle.binding(base_settings), table=DictStore(), outbox=outbox,
                      dead_letters=DeadLetterSink(outbox, "lifecycle", metrics, clock), metrics=metrics, clock=clock)
    run.store(c.cid(1), None, record)
    value = run.table.data[c.cid(1)]
    assert peek(value) == run.stage.next_due(record) and value[:1].isspace()
    assert case_cmds._decode(value, "the changelog") == record
