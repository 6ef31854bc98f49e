"""Text cleaning by Unicode category: idempotent, NFC, nothing invisible left, and "non-empty" means visible."""

from __future__ import annotations

import sys
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from complaint_stream.schemas import ChannelSubmission, Region
from complaint_stream.schemas import normalise as n
from complaint_stream.schemas.normalise import clean_required_text, clean_text, has_visible_text

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

#: Characters that show nothing: format characters of every kind the issue lists, controls, blanks,
#: variation selectors and other default-ignorables.
INVISIBLE = [
    "\u2066", "\u2067", "\u2068", "\u2069",                 # bidi isolates
    "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # bidi marks and embeddings
    "\u00ad", "\u061c", "\u180e", "\ufff9", "\ufffa", "\ufffb",
    "\U000e0001", "\U000e0020", "\U000e0041", "\U000e007f",  # tag characters
    "\u200b", "\u200c", "\u200d", "\u2060", "\u2061", "\u2064", "\ufeff",  # zero-width
    "\ufe00", "\ufe0f", "\U000e0100", "\u034f", "\u180b", "\u3164", "\uffa0", "\u115f", "\u2800",
    "\x00", "\x07", "\x1b", "\x7f", "\x9f",                # controls
    " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\u00a0", "\u2003", "\u3000",
]
invisible_texts = st.text(alphabet=st.sampled_from(INVISIBLE), max_size=20)


def submission(**overrides):
    base = {"channel": "hotline", "channel_ref": "HL-1", "text": "手机没信号", "customer": {"msisdn": "13812345678"},
            "region": {"province": "广东", "city": "深圳"}, "occurred_at": "2026-11-28T15:30:00+08:00"}
    base.update(overrides)
    return ChannelSubmission.model_validate(base, context={"now": NOW})


def errors(**overrides) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        submission(**overrides)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


# --- the regressions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["\u2066\u2069", "\u00ad", "\U000e0041\U000e0042", "\u061c", "\u180e", "\ufff9\ufffb",
                                  "\u200b\u200d", "\ufe0f", "\ufe0f\ufe0e", "\u3164", "\u2800", " \u3000\u00a0 "])
def test_a_text_of_only_invisible_characters_is_refused(text):
    assert "no visible character" in errors(text=text)["text"]


@pytest.mark.parametrize("field", ["province", "city"])
@pytest.mark.parametrize("name", ["\u2066\u2069", "\u00ad", "\U000e0041", "\u061c", "\u200b", "\ufe0f", "\u3164"])
def test_a_region_name_of_only_invisible_characters_is_refused(field, name):
    region = {"province": "广东", "city": "深圳", field: name}
    assert "no visible character" in errors(region=region)[f"region.{field}"]


def test_an_invisible_district_is_no_district():
    assert submission(region={"province": "广东", "city": "深圳", "district": "\u200b\u2066"}).region.district == ""


def test_clean_text_was_not_idempotent_and_not_nfc():
    # Before: U+200B was removed after NFC, leaving e + combining acute: not NFC, and a second pass composed it.
    once = clean_text("e\u200b\u0301")
    assert once == "é" and unicodedata.is_normalized("NFC", once) and clean_text(once) == once


@pytest.mark.parametrize("raw,clean", [
    ("投\u200d诉\u00ad信\u2066号\u2069", "投诉信号"),     # invisible characters inside a keyword (filter evasion)
    ("a\u2028b\u2029c\x85d", "a\nb\nc\nd"),               # every line separator is a line break
    ("  手机\t没信号\x07\r\n\r\n  请处理  ", "手机 没信号\n请处理"),
    ("a\u2003\u3000 b", "a b"),
    ("❤\ufe0f 5G", "❤ 5G"),                              # variation selectors go, their base stays
    ("\ue000", "\ue000"),                                 # private use (legacy GB 18030 characters) stays
])
def test_cleaning_examples(raw, clean):
    assert clean_text(raw) == clean


# --- properties -------------------------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(codec=None), max_size=40) | st.text(
    alphabet=st.sampled_from([*INVISIBLE, "a", "e", "\u0301", "\u0308", "信", "号", "Ａ", "ｶ", "\u309a", "\u1100",
                              "\u1161", "\u11a8", "\ud800", "\U0001f600", "\ue000", "\u0378"]), max_size=40)


@settings(max_examples=300)
@given(any_text)
@example("e\u200b\u0301")
@example("\u1100\u200b\u1161")  # Hangul jamo brought together by the removal
@example("a\u2028\u0301")
def test_cleaning_is_idempotent_nfc_and_leaves_no_control_or_format_character(raw):
    once = clean_text(raw)
    assert clean_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert not [ch for ch in once if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch != "\n"]
    assert once == once.strip() and "  " not in once and "\n\n" not in once


@settings(max_examples=300)
@given(any_text)
def test_the_short_path_gives_what_every_step_gives(raw):
    assert clean_text(raw) == n._clean_full(raw)


@given(invisible_texts)
def test_a_text_of_only_invisible_characters_is_never_accepted(raw):
    assert not has_visible_text(clean_text(raw))
    with pytest.raises(ValueError, match="no visible character"):
        clean_required_text(raw)


@given(invisible_texts, st.sampled_from(["信", "a", "5", "!", "€", "\U0001f600"]), invisible_texts)
def test_one_visible_character_among_invisible_ones_is_enough(before, visible, after):
    assert visible in clean_required_text(before + visible + after)


@settings(max_examples=200)
@given(any_text)
def test_region_names_are_cleaned_idempotently(raw):
    try:
        name = n.clean_region_name(raw, "city", required=False)
    except ValueError:
        return
    assert n.clean_region_name(name, "city", required=False) == name
    assert unicodedata.is_normalized("NFKC", name)


@settings(max_examples=300)
@given(any_text)
@example("Ａ")
@example("\u00a8")  # NFKC makes it a space and a combining diaeresis
def test_the_region_name_short_path_gives_what_every_step_gives(raw):
    try:
        full = n._clean_region_full(raw, "city")
    except ValueError:
        with pytest.raises(ValueError):
            n.clean_region_name(raw, "city", required=False)
        return
    if not n._SEPARATOR.search(full):
        assert n.clean_region_name(raw, "city", required=False) == full


def test_a_region_with_a_clean_name_validates_to_itself():
    region = Region(province="广东", city="深圳", district="南\u200b山")
    assert region.district == "南山区"
    assert Region.model_validate_json(region.model_dump_json()) == region


def test_every_control_format_and_surrogate_code_point_lies_in_the_planes_scanned_for_them():
    """The removal set is built from planes 0, 1 and 14 only (to keep the first call short): a newer
    Unicode that puts a format character elsewhere fails here, not silently."""
    outside = [hex(cp) for cp in range(sys.maxunicode + 1) if cp >> 16 not in n._PLANES_WITH_CONTROLS
               and unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs")]
    assert outside == []
