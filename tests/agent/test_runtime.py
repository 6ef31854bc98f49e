"""The generic runtime's batch loop without a broker: decode, apply, store, send, settle, sweep."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.schemas import ComplaintReceived, DeadLetter, decode, encode
from complaint_stream.topics import DEAD_LETTERS, RECEIVED, SUBMISSIONS
from complaint_stream.workers import intake
from complaint_stream.workers.metrics import RuntimeMetrics
from complaint_stream.workers.runtime import (
    STATE_KEY_SERIALIZER,
    DeadLetterSink,
    DeliveryFailed,
    DictStore,
    Ownership,
    StageRunner,
    StateKeyCodec,
)
from tests.agent.conftest import NOW
from tests.support.factories import submission

TP = namedtuple("TP", "topic partition")


@dataclass
class Message:
    value: bytes | None
    key: bytes | None = b"k"
    topic: str = SUBMISSIONS.name
    partition: int = 0
    offset: int = 0
    headers: tuple = ()
    generation_id: int | None = None  # the consumer generation it was fetched in (faust sets it)


def runner(base_settings, outbox, clock, registry=None):
    metrics = RuntimeMetrics("intake", registry or CollectorRegistry())
    store = DictStore()
    binding = intake.binding(base_settings)
    return StageRunner(binding, table=store, outbox=outbox,
                       dead_letters=DeadLetterSink(outbox, "intake", metrics, clock),
                       metrics=metrics, clock=clock), store, metrics


def record(i, offset=0):
    env = submission_envelope(validate_submission(submission(i, NOW), now=NOW))
    return Message(encode(env), key=env.data.dedup_key.encode(), offset=offset)


async def test_a_batch_of_records_and_bad_ones_each_end_up_somewhere(base_settings, outbox, clock):
    run, store, metrics = runner(base_settings, outbox, clock)
    batch = [record(i, offset=i) for i in range(5)] + [Message(b"not json", offset=5), record(0, offset=6)]
    await run.process_batch(batch)
    received = [decode(v, [ComplaintReceived]).data for _k, v in outbox.on(RECEIVED)]
    assert len(received) == 5 and len({r.complaint_id for r in received}) == 5
    [letter] = [decode(v, [DeadLetter]).data for _k, v in outbox.on(DEAD_LETTERS)]
    assert letter.error.type == "invalid_json" and letter.original_value == b"not json" and letter.source_offset == 5
    assert len(store.data) == 5  # the retry at offset 6 changed nothing
    assert metrics.registry.get_sample_value("complaints_batch_records_count", {"worker": "intake"}) == 1


async def test_an_output_the_broker_rejects_dead_letters_its_input(base_settings, outbox, clock):
    run, _store, metrics = runner(base_settings, outbox, clock)
    outbox.fail_topics.add(RECEIVED.name)
    await run.process_batch([record(1, offset=7)])
    [letter] = [decode(v, [DeadLetter]).data for _k, v in outbox.on(DEAD_LETTERS)]
    assert letter.error.type == "delivery_failed" and "MessageSizeTooLarge" in letter.error.message
    assert letter.source_offset == 7 and decode(letter.original_value, intake.binding(base_settings).stage.consumes)
    assert metrics.registry.get_sample_value("complaints_dead_letters_total",
                                             {"stage": "intake", "kind": "delivery_failed"}) == 1


async def test_when_the_dead_letter_cannot_be_delivered_either_the_batch_is_not_acknowledged(
        base_settings, outbox, clock):
    run, _store, _metrics = runner(base_settings, outbox, clock)
    outbox.fail_topics.update({RECEIVED.name, DEAD_LETTERS.name})
    try:
        await run.process_batch([record(1)])
    except DeliveryFailed as exc:
        assert "neither the outputs nor the dead letter" in str(exc)
    else:
        raise AssertionError("the batch must fail so faust does not acknowledge its offsets")


async def test_the_sweep_forgets_entries_outside_the_window(base_settings, outbox, clock):
    run, store, metrics = runner(base_settings, outbox, clock)
    await run.process_batch([record(1), record(2)])
    assert len(store.data) == 2
    clock.now = NOW + timedelta(days=6)
    await run.sweep()
    assert len(store.data) == 2
    clock.now = NOW + timedelta(days=7, seconds=1)
    await run.sweep()
    assert store.data == {}
    assert metrics.registry.get_sample_value("complaints_state_entries", {"worker": "intake", "table": "intake-seen"}) == 0


def timer_runner(base_settings, outbox, clock, due):
    """The intake runner with its stage's timer replaced by ``due``."""
    run, store, metrics = runner(base_settings, outbox, clock)
    run.stage.due = due  # an instance attribute: the stage's other behaviour is unchanged
    return run, store, metrics


async def test_a_timer_whose_outputs_are_not_delivered_keeps_its_state_and_fires_again(base_settings, outbox, clock):
    from complaint_stream.domain.stage import Output

    fired = []

    def due(state, now):
        fired.append(state.complaint_id)
        return None, [Output(RECEIVED, state.complaint_id, submission_envelope(
            validate_submission(submission(1, NOW), now=NOW)))]

    run, store, metrics = timer_runner(base_settings, outbox, clock, due)
    await run.process_batch([record(1)])
    outbox.sent.clear()
    outbox.fail_topics.add(RECEIVED.name)
    await run.sweep()
    assert len(store.data) == 1 and len(fired) == 1
    assert metrics.registry.get_sample_value("complaints_timer_failures_total", {"worker": "intake"}) == 1
    outbox.fail_topics.clear()
    await run.sweep()
    assert store.data == {} and len(fired) == 2 and len(outbox.on(RECEIVED)) == 1


async def test_a_timer_that_raises_for_one_key_does_not_stop_the_others(base_settings, outbox, clock):
    def due(state, now):
        if state.complaint_id.endswith(last_id[0]):
            raise ValueError("bad state")
        return None, []

    run, store, metrics = timer_runner(base_settings, outbox, clock, due)
    await run.process_batch([record(1), record(2), record(3)])
    last_id = [sorted(decode(v, [ComplaintReceived]).data.complaint_id for _k, v in outbox.on(RECEIVED))[0]]
    await run.sweep()
    assert len(store.data) == 1
    assert metrics.registry.get_sample_value("complaints_timer_failures_total", {"worker": "intake"}) == 1


# -- state keys on the changelog ---------------------------------------------------------------------

def test_state_keys_are_written_as_utf8_and_read_in_either_form():
    codec = StateKeyCodec()
    assert codec.dumps("CMP20261203-ABC") == b"CMP20261203-ABC"
    assert codec.dumps("客户-1") == "客户-1".encode()
    assert codec.loads(b"CMP20261203-ABC") == "CMP20261203-ABC"
    assert codec.loads(b'"CMP20261203-ABC"') == "CMP20261203-ABC"  # faust's JSON key, in older changelogs
    assert codec.loads(b'"unterminated') == '"unterminated'


@given(st.text())
def test_every_state_key_round_trips(key):
    codec = StateKeyCodec()
    assert codec.loads(codec.dumps(key)) == key or key.startswith('"')


@given(st.binary())
def test_reading_a_state_key_never_fails(raw):
    """A key recovery cannot decode stalls the partition's recovery for good (faust drops the event
    without recording its offset), so any bytes must read as some key."""
    assert isinstance(StateKeyCodec().loads(raw), str)


def test_the_worker_table_writes_and_reads_keys_through_the_state_key_codec(base_settings, tmp_path):
    from complaint_stream.workers.registry import WORKERS
    from complaint_stream.workers.runtime import create_worker

    built = create_worker(WORKERS["lifecycle"], base_settings.with_overrides(state_dir=tmp_path),
                          registry=CollectorRegistry())
    table = built.runner.table.table
    assert table.key_serializer == STATE_KEY_SERIALIZER
    topic = table.changelog_topic
    raw, _headers = topic.prepare_key("CMP-1", table.key_serializer)
    assert raw == b"CMP-1"
    assert built.app.serializers.loads_key(str, b'"CMP-1"', serializer=table.key_serializer) == "CMP-1"
    assert built.app.serializers.loads_key(str, b"CMP-1", serializer=table.key_serializer) == "CMP-1"


async def test_records_of_a_partition_that_moved_away_are_left_to_its_new_owner(base_settings, outbox, clock):
    """faust hands a batch taken before a rebalance to the stage after it. A record of a partition this
    instance no longer holds is skipped once the rebalance has assigned partitions again (its offset is never
    committed here); a record whose partition came back is applied; the state a batch staged for a partition
    that moved away while the batch waited for the broker is not written."""
    run, store, metrics = runner(base_settings, outbox, clock)
    consumes = intake.binding(base_settings).stage.consumes
    first, second, third, fourth = (record(i) for i in range(1, 5))
    second.partition = 1
    keys = [decode(m.value, consumes).data.dedup_key for m in (first, second, third, fourth)]
    partition_of = {keys[0]: 0, keys[1]: 1, keys[2]: 0, keys[3]: 1}
    run.ownership = ownership = Ownership([SUBMISSIONS.name], key_partition=partition_of.__getitem__)
    ownership.assigned([TP(SUBMISSIONS.name, 0)])
    disowned = []
    run.disown = disowned.extend  # the worker marks them acknowledged, so faust never commits their offsets

    def moved():
        return metrics.registry.get_sample_value("complaints_records_left_after_rebalance_total", {"worker": "intake"})

    await run.process_batch([first, second])  # partition 1 is another instance's
    assert len(outbox.on(RECEIVED)) == 1 and list(store.data) == [keys[0]] and moved() == 1
    assert disowned == [second]

    send = outbox.send
    loop = asyncio.get_running_loop()

    def rebalance_while_sending(then_assigned):
        async def sending(topic, key, value):  # eager protocol: everything revoked, then assigned again
            ownership.revoked([TP(SUBMISSIONS.name, 0), TP(SUBMISSIONS.name, 1)])
            loop.call_later(0.01, ownership.assigned, [TP(SUBMISSIONS.name, p) for p in then_assigned])
            outbox.send = send
            return await send(topic, key, value)
        return sending

    outbox.send = rebalance_while_sending(then_assigned=[1])  # partition 0 moves away during the batch
    await run.process_batch([third])
    assert len(outbox.on(RECEIVED)) == 2  # applied while the partition was held: its output went out
    assert keys[2] not in store.data  # but its state is the new owner's to write, and the record too
    assert disowned == [second, third] and moved() == 2

    ownership.revoked([TP(SUBMISSIONS.name, 1)])  # a batch taken before a rebalance that gives partition 1 back
    loop.call_later(0.01, ownership.assigned, [TP(SUBMISSIONS.name, 1)])
    fourth.partition = 1
    await run.process_batch([fourth])  # no generation known (a runner driven directly): applied
    assert keys[3] in store.data and len(outbox.on(RECEIVED)) == 3 and moved() == 2 and disowned == [second, third]


async def test_records_fetched_before_a_rebalance_are_left_even_when_their_partition_comes_back(
        base_settings, outbox, clock):
    """After a rebalance faust reads every partition again from its committed offset, so a record a batch had
    taken before it comes again in the new generation: handling the old copy too would write its outputs or
    dead letter twice (seen: 81 dead letters written twice by a classify worker whose group rebalanced)."""
    run, store, metrics = runner(base_settings, outbox, clock)
    generation = [1]
    run.ownership = ownership = Ownership([SUBMISSIONS.name], key_partition=lambda _key: 0,
                                          generation=lambda: generation[0])
    ownership.assigned([TP(SUBMISSIONS.name, 0)])
    disowned = []
    run.disown = disowned.extend
    old_good, old_bad = record(1, offset=10), Message(b"not json", offset=11)
    for m in (old_good, old_bad):
        m.generation_id = 1
    loop = asyncio.get_running_loop()
    ownership.revoked([TP(SUBMISSIONS.name, 0)])  # the eager protocol: revoked, then assigned back

    def assigned_again():
        generation[0] = 2
        ownership.assigned([TP(SUBMISSIONS.name, 0)])

    loop.call_later(0.01, assigned_again)
    await run.process_batch([old_good, old_bad])
    assert disowned == [old_good, old_bad]
    assert outbox.on(RECEIVED) == [] and outbox.on(DEAD_LETTERS) == [] and not store.data
    assert metrics.registry.get_sample_value("complaints_records_left_after_rebalance_total",
                                             {"worker": "intake"}) == 2

    again_good, again_bad = record(1, offset=10), Message(b"not json", offset=11)  # fetched again
    for m in (again_good, again_bad):
        m.generation_id = 2
    await run.process_batch([again_good, again_bad])
    assert len(outbox.on(RECEIVED)) == 1 and len(outbox.on(DEAD_LETTERS)) == 1 and len(store.data) == 1
    assert disowned == [old_good, old_bad]


async def test_a_batch_cancelled_half_way_is_disowned_so_faust_cannot_commit_it(base_settings):
    """faust's take_events acknowledges a batch's events in a ``finally`` even when the body was cancelled (a
    graceful stop), and the stop commits them: the runtime marks them acknowledged first, so none is recorded."""
    from types import SimpleNamespace

    from complaint_stream.workers.runtime import _agent_loop

    events = [SimpleNamespace(message=Message(b"x", offset=i)) for i in range(3)]

    class Stream:
        async def take_events(self, _max, within):
            yield events

    started, disowned = asyncio.Event(), []

    async def handle(_messages):
        started.set()
        await asyncio.Event().wait()  # a batch waiting for the broker when the worker stops

    loop = _agent_loop(handle, base_settings, on_failed=lambda exc: None, disown=disowned.extend)
    task = asyncio.ensure_future(loop(Stream()))
    await started.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert disowned == [e.message for e in events]
