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
