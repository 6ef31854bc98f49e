"""Envelopes, the codec, the fast decoder, the payload registry and dead letters."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from complaint_stream.schemas import (
    PAYLOADS,
    REGISTRY,
    Category,
    ChannelSubmission,
    ComplaintEvent,
    ComplaintId,
    ComplaintReceived,
    ComplaintResolved,
    DeadLetter,
    DeadLetterError,
    DeadLetterKind,
    DecodeError,
    DuplicateEventType,
    Envelope,
    Payload,
    Resolution,
    TicketStatus,
    dead_letter,
    decode,
    decoder_for,
    encode,
    envelope_type,
    wrap,
)

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
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


# --- the fast decoder ---------------------------------------------------------------------------

def received_bytes(**overrides) -> bytes:
    sub = ChannelSubmission.model_validate(SUB, context={"now": NOW})
    received = ComplaintReceived(complaint_id="CMP20261128-ABCDEFGHIJKL", channel=sub.channel,
                                 channel_ref=sub.channel_ref, text=sub.text, customer=sub.customer,
                                 customer_key="0f" * 16, region=sub.region, occurred_at=sub.occurred_at,
                                 received_at=NOW)
    env = wrap(received, source="/workers/intake", subject=received.complaint_id, event_id="r-1", time=NOW)
    obj = json.loads(encode(env))
    obj["data"].update(overrides)
    return json.dumps(obj).encode()


def test_a_decoder_is_built_once_per_set_of_types_and_decodes_each_accepted_type():
    dec = decoder_for([ComplaintReceived, ComplaintResolved])
    assert decoder_for([ComplaintReceived, ComplaintResolved]) is dec
    env = dec(received_bytes())
    assert type(env) is envelope_type(ComplaintReceived) and isinstance(env, Envelope[ComplaintReceived])
    assert env.data.complaint_id == "CMP20261128-ABCDEFGHIJKL"
    resolved = ComplaintResolved(complaint_id="CMP20261128-ABCDEFGHIJKL", customer_key="0f" * 16,
                                 status=TicketStatus.CLOSED, category=Category.NETWORK,
                                 resolution=Resolution(code="technical_fix", refund_fen=500),
                                 resolved_at=NOW)
    raw = encode(wrap(resolved, source="/crm", subject=resolved.complaint_id, time=NOW))
    assert dec(raw).data == resolved


def test_the_decoder_passes_the_validation_context():
    dec = decoder_for([ChannelSubmission])
    with pytest.raises(DecodeError) as info:
        dec(submission_bytes(), {"now": NOW, "max_text_chars": 5})
    assert info.value.kind == DeadLetterKind.SCHEMA_VIOLATION and "at most 5" in info.value.message


@pytest.mark.parametrize("raw,kind", [
    (b"not json", "invalid_json"),
    (b"\xff\xfe\x00", "invalid_encoding"),
    (b"[1,2]", "schema_violation"),
    (b'"a string"', "schema_violation"),
    (None, "empty_record"),
    (b'{"type": "something.else"}', "unexpected_event_type"),
    (b'{"no": "type"}', "schema_violation"),
    # malformed but parseable: schema errors, never an exception of another kind
    (b'{"specversion": "1.0", "type": {"a": 1}}', "schema_violation"),
    (b'{"specversion": "1.0", "type": ["a"]}', "schema_violation"),
    # nesting beyond the parser's bound, and a number beyond its range: invalid JSON, no RecursionError
    (b"[" * 10_000 + b"]" * 10_000, "invalid_json"),
    (b'{"type": "org.complaintstream.complaint.received.v1", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
     "invalid_json"),
    (b'{"id": ' + b"9" * 5000 + b"}", "invalid_json"),
])
@pytest.mark.parametrize("types", [[ChannelSubmission], [ComplaintReceived, ComplaintResolved]])
def test_the_decoder_raises_the_same_kinds_as_decode(raw, kind, types):
    with pytest.raises(DecodeError) as info:
        decoder_for(types)(raw)
    assert info.value.kind == kind and isinstance(info.value.kind, DeadLetterKind)


def test_a_schema_violation_names_the_field_path_without_the_union_tag():
    with pytest.raises(DecodeError) as info:
        decoder_for([ComplaintReceived, ComplaintResolved])(received_bytes(complaint_id="bad id!"))
    assert [f.loc for f in info.value.fields] == ["data.complaint_id"]


# --- registry, ids and kinds ------------------------------------------------------------------

def test_the_registry_holds_every_payload_class_by_its_event_type():
    assert {p.event_type: p for p in PAYLOADS} == REGISTRY
    assert PAYLOADS[0] is ChannelSubmission and DeadLetter in PAYLOADS and len(PAYLOADS) == 29
    assert not any(issubclass(p, ComplaintEvent) and "event_type" not in vars(p) for p in PAYLOADS)


def test_a_second_payload_with_a_known_event_type_is_refused_at_definition():
    with pytest.raises(DuplicateEventType, match="ComplaintReceived"):
        class Impostor(Payload):
            event_type: ClassVar[str] = ComplaintReceived.event_type
    assert REGISTRY[ComplaintReceived.event_type] is ComplaintReceived


def test_every_event_about_one_complaint_carries_a_validated_complaint_id():
    about_one = {p for p in PAYLOADS if "complaint_id" in p.model_fields and p is not ChannelSubmission}
    assert about_one == {p for p in PAYLOADS if issubclass(p, ComplaintEvent)}
    assert len(about_one) == 24
    for bad in ("", "ab", "-leading-dash", "has space", "x" * 65, "中文"):
        with pytest.raises(ValidationError):
            TypeAdapter(ComplaintId).validate_python(bad)
    for good in ("CMP20261128-ABCDEFGHIJKL", "HL-2026-000123", "a.b_c"):
        assert TypeAdapter(ComplaintId).validate_python(good) == good


def test_dead_letter_kinds_compare_and_print_as_strings():
    err = DeadLetterError(type="processing_error", message="boom")
    assert err.type is DeadLetterKind.PROCESSING_ERROR and err.type == "processing_error"
    assert str(err.type) == "processing_error" and f"{err.type}" == "processing_error"
    assert json.loads(err.model_dump_json())["type"] == "processing_error"
    with pytest.raises(ValidationError):
        DeadLetterError(type="something_else", message="x")


def test_a_dead_letter_of_a_huge_record_keeps_its_head_size_and_digest_and_fits_in_one_record():
    import base64
    import hashlib

    from complaint_stream.schemas import DEAD_LETTER_VALUE_HEAD, DeadLetter, FieldError, dead_letter, wrap
    from complaint_stream.schemas.deadletter import DeadLetterError

    value = "投诉".encode() * 600_000  # 3.6 MB
    error = DeadLetterError(type="schema_violation", message="x" * 100_000,
                            fields=tuple(FieldError(loc=f"data.f{i}" * 50, msg="bad " * 200) for i in range(5000)))
    letter = dead_letter(stage="intake", source_topic="t", value=value, key=b"k" * 100_000, error=error,
                         failed_at=NOW, headers=[("h", b"v" * 40_000)])
    assert letter.truncated and letter.original_size == len(value)
    assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
    assert letter.original_value == value[:DEAD_LETTER_VALUE_HEAD]
    assert len(letter.error.fields) == 50 and "4950 more field errors not kept" in letter.error.message
    assert len(encode(wrap(letter, source="/workers/intake", subject="k"))) < 1_000_000
    # a small record is kept whole, and says so
    small = dead_letter(stage="intake", source_topic="t", value=b"abc", key=b"k", error=error, failed_at=NOW)
    assert not small.truncated and small.original_value == b"abc" and small.original_size == 3
    assert decode(encode(wrap(small, source="/s", subject="k")), [DeadLetter]).data == small
    assert base64.b64decode(small.original_value_b64) == b"abc"
