"""Masking personal data in text meant for people: logs, error messages, dead letters.

One rule for both functions: a phone number shows at most its first 3 and last 4 digits around
``****`` (``138****5678``), and fewer when it is short (:func:`mask_digits`).

:func:`redact_phone_numbers` must find a number in every form the phone normaliser
(:func:`complaint_stream.schemas.normalise.normalise_msisdn`) accepts, because an error message or a
log line may quote the raw input: Chinese mobile and fixed-line numbers with or without ``+86``,
``0086``, ``86``, the trunk ``0`` or a carrier prefix (``17951``), international numbers after ``+``
or ``00``; any separators the normaliser ignores, between any digits; any characters that NFKC or
Unicode make digits (full-width ``１３８``, superscripts, circled ``①``, Arabic-Indic ``١٣٨`` …).

It works in two steps, so that it stays cheap on every log record:

1. One regex finds *runs*: a plus sign or a digit, then at least 3 more digits, with separators
   between any of them. It starts with a character class, so the regex engine skips plain text fast,
   and a run of fewer than 4 digit characters (at most 6 digits) never reaches Python.
2. A run is split into its groups of digits (folded to ASCII); every span of whole groups that reads
   as a phone number is masked, and overlapping spans merge. Whether digits read as a phone number is
   decided with libphonenumber's own data for China (the patterns of its valid number ranges, its
   trunk, carrier and international prefixes) — a regex match, not a parse — and for any other
   country by the E.164 length alone (a ``+`` or ``00`` says enough).

The character classes are what the normaliser treats as digits, a plus sign and separators (the
test ``tests/unit/schemas/test_masking.py`` recomputes them from ``unicodedata`` and the normaliser),
plus punctuation phone libraries accept.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from phonenumbers import PhoneMetadata

__all__ = ["DIGIT_CHARS", "PLUS_CHARS", "SEPARATOR_CHARS", "contains_phone_number", "mask_digits", "mask_msisdn",
           "redact_phone_numbers"]

#: Characters that are, or NFKC makes, decimal digits (``\d`` is every Unicode decimal digit, Nd):
#: superscripts, subscripts, circled, parenthesised and full-stop digits and numbers.
DIGIT_CHARS = (r"\d\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089\u2460-\u249b\u24ea"
               r"\u3251-\u325f\u32b1-\u32bf\U0001f100")
#: Characters that are, or NFKC makes, a plus sign.
PLUS_CHARS = "+\u207a\u208a\ufb29\ufe62\uff0b"
_NONCHARACTER_ENDS = "".join(f"\\U{plane + 0xfffe:08x}-\\U{plane + 0xffff:08x}"
                             for plane in range(0x10000, 0x110000, 0x10000))
#: Separators: whitespace; ``- ( ) .``, the dashes and what NFKC makes any of them; the characters the
#: normaliser removes first (controls, format characters, default-ignorables, surrogates,
#: noncharacters); and the other punctuation phone libraries strip (``/ [ ] ~`` …).
SEPARATOR_CHARS = (
    r"\s\-().\[\]/~\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    r"\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u2015\u2024-\u2026\u202a-\u202e\u2053\u2060-\u206f"
    r"\u207b\u207d\u207e\u208b\u208d\u208e\u2212\u223c\u30fc\u3164\ud800-\udfff\ufdd0-\ufdef\ufe00-\ufe0f"
    r"\ufe19\ufe30-\ufe32\ufe35\ufe36\ufe52\ufe58-\ufe5a\ufe63\ufeff\uff08\uff09\uff0d-\uff0f\uff3b\uff3d"
    r"\uff5e\uffa0\ufff0-\ufffb\ufffe\uffff\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0000-\U000e0fff" + _NONCHARACTER_ENDS
)

# Digits tried before separators: a digit is found at once, not after the separators' long list.
_RUN = re.compile(f"[{PLUS_CHARS}{DIGIT_CHARS}](?:[{DIGIT_CHARS}]|[{SEPARATOR_CHARS}]+[{DIGIT_CHARS}]){{3,}}")
_PLUS_SET = frozenset(PLUS_CHARS)
_FIRST = re.compile(f"[{PLUS_CHARS}{DIGIT_CHARS}]")
_ASCII_DIGITS = re.compile(r"[0-9]+")
#: Full-width digits and separators (web forms, Chinese input methods) to ASCII, one for one.
_FULL_WIDTH = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "\u3000": " ", "\u00a0": " ",
                             "\uff0b": "+", "\uff0d": "-", "\uff08": "(", "\uff09": ")", "\uff0e": "."})
_MIN_DIGITS = 7    # the shortest number worth masking: E.164 numbers have 7 to 15 digits
_MAX_DIGITS = 22   # a carrier's international prefix (1795100) and the longest E.164 number
_MOBILE_SECOND = frozenset("3456789")


def _china() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Numbers dialled in China, from libphonenumber's data: any run of the prefixes it strips when it
    parses (the country code 86, the trunk 0, carrier codes such as 17951 — so also 00 and 1795100, the
    international prefixes), then a valid national number of any type, captured as ``nsn``; and the
    international prefixes, which may stand before any other country's number."""
    meta = PhoneMetadata.metadata_for_region("CN")
    assert meta is not None and meta.national_prefix_for_parsing and meta.international_prefix
    kinds = (meta.fixed_line, meta.mobile, meta.toll_free, meta.premium_rate, meta.shared_cost,
             meta.personal_number, meta.voip, meta.pager, meta.uan, meta.voicemail)
    valid = "|".join(f"(?:{d.national_number_pattern})" for d in kinds
                     if d is not None and d.national_number_pattern)
    # 86, 0 and the carrier codes start with different digits, so a prefix splits into them one way only:
    # the regex backtracks over where the national number starts, not over how the prefix splits.
    dialled = f"(?:{meta.country_code}|{meta.national_prefix_for_parsing})*(?P<nsn>{valid})"
    return re.compile(dialled), re.compile(meta.international_prefix)


_CN_DIALLED, _INTERNATIONAL_PREFIX = _china()


@lru_cache(maxsize=1024)  # a run of many short groups asks about the same digits again and again
def _number(d: str, plus: bool) -> str | None:
    """When the ASCII digits ``d`` (after a plus sign or not) are a phone number the normaliser could
    accept, the digits to show masked: a Chinese number's national significant number, any other's
    E.164 digits. ``None`` otherwise."""
    n = len(d)
    if n < _MIN_DIGITS or n > _MAX_DIGITS:
        return None
    if n == 11 and d[0] == "1" and d[1] in _MOBILE_SECOND:  # a Chinese mobile number, the usual case
        return d
    e164 = plus and d[0] != "0" and n <= 15  # E.164 never starts with 0: "+0086…" reads as "0086…"
    if e164 and not d.startswith("86"):
        return d
    china = _CN_DIALLED.fullmatch(d)
    if china is not None:
        return china["nsn"]
    if e164:  # +86 and no valid national number: masked all the same
        return d
    idd = _INTERNATIONAL_PREFIX.match(d)
    if idd is not None and _MIN_DIGITS <= n - idd.end() <= 15 and d[idd.end()] != "0":
        return d[idd.end():]
    return None


def mask_digits(digits: str) -> str:
    """Mask a number given as its digits: 3 leading and 4 trailing digits shown from 11 digits on;
    shorter numbers show at most half their digits (8 digits: ``12****78``); under 7, none."""
    n = len(digits)
    if n >= 11:
        lead, trail = 3, 4
    elif n >= _MIN_DIGITS:
        shown = n // 2
        trail = (shown + 1) // 2
        lead = shown - trail
    else:
        return "****"
    return f"{digits[:lead]}****{digits[n - trail:]}"


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> tuple[str, bool]:
    """The ASCII digits one character stands for, and whether it stands for nothing else."""
    if ch.isdecimal():
        return str(unicodedata.decimal(ch)), True
    folded = unicodedata.normalize("NFKC", ch)
    digits = "".join(str(unicodedata.decimal(c)) for c in folded if c.isdecimal())
    return digits, digits != "" and len(digits) == len(folded)


def _groups(run: str) -> list[tuple[int, int, str]]:
    """(start, end, ASCII digits) of each group of digits in a run; separators lie between them."""
    if run.isascii():
        return [(g.start(), g.end(), g.group()) for g in _ASCII_DIGITS.finditer(run)]
    groups: list[tuple[int, int, str]] = []
    start, digits = -1, ""
    for i, ch in enumerate(run):
        d, pure = _fold_char(ch)
        if d and pure:
            if start < 0:
                start = i
            digits += d
            continue
        if start >= 0:
            groups.append((start, i, digits))
            start, digits = -1, ""
        if d:  # ⑴ or ⒈: digits and a separator in one character
            groups.append((i, i + 1, d))
    if start >= 0:
        groups.append((start, len(run), digits))
    return groups


def _redact_run(match: re.Match[str]) -> str:
    run = match.group()
    if len(run) < _MIN_DIGITS and run.isascii():  # too few digits for a number (a count, a year, an offset)
        return run
    folded = run if run.isascii() else run.translate(_FULL_WIDTH)  # one for one: positions still hold
    if folded.isdigit() and folded.isascii():  # the common case: one unbroken number
        number = _number(folded, False)
        return run if number is None else mask_digits(number)
    plus = run[0] in _PLUS_SET
    groups = None if folded.isascii() else _groups(folded)
    whole = _number("".join(_ASCII_DIGITS.findall(folded)) if groups is None else "".join(g[2] for g in groups), plus)
    if whole is not None:  # the run is one number (every span below would merge into it)
        return mask_digits(whole)
    if groups is None:
        groups = _groups(folded)
    spans: list[list[int]] = []  # [first group, last group] of each number found
    for i in range(len(groups)):
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j][2]
            if len(digits) > _MAX_DIGITS:
                break
            if _number(digits, plus and i == 0) is not None:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = max(spans[-1][1], j)
                else:
                    spans.append([i, j])
    if not spans:
        return run
    out, pos = [], 0
    for i, j in spans:
        start = 0 if (i == 0 and plus) else groups[i][0]
        digits = "".join(g[2] for g in groups[i:j + 1])
        out.append(run[pos:start])
        out.append(mask_digits(_number(digits, plus and i == 0) or digits))
        pos = groups[j][1]
    out.append(run[pos:])
    return "".join(out)


def mask_msisdn(msisdn: str) -> str:
    """Mask one phone number, in E.164 or any form the normaliser accepts: ``138****1234`` for a Chinese
    mobile number (its national number), at most 3 leading and 4 trailing digits of any number, fewer
    for a short one (:func:`mask_digits`); ``****`` for what has fewer than 7 digits."""
    text = msisdn or ""
    first = _FIRST.search(text)  # a plus sign, or the first digit (after bidi marks, blanks …)
    digits = "".join(g[2] for g in _groups(text.translate(_FULL_WIDTH)))
    number = _number(digits, first is not None and first.group() in _PLUS_SET)
    return mask_digits(number if number is not None else digits)


def redact_phone_numbers(text: str) -> str:
    """Mask every phone number inside free text (error messages, dead-letter reasons, log records)."""
    return _RUN.sub(_redact_run, text)


def contains_phone_number(text: str) -> bool:
    """Whether :func:`redact_phone_numbers` would mask anything in ``text``."""
    return redact_phone_numbers(text) != text
