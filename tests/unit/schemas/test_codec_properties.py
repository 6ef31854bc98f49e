"""Properties of the codec over generated input (hypothesis): decoding is total — any bytes either decode
or raise DecodeError with a kind, never another exception — and valid events round-trip byte for byte,
through the codec and through the intake stage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.schemas import (
    PAYLOADS,
    ChannelSubmission,
    ComplaintReceived,
    DeadLetterKind,
    DecodeError,
    decode,
    decoder_for,
    encode,
)
from complaint_stream.settings import load_settings
from complaint_stream.workers import intake
from tests.support.factories import CHANNELS, REGIONS, submission

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
STAGE_INPUTS = [[ChannelSubmission], [ComplaintReceived], list(PAYLOADS)]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30)


def outcome(accept, raw):
    try:
        return decoder_for(accept)(raw, {"now": NOW})
    except DecodeError as exc:
        assert isinstance(exc.kind, DeadLetterKind) and exc.message
        return exc


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=600), accept=st.sampled_from(STAGE_INPUTS))
def test_any_bytes_decode_or_raise_a_decode_error(raw, accept):
    outcome(accept, raw)


def valid_envelope_dict():
    return json.loads(encode(submission_envelope(validate_submission(submission(1, NOW), now=NOW))))


def mutated(draw_path, value, doc):
    """Replace the value at a path of keys (created if missing) in a copy of ``doc``."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in draw_path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[draw_path[-1]] = value
    return doc


PATHS = [("type",), ("id",), ("time",), ("specversion",), ("data",), ("data", "channel"), ("data", "text"),
         ("data", "customer"), ("data", "customer", "msisdn"), ("data", "customer", "tier"), ("data", "region"),
         ("data", "region", "province"), ("data", "occurred_at"), ("data", "attachments"), ("data", "unknown")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=json_values, accept=st.sampled_from(STAGE_INPUTS))
def test_a_valid_envelope_with_one_field_replaced_by_anything_never_raises_anything_else(path, value, accept):
    raw = json.dumps(mutated(path, value, valid_envelope_dict())).encode()
    outcome(accept, raw)


submissions = st.builds(
    lambda i, channel, region, text, tier, minutes: submission(
        i, NOW, channel=channel, region=dict(zip(("province", "city", "district"), region)), text=text,
        customer={"msisdn": f"139{i:08d}", "tier": tier}, occurred_at=(NOW - timedelta(minutes=minutes)).isoformat()),
    i=st.integers(0, 99_999_999), channel=st.sampled_from(CHANNELS), region=st.sampled_from(REGIONS),
    text=st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=120)
    .filter(lambda t: any(c.isalnum() for c in t)),
    tier=st.sampled_from(["standard", "silver", "gold", "platinum"]), minutes=st.integers(0, 60 * 24 * 300))


@settings(max_examples=200, deadline=None)
@given(obj=submissions)
def test_a_valid_submission_round_trips_byte_for_byte_and_through_the_intake_stage(obj):
    env = submission_envelope(validate_submission(obj, now=NOW))
    raw = encode(env)
    back = decode(raw, [ChannelSubmission], context={"now": NOW})
    assert back == env and encode(back) == raw
    stage = intake.binding(load_settings(environ={})).stage
    [received] = [o.event for o in run_in_event_time(stage, [env]) if o.event.type == ComplaintReceived.event_type]
    again = decode(encode(received), [ComplaintReceived])
    assert again == received and encode(again) == encode(received)
    assert again.data.channel_ref == env.data.channel_ref and again.data.text == env.data.text
