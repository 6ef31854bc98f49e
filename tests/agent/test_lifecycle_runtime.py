"""The lifecycle stage under the generic runtime, without a broker: refusals become dead letters with
their rule, a batch's states are stored only once its outputs are acknowledged, the case record is
served over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import CaseRecord, CaseUpdated, DeadLetter, decode, encode
from complaint_stream.topics import CASES, DEAD_LETTERS, NOTIFICATIONS, RECEIVED
from complaint_stream.workers import lifecycle
from complaint_stream.workers.metrics import RuntimeMetrics, serve
from complaint_stream.workers.runtime import DeadLetterSink, DeliveryFailed, DictStore, StageRunner
from complaint_stream.workers.wiring import StateCodec
from tests.support import cases as c


@dataclass
class Message:
    value: bytes
    key: bytes
    topic: str
    partition: int = 0
    offset: int = 0
    headers: tuple = ()


def runner(base_settings, outbox, clock):
    metrics = RuntimeMetrics("lifecycle", CollectorRegistry())
    store = DictStore()
    binding = lifecycle.binding(base_settings)
    run = StageRunner(binding, table=store, outbox=outbox,
                      dead_letters=DeadLetterSink(outbox, "lifecycle", metrics, clock), metrics=metrics, clock=clock)
    return run, store, metrics


def msgs(events, start=0):
    return [Message(encode(e), e.data.complaint_id.encode(), RECEIVED.name, offset=start + i)
            for i, e in enumerate(events)]


async def test_a_refused_update_is_dead_lettered_with_its_rule_and_changes_nothing(base_settings, outbox, clock):
    run, store, metrics = runner(base_settings, outbox, clock)
    clock.now = c.T0 + timedelta(minutes=1)
    await run.process_batch(msgs(c.opened(1)))
    before = dict(store.data)
    await run.process_batch(msgs([c.resolve(1, c.T0 + timedelta(minutes=2))], start=10))
    [letter] = [decode(v, [DeadLetter]).data for _k, v in outbox.on(DEAD_LETTERS)]
    assert letter.error.type == "refused" and letter.error.message.startswith("resolve_before_handling:")
    assert letter.stage == "lifecycle" and letter.source_offset == 10
    assert store.data == before
    assert metrics.registry.get_sample_value("complaints_dead_letters_total",
                                             {"stage": "lifecycle", "kind": "refused"}) == 1


async def test_a_batch_whose_outputs_are_not_delivered_stores_no_state(base_settings, outbox, clock):
    run, store, _metrics = runner(base_settings, outbox, clock)
    clock.now = c.T0 + timedelta(minutes=1)
    outbox.fail_topics.update({CASES.name, DEAD_LETTERS.name})
    with pytest.raises(DeliveryFailed):
        await run.process_batch(msgs(c.opened(1)))
    assert store.data == {}  # a restart applies the batch again and its outputs are sent again
    outbox.fail_topics.clear()
    await run.process_batch(msgs(c.opened(1)))
    assert [decode(v, [CaseUpdated]).data.change.value for _k, v in outbox.on(CASES)] == ["opened"]
    acks = [json.loads(v)["id"] for _k, v in outbox.on(NOTIFICATIONS)]
    assert len(acks) == 2 and len(set(acks)) == 1  # sent by both attempts: at-least-once, one id
    assert StateCodec(CaseRecord).loads(store.data[c.cid(1)]).kind == "case"


async def test_the_case_record_is_served_at_complaints_id(base_settings, outbox, clock):
    from complaint_stream.workers.runtime import BuiltWorker

    run, store, metrics = runner(base_settings, outbox, clock)
    clock.now = c.T0 + timedelta(minutes=1)
    await run.process_batch(msgs(c.opened(1)))
    views = BuiltWorker(app=None, name="lifecycle", metrics=metrics, runner=run, agents={}).views()
    port = free_port()
    server = serve(metrics.registry, "127.0.0.1", port, lambda: (True, "test"), views=views)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/complaints/{c.cid(1)}", timeout=5) as resp:
            record = json.loads(resp.read())
        assert record["complaint_id"] == c.cid(1) and record["status"] == "acknowledged"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/complaints/{c.cid(2)}", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()


async def test_the_sweep_looks_only_at_cases_whose_timer_is_due(base_settings, outbox, clock):
    """The timer sweep skips a case until its ``next_due``; a case restored from the changelog (not noted
    by this runner) and every case after a rebalance are looked at once."""
    run, store, _metrics = runner(base_settings, outbox, clock)
    clock.now = c.T0 + timedelta(minutes=1)
    for n in range(1, 6):
        await run.process_batch(msgs([*c.opened(n), c.assigned(n, c.T0), c.status(n, "inProgress", c.T0),
                                      c.resolve(n, c.T0 + timedelta(seconds=30))], start=10 * n))
    store.data["CMP-RESTORED"] = store.data[c.cid(1)]  # as recovery puts a key: no store() call
    await run.sweep()
    assert run.swept == 1  # only the restored key; the five are not due before their callback
    await run.sweep()
    assert run.swept == 0
    callback_due = StateCodec(CaseRecord).loads(store.data[c.cid(1)]).callback.due_at
    clock.now = callback_due
    before = len(outbox.on(CASES))
    await run.sweep()
    assert run.swept == 6 and len(outbox.on(CASES)) - before == 6  # each announces its callback as due
    await run.sweep()
    assert run.swept == 0
    run.forget_due()  # partitions revoked or assigned
    await run.sweep()
    assert run.swept == 6
