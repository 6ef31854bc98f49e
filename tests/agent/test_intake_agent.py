"""The intake agent with faust's test_context: decode at the edge, de-duplicate, dead-letter."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.schemas import ComplaintReceived, DeadLetter, decode, encode
from complaint_stream.topics import DEAD_LETTERS, RECEIVED, SUBMISSIONS
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import create_worker, raw_topic
from tests.agent.conftest import NOW, prepare
from tests.support.factories import submission


def build(base_settings, outbox, clock, registry=None):
    base_settings = base_settings.with_overrides(batch_max_records=1)
    return prepare(create_worker(WORKERS["intake"], base_settings, clock=clock,
                                 registry=registry or CollectorRegistry(), outbox=outbox))


def envelope_bytes(i, **overrides):
    return encode(submission_envelope(validate_submission(submission(i, NOW, **overrides), now=NOW)))


async def test_a_valid_submission_is_received_once_and_its_retry_is_counted(base_settings, outbox, clock):
    registry = CollectorRegistry()
    built = build(base_settings, outbox, clock, registry)
    first, retry = envelope_bytes(1), envelope_bytes(1)  # a retry is a new event with the same reference
    async with built.agents["process"].test_context() as agent:
        await agent.put(first, key=b"app:REF-000001")
        await agent.put(retry, key=b"app:REF-000001")
    out = outbox.on(RECEIVED)
    assert len(out) == 1
    key, value = out[0]
    event = decode(value, [ComplaintReceived])
    assert key == event.data.complaint_id.encode() and event.data.received_at == NOW
    assert registry.get_sample_value("complaints_intake_accepted_total", {"channel": "app"}) == 1
    assert registry.get_sample_value("complaints_intake_duplicates_total", {"channel": "app"}) == 1


async def test_bad_records_go_to_the_dead_letter_topic_and_the_agent_continues(base_settings, outbox, clock):
    registry = CollectorRegistry()
    built = build(base_settings, outbox, clock, registry)
    bad_phone = json.loads(envelope_bytes(2))
    bad_phone["data"]["customer"]["msisdn"] = "13900001"
    async with built.agents["process"].test_context() as agent:
        await agent.put(b"\x00\x01 not json", key=b"k1")
        await agent.put(json.dumps(bad_phone).encode(), key=b"k2")
        await agent.put(envelope_bytes(3), key=b"k3")
    letters = [decode(v, [DeadLetter]).data for _k, v in outbox.on(DEAD_LETTERS)]
    assert [(dl.error.type, dl.original_key) for dl in letters] == [("invalid_json", b"k1"), ("schema_violation", b"k2")]
    assert letters[0].original_value == b"\x00\x01 not json"
    assert letters[1].error.fields[0].loc == "data.customer.msisdn"
    assert "13900001" not in letters[1].error.message
    assert all(dl.stage == "intake" and dl.source_topic == SUBMISSIONS.name for dl in letters)
    assert len(outbox.on(RECEIVED)) == 1
    assert registry.get_sample_value("complaints_dead_letters_total", {"stage": "intake", "kind": "invalid_json"}) == 1


def test_the_raw_topic_hands_the_agent_the_exact_bytes(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    topic = raw_topic(built.app, SUBMISSIONS)
    payload = b'{"weird": "\xff bytes"}'
    assert built.app.serializers.loads_value(topic.value_type, payload, serializer=topic.value_serializer) == payload
    assert built.app.serializers.loads_key(topic.key_type, b"k", serializer=topic.key_serializer) == b"k"


class Stopped(BaseException):
    """Stands in for the process exit the runtime performs when a batch can be neither delivered nor
    dead-lettered."""


def stopping_worker(base_settings, outbox, clock):
    """The intake worker, one record a batch, with the process exit replaced by recording the failure."""
    stops: list[Exception] = []

    def stop(exc):
        stops.append(exc)
        raise Stopped

    built = prepare(create_worker(WORKERS["intake"], base_settings.with_overrides(batch_max_records=1), clock=clock,
                                  registry=CollectorRegistry(), outbox=outbox, on_delivery_failed=stop))
    return built, stops


async def test_when_neither_output_nor_dead_letter_is_delivered_the_worker_stops_before_acknowledging(
        base_settings, outbox, clock):
    built, stops = stopping_worker(base_settings, outbox, clock)
    outbox.fail_topics.update({RECEIVED.name, DEAD_LETTERS.name})
    agent = built.agents["process"]
    try:
        async with agent.test_context() as ctx:
            await ctx.put(envelope_bytes(1), key=b"app:REF-000001")
    except Stopped:
        pass
    assert [type(e).__name__ for e in stops] == ["DeliveryFailed"]
    assert "neither the outputs nor the dead letter" in str(stops[0])
    assert outbox.sent == []


def test_the_default_reaction_to_an_undeliverable_batch_is_to_exit_without_cleanup():
    # faust's take_events acknowledges a batch in a ``finally`` clause: raising would commit its offsets.
    import subprocess
    import sys

    code = ("from complaint_stream.workers.runtime import DeliveryFailed, exit_unacknowledged\n"
            "try:\n"
            "    exit_unacknowledged(DeliveryFailed('x'))\n"
            "finally:\n"
            "    print('finally ran')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 70
    assert "finally ran" not in done.stdout
    assert "without acknowledging the batch" in done.stderr


async def test_a_failure_outside_any_record_stops_the_worker_before_acknowledging(base_settings, outbox, clock):
    built, stops = stopping_worker(base_settings, outbox, clock)

    async def broken(messages):
        raise KeyError("a runtime bug")

    built.runner.process_batch = broken
    try:
        async with built.agents["process"].test_context() as ctx:
            await ctx.put(envelope_bytes(1), key=b"app:REF-000001")
    except Stopped:
        pass
    assert [type(e).__name__ for e in stops] == ["BatchFailed"]
    assert "outside any record" in str(stops[0]) and isinstance(stops[0].__cause__, KeyError)


async def test_a_dead_letters_subject_masks_a_phone_number_key(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    async with built.agents["process"].test_context() as agent:
        await agent.put(b"not json", key=b"13812345678")
    [(_key, value)] = outbox.on(DEAD_LETTERS)
    env = decode(value, [DeadLetter])
    assert env.subject == "138****5678" and env.data.original_key == b"13812345678"
