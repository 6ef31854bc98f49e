"""Envelopes, the codec, dead letters and faust compatibility."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from complaint_stream.schemas import (
    PAYLOADS,
    ChannelSubmission,
    ComplaintReceived,
    DeadLetter,
    DecodeError,
    Envelope,
    dead_letter,
    decode,
    encode,
    wrap,
)

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
SUB = {
    "channel": "app", "channel_ref": "APP-1", "text": "Mobile data is very slow",
    "customer": {"msisdn": "+8613912345678", "tier": "standard"},
    "region": {"province": "Guangdong", "city": "Shenzhen"},
    "occurred_at": "2026-11-28T07:00:00Z",
}


def submission_bytes(**data_overrides) -> bytes:
    sub = ChannelSubmission.model_validate({**SUB, **data_overrides}, context={"now": NOW})
    return encode(wrap(sub, source="/channels/app", subject=sub.dedup_key, event_id="e-1", time=NOW))


def test_an_envelope_round_trips_through_bytes():
    raw = submission_bytes()
    env = decode(raw, [ChannelSubmission], context={"now": NOW})
    assert env.specversion == "1.0" and env.id == "e-1" and env.subject == "app:APP-1"
    assert env.type == ChannelSubmission.event_type
    assert env.data.customer.msisdn == "+8613912345678"
    assert encode(env) == raw


def test_every_payload_type_has_a_unique_event_type():
    types = [p.event_type for p in PAYLOADS]
    assert len(types) == len(set(types)) and all(t.startswith("org.complaintstream.") for t in types)


@pytest.mark.parametrize("raw,kind", [
    (b"not json", "invalid_json"),
    (b"\xff\xfe\x00", "invalid_encoding"),
    (b"[1,2]", "schema_violation"),
    (None, "empty_record"),
    (b'{"type": "something.else"}', "unexpected_event_type"),
])
def test_undecodable_records_raise_a_typed_error(raw, kind):
    with pytest.raises(DecodeError) as info:
        decode(raw, [ChannelSubmission])
    assert info.value.kind == kind


def test_a_known_event_on_the_wrong_topic_is_rejected():
    with pytest.raises(DecodeError) as info:
        decode(submission_bytes(), [ComplaintReceived])
    assert info.value.kind == "unexpected_event_type" and "(known)" in info.value.message


def test_schema_violations_name_each_field_without_personal_data():
    obj = json.loads(submission_bytes())
    obj["data"]["customer"]["msisdn"] = "13812345"
    obj["data"]["channel"] = "fax"
    with pytest.raises(DecodeError) as info:
        decode(json.dumps(obj).encode(), [ChannelSubmission], context={"now": NOW})
    locs = {f.loc for f in info.value.fields}
    assert locs == {"data.customer.msisdn", "data.channel"}
    assert "13812345" not in info.value.message


def test_a_dead_letter_keeps_the_original_bytes_losslessly():
    original = b"\x00\xffbroken {json"
    try:
        decode(original, [ChannelSubmission])
    except DecodeError as exc:
        dl = dead_letter(stage="intake", source_topic="t", value=original, key=b"k", partition=2, offset=7,
                         error=exc, failed_at=NOW, headers=[("content-type", b"x")])
    again = decode(encode(wrap(dl, source="/workers/intake", subject="k")), [DeadLetter]).data
    assert again.original_value == original and again.original_key == b"k"
    assert (again.source_partition, again.source_offset, again.stage) == (2, 7, "intake")
    assert again.error.type == "invalid_encoding"
    assert base64.b64decode(again.original_headers[0][1]) == b"x"


def test_models_work_as_faust_value_types():
    import faust

    app = faust.App("schema-test", broker="memory://", store="memory://")
    model = Envelope[ChannelSubmission]
    env = decode(submission_bytes(), [ChannelSubmission], context={"now": NOW})
    raw = app.serializers.dumps_value(model, env, serializer="json")
    back = app.serializers.loads_value(model, raw, serializer="json")
    assert isinstance(back, model) and back.data.text == env.data.text and back.id == env.id
