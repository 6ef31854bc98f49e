"""Channel submissions: every validation rule and normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from complaint_stream.schemas import Channel, ChannelSubmission, CustomerTier

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def valid(**overrides):
    base = {
        "channel": "hotline",
        "channel_ref": "HL-1",
        "text": "手机没信号",
        "customer": {"msisdn": "13812345678", "tier": "gold"},
        "region": {"province": "广东", "city": "深圳", "district": "南山"},
        "occurred_at": "2026-11-28T15:30:00+08:00",
    }
    base.update(overrides)
    return base


def parse(obj, **ctx):
    return ChannelSubmission.model_validate(obj, context={"now": NOW, **ctx})


def errors_of(obj, **ctx):
    with pytest.raises(ValidationError) as info:
        parse(obj, **ctx)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_a_valid_submission_is_normalised():
    sub = parse(valid(channel="10086", text="  手机\t没信号\x07\r\n\r\n  请处理  "))
    assert sub.channel is Channel.HOTLINE
    assert sub.customer.msisdn == "+8613812345678"
    assert sub.customer.tier is CustomerTier.GOLD
    assert sub.text == "手机 没信号\n请处理"
    assert sub.occurred_at == datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
    assert sub.dedup_key == "hotline:HL-1"


@pytest.mark.parametrize("alias,canonical", [
    ("微信", "wechat"), ("WeChat", "wechat"), ("call_center", "hotline"), ("营业厅", "store"),
    ("MIIT", "regulator"), ("e-mail", "email"), ("Mobile App", "app"),
])
def test_channel_aliases_map_to_the_canonical_channel(alias, canonical):
    assert parse(valid(channel=alias)).channel.value == canonical


def test_an_unknown_channel_is_rejected_with_the_allowed_list():
    errs = errors_of(valid(channel="fax"))
    assert "unknown channel 'fax'" in errs["channel"]
    assert "hotline" in errs["channel"] and "regulator" in errs["channel"]


@pytest.mark.parametrize("raw,e164", [
    ("13812345678", "+8613812345678"),
    ("+86 138-1234-5678", "+8613812345678"),
    ("008613812345678", "+8613812345678"),
    ("8613812345678", "+8613812345678"),
    ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits from a web form
    ("+447911123456", "+447911123456"),  # a UK mobile (07700 900xxx, reserved for drama, is no real number)
    ("010-12345678", "+861012345678"),  # a Beijing landline: broadband customers give one
])
def test_phone_numbers_become_e164(raw, e164):
    assert parse(valid(customer={"msisdn": raw})).customer.msisdn == e164


@pytest.mark.parametrize("raw", ["12345", "1381234567", "23812345678", "+86123", "abc-defg", "+0123456789"])
def test_malformed_phone_numbers_are_rejected_without_echoing_them(raw):
    errs = errors_of(valid(customer={"msisdn": raw}))
    assert "customer.msisdn" in errs
    assert raw not in errs["customer.msisdn"]


def test_a_phone_number_must_be_a_string():
    assert "customer.msisdn" in errors_of(valid(customer={"msisdn": 13812345678}))


def test_an_unknown_customer_tier_is_rejected():
    assert "customer.tier" in errors_of(valid(customer={"msisdn": "13812345678", "tier": "vip9"}))


def test_text_over_the_limit_is_rejected_with_its_length():
    errs = errors_of(valid(text="信" * 4001))
    assert errs["text"].endswith("text has 4001 characters; at most 4000 allowed")


def test_the_text_limit_can_be_configured_through_the_validation_context():
    assert "text" in errors_of(valid(text="x" * 11), max_text_chars=10)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01"])
def test_empty_text_is_rejected(text):
    assert "text" in errors_of(valid(text=text))


def test_a_time_far_in_the_future_is_rejected():
    future = (NOW + timedelta(hours=2)).isoformat()
    assert "minutes in the future" in errors_of(valid(occurred_at=future))["occurred_at"]


def test_a_small_clock_skew_into_the_future_is_accepted():
    assert parse(valid(occurred_at=(NOW + timedelta(minutes=5)).isoformat())).occurred_at > NOW


def test_a_time_more_than_a_year_old_is_rejected():
    old = (NOW - timedelta(days=400)).isoformat()
    assert "days in the past" in errors_of(valid(occurred_at=old))["occurred_at"]


def test_a_naive_time_is_read_as_china_standard_time():
    sub = parse(valid(occurred_at="2026-11-28 10:00:00"))
    assert sub.occurred_at == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def test_an_unparseable_time_is_rejected():
    assert "occurred_at" in errors_of(valid(occurred_at="yesterday"))


@pytest.mark.parametrize("ref", ["", "has space", "-leading-dash", "x" * 129])
def test_bad_channel_references_are_rejected(ref):
    assert "channel_ref" in errors_of(valid(channel_ref=ref))


@pytest.mark.parametrize("field", ["channel", "channel_ref", "text", "customer", "region", "occurred_at"])
def test_every_required_field_is_required(field):
    obj = valid()
    del obj[field]
    assert errors_of(obj)[field] == "Field required"


def test_unknown_fields_are_rejected():
    assert "priority" in errors_of(valid(priority="P1"))


def test_region_needs_province_and_city_and_a_clean_cell_id():
    errs = errors_of(valid(region={"province": "", "city": "深圳", "cell_id": "46000 12"}))
    assert "region.province" in errs and "region.cell_id" in errs


def test_language_is_zh_en_or_mixed():
    assert parse(valid(language="mixed")).language == "mixed"
    assert "language" in errors_of(valid(language="fr"))


def test_attachments_are_references_with_a_safe_scheme():
    sub = parse(valid(attachments=[{"uri": "https://files.example/rec/1.wav", "media_type": "audio/wav"}]))
    assert str(sub.attachments[0].uri).startswith("https://")
    assert "attachments.0.uri" in errors_of(valid(attachments=[{"uri": "file:///etc/passwd"}]))


def test_at_most_ten_attachments():
    many = [{"uri": f"https://files.example/{i}"} for i in range(11)]
    assert "attachments" in errors_of(valid(attachments=many))


def test_models_are_frozen():
    sub = parse(valid())
    with pytest.raises(ValidationError):
        sub.text = "changed"
