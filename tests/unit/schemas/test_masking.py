"""Masking phone numbers (issue 9): every rendering the normaliser accepts is masked wherever it sits in a
text, and a mask never shows more than 3 leading and 4 trailing digits (fewer for a short number).

The normaliser (``normalise_msisdn``) is the oracle: whatever it accepts as a phone number must not come
out of ``redact_phone_numbers`` readable. The character-class tests ask it about every candidate
character, so a change to what it accepts shows up here.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from functools import cache

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from complaint_stream.schemas import DeadLetterKind, DecodeError, dead_letter, decode, decoder_for
from complaint_stream.schemas.normalise import ACCEPTED_PHONE_TYPES, normalise_msisdn
from complaint_stream.schemas.privacy import (
    DIGIT_CHARS,
    PLUS_CHARS,
    SEPARATOR_CHARS,
    mask_digits,
    mask_msisdn,
    redact_phone_numbers,
)
from complaint_stream.schemas.submission import ChannelSubmission

MOBILE = "13812345678"
IS_DIGIT = re.compile(f"[{DIGIT_CHARS}]")
IS_PLUS = re.compile(f"[{PLUS_CHARS}]")
IS_SEPARATOR = re.compile(f"[{SEPARATOR_CHARS}]")


def accepted(rendering: str) -> str | None:
    try:
        return normalise_msisdn(rendering)
    except ValueError:
        return None


def folded_digits(text: str) -> str:
    """The ASCII digits ``text`` shows, in order (NFKC, then every decimal digit of any script)."""
    return "".join(str(unicodedata.decimal(c)) for c in unicodedata.normalize("NFKC", text) if c.isdecimal())


def shown(number_digits: str) -> int:
    """How many digits a mask of a number of this length may show."""
    n = len(number_digits)
    return 7 if n >= 11 else n // 2


def masked_part(e164: str) -> str:
    """What a mask is made of: a Chinese number's national number, any other's E.164 digits."""
    return e164[3:] if e164.startswith("+86") else e164[1:]


# --- the characters: the masker reads as digits, plus signs and separators what the normaliser does --------

@cache
def digit_like() -> list[str]:
    """Every character NFKC or Unicode makes one or more decimal digits (planes 0 and 1 hold them all)."""
    return [chr(cp) for cp in range(0x20000)
            if any(c.isdecimal() for c in unicodedata.normalize("NFKC", chr(cp)))]


def test_every_character_the_normaliser_reads_as_digits_is_masked():
    missed = []
    for ch in digit_like():
        digits = folded_digits(ch)
        rendering = MOBILE[:5] + ch + MOBILE[5 + len(digits):]  # in the hidden middle: 138 12[ch]5 5678
        expected = MOBILE[:5] + digits + MOBILE[5 + len(digits):]
        if accepted(rendering) != "+86" + expected:
            continue
        if not IS_DIGIT.fullmatch(ch) or redact_phone_numbers(f"x{rendering}y") != f"x{mask_digits(expected)}y":
            missed.append(f"U+{ord(ch):04X}")
    assert len(digit_like()) > 700 and not missed


def test_every_character_the_normaliser_reads_as_a_plus_sign_is_masked():
    pluses = [chr(cp) for cp in range(0x20000) if unicodedata.normalize("NFKC", chr(cp)) == "+"]
    assert len(pluses) >= 5
    for ch in pluses:
        rendering = f"{ch}44 20 7946 0958"
        if accepted(rendering):
            assert IS_PLUS.fullmatch(ch) and redact_phone_numbers(f"x{rendering}y") == "x442****0958y", hex(ord(ch))


#: Unicode's default-ignorable code points that are unassigned (Cn): reserved, to be ignored when assigned.
_RESERVED_IGNORABLE = ((0x2065, 0x2065), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF))
#: Letters that show nothing (Hangul fillers): default-ignorable too.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _separator_candidates() -> list[str]:
    """Every code point the normaliser might ignore between digits: the code points of planes 0, 1 and 14
    (which hold every control, format character and surrogate) but letters, numbers and symbols NFKC keeps
    as they are, private-use code points and the unassigned ones outside the reserved default-ignorable
    ranges; and the noncharacters of every plane."""
    out = []
    for cp in [*range(0x20000), *range(0xE0000, 0xF0000)]:
        ch = chr(cp)
        category = unicodedata.category(ch)
        visible = category[0] in "LNS" and unicodedata.normalize("NFKC", ch) == ch and ch not in _BLANK_LETTERS
        noncharacter = 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE
        reserved = category in ("Cn", "Co") and not noncharacter and not any(
            lo <= cp <= hi for lo, hi in _RESERVED_IGNORABLE)
        if not visible and not reserved:
            out.append(ch)
    return out + [chr(plane + end) for plane in range(0x20000, 0x110000, 0x10000) if plane != 0xE0000
                  for end in (0xFFFE, 0xFFFF)]


@cache
def accepted_separators() -> list[str]:
    """The characters the normaliser accepts between the digits of a number (asked one by one)."""
    return [ch for ch in _separator_candidates() if accepted(f"138{ch}1234{ch}5678") == "+86" + MOBILE]


def test_every_character_the_normaliser_ignores_between_digits_separates_digits_for_the_masker():
    missed = [f"U+{ord(ch):04X} {unicodedata.name(ch, '')}" for ch in accepted_separators()
              if not IS_SEPARATOR.fullmatch(ch) or redact_phone_numbers(f"x 138{ch}1234{ch}5678 y") != "x 138****5678 y"]
    assert {" ", "-", ".", "\u3000", "\u200b"} <= set(accepted_separators())  # the oracle answers
    assert not missed, missed


# --- every accepted rendering, embedded in text ---------------------------------------------------------------

def _valid(e164: str) -> bool:
    number = phonenumbers.parse(e164)
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in ACCEPTED_PHONE_TYPES


cn_mobiles = st.from_regex(r"\A1[3-9][0-9]{9}\Z").map(lambda n: "+86" + n).filter(_valid)
cn_fixed = st.tuples(st.sampled_from(["10", "20", "21", "22", "23", "24", "25", "27", "28", "29", "311", "351", "431",
                                      "571", "755", "757", "769", "898", "991"]),
                     st.from_regex(r"\A[2-8][0-9]{6,7}\Z")).map(lambda t: "+86" + t[0] + t[1]).filter(_valid)
#: libphonenumber's example numbers of every region, of the types the normaliser accepts: from the shortest
#: (+6837012, 7 digits) to the longest.
foreign = st.sampled_from(sorted({
    e164 for region in phonenumbers.SUPPORTED_REGIONS if region != "CN" for kind in ACCEPTED_PHONE_TYPES
    if (example_number := phonenumbers.example_number_for_type(region, kind)) is not None
    and _valid(e164 := phonenumbers.format_number(example_number, phonenumbers.PhoneNumberFormat.E164))}))
numbers = st.one_of(cn_mobiles, cn_fixed, foreign)

#: Separators: the usual ones (also several together), or any character the normaliser ignores between digits.
COMMON_SEPARATORS = [" ", "  ", "-", " - ", ".", "(", ")", ") ", "\u00a0", "\u3000", "\uff0d", "\u2013", "\u200b"]
PLUSES = ["+", "\uff0b", "\u207a", "\u208a", "\ufe62", "\ufb29"]


@cache
def variants_of(digit: str) -> list[str]:
    """The single characters that stand for ``digit`` (ASCII, full-width, other scripts, superscript, circled …)."""
    return [ch for ch in digit_like() if folded_digits(ch) == digit]


@st.composite
def renderings(draw: st.DrawFn, e164: str) -> str:
    """One way to write the number: a prefix, a grouping, separators, a character for each digit."""
    national = e164[3:] if e164.startswith("+86") else None
    if national is not None:
        trunk = "" if national[0] == "1" else "0"
        forms = ["+86" + national, "0086" + national, "+86 (0)" + national, trunk + national, "86" + national,
                 "17951" + national, "86" + trunk + national, "+0086" + national]
    else:
        forms = ["+" + e164[1:], "00" + e164[1:], "1795100" + e164[1:], "17951 00" + e164[1:]]
    text = draw(st.sampled_from(forms))
    cuts = sorted(draw(st.sets(st.integers(1, len(text) - 1), max_size=5)))
    separators = st.one_of(st.sampled_from(COMMON_SEPARATORS), st.sampled_from(accepted_separators()))
    out = "".join(text[i:j] + (draw(separators) if j < len(text) else "")
                  for i, j in zip([0, *cuts], [*cuts, len(text)]))
    out = "".join(draw(st.sampled_from(variants_of(ch))) if ch.isdigit() else
                  draw(st.sampled_from(PLUSES)) if ch == "+" else ch for ch in out)
    return out


#: Text around a number: letters, CJK, punctuation, blanks and digits (kept apart from the number).
around = st.text(alphabet=st.sampled_from([*"ab号码客户电话是，。：:;,!?*#@/'\"= \t\n0123456789-+_"]), max_size=12)


def _embed(before: str, rendering: str, after: str) -> str:
    # A digit touching the number makes a longer number, which the normaliser would refuse too.
    if before and (IS_DIGIT.fullmatch(before[-1]) or IS_PLUS.fullmatch(before[-1])):
        before += "号"
    if after and IS_DIGIT.fullmatch(after[0]):
        after = "号" + after
    return before + rendering + after


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                   HealthCheck.too_slow])
@given(st.data(), numbers, around, around)
@example(data=None, number="+8613812345678", before="call ", after=" now")
def test_a_number_in_any_accepted_rendering_is_never_readable_in_a_text(data, number, before, after):
    if data is None:  # the formats of the issue
        for rendering in ("008613812345678", "138.1234.5678", "１３８１２３４５６７８"):
            assert redact_phone_numbers(before + rendering + after) == "call 138****5678 now"
        return
    rendering = data.draw(renderings(number), label="rendering")
    assume(accepted(rendering) == number)  # not every form is accepted (a fixed-line number after a bare 86)
    secret = masked_part(number)
    alone = redact_phone_numbers(rendering)
    assert mask_digits(secret) in alone
    assert folded_digits(alone.replace(mask_digits(secret), "")) == ""
    text = _embed(before, rendering, after)
    out = redact_phone_numbers(text)
    assert rendering not in out
    assert secret not in folded_digits(out)
    # the mask's own 3 + 4 digits may meet digits of the text around it ("4号" + "311****0000" folds to
    # 43110000): what must not be readable is a run of 8 of the number's digits outside its mask
    assert secret[-8:] not in folded_digits(out.replace(mask_digits(secret), "#")) or len(secret) < 8
    assert mask_msisdn(rendering) == mask_msisdn(number) == mask_digits(secret)


# --- what a mask shows -----------------------------------------------------------------------------------------

@given(st.from_regex(r"\A[0-9]{1,20}\Z"))
def test_a_mask_shows_at_most_3_leading_and_4_trailing_digits_and_at_most_half_of_a_short_number(digits):
    mask = mask_digits(digits)
    lead, _, trail = mask.partition("****")
    assert mask.count("****") == 1 and (lead + trail).isdigit() or mask == "****"
    assert len(lead) <= 3 and len(trail) <= 4
    assert len(lead) + len(trail) <= shown(digits)
    assert digits.startswith(lead) and digits.endswith(trail)


@pytest.mark.parametrize("raw,mask", [
    ("+8613812341234", "138****1234"),
    ("13812341234", "138****1234"),
    ("+861012345678", "10****678"),       # Beijing fixed line: 10 digits, 5 shown
    ("+6837012", "6****12"),              # Niue: 7 digits, 3 shown (before: ****)
    ("+29026212", "29****12"),            # Saint Helena, 8 digits: 4 shown (before: 7 of 8)
    ("+447911123456", "447****3456"),
    ("123", "****"),
])
def test_masks_of_chinese_short_and_international_numbers(raw, mask):
    assert mask_msisdn(raw) == mask


@pytest.mark.parametrize("text,expected", [
    ("call 008613812345678 now", "call 138****5678 now"),
    ("call 138.1234.5678 now", "call 138****5678 now"),
    ("call １３８１２３４５６７８ now", "call 138****5678 now"),
    ("call ＋８６　１３８－１２３４－５６７８ now", "call 138****5678 now"),
    ("call ①③⑧①②③④⑤⑥⑦⑧ now", "call 138****5678 now"),
    ("call ١٣٨١٢٣٤٥٦٧٨ now", "call 138****5678 now"),
    ("call 1\u200b3\u200b8\u200b1\u200b2\u200b3\u200b4\u200b5\u200b6\u200b7\u200b8 now", "call 138****5678 now"),
    ("call 17951 13812345678 now", "call 138****5678 now"),
    ("office 010-1234 5678, home (0755) 8888 8888", "office 10****678, home (755****8888"),
    ("called 13812345678 2 times", "called 138****5678 2 times"),
    ("+44 20 7946 0958 or 0044 20 7946 0958", "442****0958 or 442****0958"),
    # what is no phone number stays
    ("order 2026112800001 on 2026-11-28, v1.2.3 at 127.0.0.1:19092, offset 123456", None),
])
def test_numbers_in_text_are_masked_and_other_numbers_kept(text, expected):
    assert redact_phone_numbers(text) == (text if expected is None else expected)


def test_masking_is_idempotent_on_its_own_output():
    text = "call +86 138-1234-5678 or 0086 10 1234 5678, order 2026112800001"
    once = redact_phone_numbers(text)
    assert redact_phone_numbers(once) == once


# --- dead letters: reasons quote what was sent -----------------------------------------------------------------

def _submission(**overrides: object) -> bytes:
    data = {"channel": "app", "channel_ref": "APP-1", "text": "没信号", "customer": {"msisdn": "13812345678"},
            "region": {"province": "广东", "city": "深圳"}, "occurred_at": "2026-11-28T08:00:00+08:00", **overrides}
    envelope = {"specversion": "1.0", "id": "e1", "source": "/channels/app", "type": ChannelSubmission.event_type,
                "time": "2026-11-28T00:00:00Z", "subject": "s", "datacontenttype": "application/json", "data": data}
    return json.dumps(envelope, ensure_ascii=False).encode()


@pytest.mark.parametrize("overrides", [
    {"channel": "008613812345678"},                         # an unknown channel is quoted in the reason
    {"channel": "１３８１２３４５６７８"},
    {"13812345678": "an extra key is the field path"},
    {"customer": {"msisdn": "138.1234.5678", "age": 3}},
])
def test_a_dead_letter_reason_never_shows_a_phone_number(overrides):
    with pytest.raises(DecodeError) as info:
        decode(_submission(**overrides), [ChannelSubmission])
    letter = dead_letter(stage="intake", source_topic="t", value=b"", error=info.value,
                         failed_at=datetime(2026, 11, 28, tzinfo=UTC))
    reason = " ".join([str(info.value), letter.error.message, *(f"{f.loc} {f.msg}" for f in letter.error.fields)])
    assert info.value.kind is DeadLetterKind.SCHEMA_VIOLATION
    assert "38123456" not in folded_digits(reason) and "12345678" not in folded_digits(reason)


def test_an_event_type_is_masked_before_it_is_cut():
    decoder = decoder_for([ChannelSubmission])
    raw = _submission().replace(ChannelSubmission.event_type.encode(), b"x" * 72 + b"13812345678")
    with pytest.raises(DecodeError) as info:
        decoder(raw)
    # Cut first, the head would keep 13812345 (the hidden middle): masked first, it keeps 138****5.
    assert "138****5" in info.value.message and "1234" not in info.value.message
