"""Masking, keyed hashing and normalisation helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from complaint_stream.domain.normalise import clean_text, normalise_channel, to_utc
from complaint_stream.domain.privacy import (
    customer_key,
    mask_msisdn,
    redact_phone_numbers,
)


@pytest.mark.parametrize("raw,masked", [("+8613812341234", "138****1234"), ("13812341234", "138****1234"),
                                        ("+447700900123", "447****0123"), ("123", "****")])
def test_phone_numbers_are_masked_for_logs(raw, masked):
    assert mask_msisdn(raw) == masked


def test_customer_keys_are_stable_per_secret_and_differ_between_secrets():
    assert customer_key("+8613812341234", "a") == customer_key("+8613812341234", "a")
    assert customer_key("+8613812341234", "a") != customer_key("+8613812341234", "b")
    assert len(customer_key("+8613812341234", "a")) == 32
    with pytest.raises(ValueError):
        customer_key("+8613812341234", "")


def test_phone_numbers_inside_text_are_redacted():
    text = "call me on 138 1234 1234 or +86-139-0000-1111, order 2026112800001"
    assert redact_phone_numbers(text) == "call me on 138****1234 or 139****1111, order 2026112800001"


def test_unknown_channels_name_the_allowed_ones():
    with pytest.raises(ValueError, match="expected one of hotline"):
        normalise_channel("telegram")


def test_control_and_zero_width_characters_are_removed_and_blank_lines_folded():
    assert clean_text("a\u200bb\x00c\u3000\u3000d\n\n\ne") == "abc d\ne"


def test_aware_times_are_converted_to_utc():
    t = datetime.fromisoformat("2026-11-28T08:00:00+08:00")
    assert to_utc(t) == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
