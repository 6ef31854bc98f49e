"""The short paths of the normalising helpers give exactly what the full steps give."""

from __future__ import annotations

import random

import pytest

from complaint_stream.schemas import normalise as n


def clean_text_full(raw: str) -> str:
    """clean_text without its short path (every step)."""
    return n._clean_full(str(raw))


ALPHABET = ["a", "Z", "7", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u200b", "\u202e", "\ufeff",
            "\x00", "\x7f", "\x85", "\u2028", "e\u0301", "é", "Ａ", "信号", "，", "\U0001f600", "\u2060", "\x1f",
            "\u2066", "\u00ad", "\U000e0041", "\u061c", "\u180e", "\ufff9", "\ufe0f", "\u3164", "\ue000", "\u0378"]


@pytest.mark.parametrize("text", ["", " ", "plain", " lead", "trail ", "two  spaces", "é", "e\u0301", "a\u00a0b",
                                  "line\nbreak", "zero\u200bwidth", "家里手机信号很差，经常打不通电话 (#1)", "南山"])
def test_clean_text_matches_the_full_steps(text):
    assert n.clean_text(text) == clean_text_full(text)


def test_clean_text_matches_the_full_steps_on_random_text():
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        assert n.clean_text(text) == clean_text_full(text), repr(text)


@pytest.mark.parametrize("raw", ["+8613812345678", "+8619912345678", "+8612812345678", "+86138123456789",
                                 "+８613812345678", "+86 138 1234 5678", "13812345678"])
def test_normalise_msisdn_reads_a_number_the_same_with_a_leading_blank(raw):
    try:
        expected = n.normalise_msisdn(" " + raw)
    except ValueError:
        with pytest.raises(ValueError):
            n.normalise_msisdn(raw)
    else:
        assert n.normalise_msisdn(raw) == expected
