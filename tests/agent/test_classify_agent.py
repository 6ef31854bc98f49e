"""The classification agents with faust's test_context: re-keying, triage, follow-ups, repeats, closings,
reopens."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.intake import IntakePolicy, accept_submission
from complaint_stream.schemas import (
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    DeadLetter,
    Resolution,
    TicketStatus,
    decode,
    encode,
    wrap,
)
from complaint_stream.topics import CLASSIFIED, CLASSIFY_BY_CUSTOMER, DEAD_LETTERS
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import create_worker
from tests.agent.conftest import NOW, prepare
from tests.support.factories import submission

POLICY = IntakePolicy(dedup_window=timedelta(days=7), customer_key_secret="test")


def received_bytes(i, text, phone="13812345678", channel="app", at=NOW):
    sub = validate_submission(submission(i, at, text=text, channel=channel, customer={"msisdn": phone}), now=at)
    return encode(accept_submission(submission_envelope(sub), None, at, POLICY).event)


def resolved_bytes(received: bytes, at, status=TicketStatus.CLOSED):
    r = decode(received, [ComplaintReceived]).data
    resolved = ComplaintResolved(complaint_id=r.complaint_id, customer_key=r.customer_key, status=status,
                                 category="network", resolution=Resolution(code="technical_fix"), resolved_at=at)
    return encode(wrap(resolved, source="/workers/lifecycle", subject=r.complaint_id))


def reopened_bytes(received: bytes, at):
    r = decode(received, [ComplaintReceived]).data
    reopened = ComplaintReopened(complaint_id=r.complaint_id, customer_key=r.customer_key, reopened_at=at,
                                 reason_code="customer_rejected", actor="customer", reopen_count=1)
    return encode(wrap(reopened, source="/workers/lifecycle", subject=r.complaint_id))


def build(base_settings, outbox, clock, registry=None, classifier=None):
    binding = None
    if classifier is not None:
        from dataclasses import replace

        from complaint_stream.workers.classify import binding as classify_binding

        default = classify_binding(base_settings)
        binding = replace(default, stage=type(default.stage)(classifier, default.stage.priority_rules,
                                                             default.stage.policy))
    # One record a batch: each put is processed at the clock the test set for it.
    base_settings = base_settings.with_overrides(batch_max_records=1)
    return prepare(create_worker(WORKERS["classify"], base_settings, clock=clock,
                                 registry=registry or CollectorRegistry(), outbox=outbox, binding=binding))


def classified(outbox):
    return [decode(v, [ComplaintClassified]).data for _k, v in outbox.on(CLASSIFIED)]


async def test_rekey_forwards_the_unchanged_bytes_keyed_by_customer(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    raw = received_bytes(1, "手机没有信号")
    async with built.agents["rekey"].test_context() as agent:
        await agent.put(raw, key=b"CMP-1")
        await agent.put(b"junk", key=b"CMP-2")
    [(key, value)] = outbox.on(CLASSIFY_BY_CUSTOMER)
    assert value == raw and key == decode(raw, [ComplaintReceived]).data.customer_key.encode()
    assert [decode(v, [DeadLetter]).data.error.type for _k, v in outbox.on(DEAD_LETTERS)] == ["invalid_json"]


async def test_rekey_forwards_closings_and_reopens_keyed_by_customer_too(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    first = received_bytes(1, "手机没有信号")
    closing, reopen = resolved_bytes(first, NOW + timedelta(days=1)), reopened_bytes(first, NOW + timedelta(days=2))
    async with built.agents["rekey"].test_context() as agent:
        await agent.put(closing, key=b"CMP-1")
        await agent.put(reopen, key=b"CMP-1")
    customer = decode(first, [ComplaintReceived]).data.customer_key.encode()
    assert outbox.on(CLASSIFY_BY_CUSTOMER) == [(customer, closing), (customer, reopen)]


async def test_a_received_complaint_comes_out_classified_with_priority_and_reasons(base_settings, outbox, clock):
    registry = CollectorRegistry()
    built = build(base_settings, outbox, clock, registry)
    async with built.agents["process"].test_context() as agent:
        await agent.put(received_bytes(1, "家里手机一点信号都没有，打不了电话，再不解决我就向工信部投诉"), key=b"c")
    [c] = classified(outbox)
    assert c.category.value == "network"
    assert [f.value for f in c.risk_flags] == ["regulator"] and c.priority.value == "P1"
    assert c.severity.value == "critical" and c.explanation and c.priority_reasons
    assert c.classifier_version.startswith("rules+model-")  # the packaged model blends in by default
    assert registry.get_sample_value("complaints_classified_total", {"category": "network", "priority": "P1"}) == 1


async def test_a_second_contact_about_an_open_complaint_is_a_follow_up(base_settings, outbox, clock):
    registry = CollectorRegistry()
    built = build(base_settings, outbox, clock, registry)
    first = received_bytes(1, "手机信号很差，经常掉线")
    async with built.agents["process"].test_context() as agent:
        await agent.put(first, key=b"c")
        clock.now = NOW + timedelta(hours=2)
        await agent.put(received_bytes(2, "还是没信号，电话一直掉线", at=clock.now), key=b"c")
        await agent.put(received_bytes(3, "another customer: no signal at home", phone="13900000000",
                                       at=clock.now), key=b"d")
    a, b, other = classified(outbox)
    assert b.follow_up_of == a.complaint_id and b.repeat_of is None
    assert a.follow_up_of is None and other.follow_up_of is None and other.repeat_of is None
    assert b.priority == a.priority  # a follow-up is not ranked as a repeat (the lifecycle raises it)
    assert b.first_contact_at == a.received_at and "open" in b.priority_reasons[-1]
    assert registry.get_sample_value("complaints_follow_ups_detected_total") == 1
    assert registry.get_sample_value("complaints_repeat_complaints_total") == 0


async def test_a_complaint_after_a_resolved_one_of_the_same_kind_is_marked_as_a_repeat(base_settings, outbox, clock):
    registry = CollectorRegistry()
    built = build(base_settings, outbox, clock, registry)
    first = received_bytes(1, "手机信号很差，经常掉线")
    async with built.agents["process"].test_context() as agent:
        await agent.put(first, key=b"c")
        await agent.put(resolved_bytes(first, NOW + timedelta(hours=1), TicketStatus.RESOLVED), key=b"c")
        clock.now = NOW + timedelta(hours=2)
        await agent.put(received_bytes(2, "还是没信号，电话一直掉线", at=clock.now), key=b"c")
    a, b = classified(outbox)
    assert b.repeat_of == a.complaint_id and b.follow_up_of is None
    assert b.priority.value == "P2"  # network baseline P3, one step up for the repeat
    assert b.first_contact_at == a.received_at
    assert registry.get_sample_value("complaints_repeat_complaints_total") == 1
    assert registry.get_sample_value("complaints_follow_ups_detected_total") == 0


async def test_a_complaint_closed_longer_ago_than_the_window_is_no_longer_repeated(base_settings, outbox, clock):
    built = build(base_settings.with_overrides(repeat_window_days=30), outbox, clock)
    first = received_bytes(1, "手机信号很差，经常掉线")
    async with built.agents["process"].test_context() as agent:
        await agent.put(first, key=b"c")
        await agent.put(resolved_bytes(first, NOW + timedelta(days=1)), key=b"c")
        clock.now = NOW + timedelta(days=20)
        await agent.put(received_bytes(2, "又没信号了，掉线", at=clock.now), key=b"c")
        clock.now = NOW + timedelta(days=40)
        await agent.put(received_bytes(3, "信号又差了，打不通电话", at=clock.now), key=b"c")
    first_c, within, after = classified(outbox)
    assert within.repeat_of == first_c.complaint_id
    assert after.follow_up_of == within.complaint_id and after.repeat_of is None  # the second one is still open
    assert after.first_contact_at == first_c.received_at  # the issue started with the first
    assert "open" in after.priority_reasons[-1]


async def test_a_reopened_complaint_is_followed_up_again(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    first = received_bytes(1, "手机信号很差，经常掉线")
    async with built.agents["process"].test_context() as agent:
        await agent.put(first, key=b"c")
        await agent.put(resolved_bytes(first, NOW + timedelta(days=1)), key=b"c")
        await agent.put(reopened_bytes(first, NOW + timedelta(days=2)), key=b"c")
        clock.now = NOW + timedelta(days=3)
        await agent.put(received_bytes(2, "还是没信号，电话一直掉线", at=clock.now), key=b"c")
    a, b = classified(outbox)
    assert b.follow_up_of == a.complaint_id and b.repeat_of is None


async def test_a_classifier_failure_dead_letters_the_record_and_the_agent_goes_on(base_settings, outbox, clock):
    class Exploding:
        def classify(self, text, channel):
            if "boom" in text:
                raise RuntimeError("model crashed")
            from complaint_stream.domain.classification import Classifier
            return Classifier().classify(text, channel)

    built = build(base_settings, outbox, clock, classifier=Exploding())
    async with built.agents["process"].test_context() as agent:
        await agent.put(received_bytes(1, "boom"), key=b"c")
        await agent.put(received_bytes(2, "宽带断网三天了"), key=b"c")
    [dl] = [decode(v, [DeadLetter]).data for _k, v in outbox.on(DEAD_LETTERS)]
    assert dl.error.type == "processing_error" and "model crashed" in dl.error.message
    assert [c.category.value for c in classified(outbox)] == ["broadband"]


async def test_rekey_files_malformed_but_parseable_records_as_schema_errors(base_settings, outbox, clock):
    built = build(base_settings, outbox, clock)
    hostile = [b'{"specversion": "1.0", "type": {"a": 1}, "data": {}}', b"[" * 10_000 + b"]" * 10_000,
               b'{"type": "org.complaintstream.complaint.received.v1", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"]
    async with built.agents["rekey"].test_context() as agent:
        for i, raw in enumerate(hostile):
            await agent.put(raw, key=f"CMP-{i}".encode())
    kinds = [decode(v, [DeadLetter]).data.error.type for _k, v in outbox.on(DEAD_LETTERS)]
    assert kinds == ["schema_violation", "invalid_json", "invalid_json"]
    assert outbox.on(CLASSIFY_BY_CUSTOMER) == []
