"""Text normalisation, the term matcher and the regex gate.

Matching is the hot path of classification: every literal term of the rule
set (category terms, cues, risk terms, stop terms) goes into one
Aho-Corasick automaton (``ahocorasick-rs``), and one pass over a text finds
every occurrence of every term.  :class:`TermMatcher` keeps, at each
position, the longest term that starts there and sits on its ASCII word
boundaries; terms wholly inside a longer, earlier match are dropped, so
"携号转网" does not also count as "转网".  The rule regexes (patterns,
background clauses) are searched only in texts that contain one of the
literals declared for them (:class:`LiteralGate`).

Two rules keep short terms from matching inside something else: a term
made of digits (a hotline such as 12315) counts only as a whole number
that is neither an amount nor an identifier (:class:`NumberContext`), and
a term may not cut through a declared word (``words`` in the rules file:
管局 does not count in 不管局面, whose first word is 不管).  Text written in
traditional Chinese is converted to simplified before anything is matched
(:func:`to_simplified`, OpenCC).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from ahocorasick_rs import MATCHKIND_STANDARD, AhoCorasick

# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------

def _simple_compatibility_map() -> dict[str, str]:
    """Characters whose NFKC form is their plain compatibility decomposition.

    Full-width punctuation ("，？：！") makes most Chinese complaints
    non-NFKC, and ``unicodedata.normalize`` then costs several times more
    than everything else in :func:`normalise`.  Replacing such a character by
    its NFKD decomposition first never changes the NFKC result (NFKC is the
    composition of the NFKD of the whole text, and NFKD is computed character
    by character before canonical reordering), and usually leaves a text that
    is already NFKC, so the slow call is skipped.  Only the blocks that occur
    in complaint text are scanned, to keep the import cheap.
    """
    blocks = ((0x00A0, 0x0100),  # Latin-1 punctuation: no-break space, ...
              (0x2000, 0x2070),  # general punctuation: ellipsis, odd spaces
              (0x2100, 0x2150),  # letterlike symbols
              (0x2460, 0x2500),  # circled and parenthesised numbers
              (0x3000, 0x3040),  # CJK symbols: ideographic space
              (0x3200, 0x3400),  # enclosed CJK, CJK compatibility (units)
              (0xF900, 0xFB00),  # CJK compatibility ideographs
              (0xFE30, 0xFE70),  # CJK compatibility and small form variants
              (0xFF00, 0xFFF0))  # half-width and full-width forms
    table = {}
    for lo, hi in blocks:
        for cp in range(lo, hi):
            ch = chr(cp)
            decomposed = unicodedata.normalize("NFKD", ch)
            if decomposed != ch and decomposed == unicodedata.normalize("NFKC", ch):
                table[ch] = decomposed
    return table


_SIMPLE_NFKC = _simple_compatibility_map()
# The full-width punctuation of nearly every Chinese complaint: replaced
# with plain ``str.replace`` first, which is cheaper than any scan.
_USUAL_WIDE = tuple((ch, _SIMPLE_NFKC[ch]) for ch in "，？：！（）；～\u3000")
# For the rest, one C-level scan lists the replaceable characters a text
# contains; every code point is in the BMP, so ``re`` makes the class a bitmap.
_SIMPLE_NFKC_CHARS = re.compile("[" + "".join(re.escape(ch) for ch in sorted(_SIMPLE_NFKC)) + "]")
_is_normalized = unicodedata.is_normalized
_normalize = unicodedata.normalize


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, collapse whitespace, and
    traditional Chinese to simplified (:func:`to_simplified`)."""
    return to_simplified(normalise_form(text))


def normalise_form(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, collapse whitespace: :func:`normalise`
    without the script conversion."""
    if not _is_normalized("NFKC", text):
        for wide, narrow in _USUAL_WIDE:
            if wide in text:
                text = text.replace(wide, narrow)
        if not _is_normalized("NFKC", text):
            table = _SIMPLE_NFKC
            for ch in set(_SIMPLE_NFKC_CHARS.findall(text)):
                text = text.replace(ch, table[ch])
            if not _is_normalized("NFKC", text):
                text = _normalize("NFKC", text)
    return " ".join(text.lower().split())


# --------------------------------------------------------------------------
# Traditional Chinese
# --------------------------------------------------------------------------

#: The OpenCC conversion: traditional Chinese (Taiwan standard; Hong Kong text
#: differs in a handful of characters) to simplified with mainland phrases, so
#: that 訊號, 網路, 寬頻, 簡訊 become the 信号, 网络, 宽带, 短信 the rules are
#: written in, not just their character-by-character forms 讯号, 网路, 宽频, 简讯.
SIMPLIFY_CONFIG = "tw2sp"
# The Han blocks whose characters are probed once for a traditional-only form:
# extension A, the unified ideographs, extension B.  (Compatibility
# ideographs are gone by then: NFKC maps them to unified ones.)
_HAN_BLOCKS = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0x20000, 0x2A6E0))


@cache
def _simplifier() -> tuple[Callable[[str, int], re.Match[str] | None], frozenset[str], Callable[[str], str]]:
    """(gate, astral, convert): ``gate(text, pos)`` finds a character that may
    be one only traditional writing uses, ``astral`` holds those outside the
    BMP, ``convert`` is OpenCC's :data:`SIMPLIFY_CONFIG` conversion.

    The traditional-only characters are those OpenCC's character-level
    ``t2s`` conversion changes, found by converting every Han character once
    (a few tens of milliseconds, on first use).  Only a text that contains
    one is converted: simplified text is never touched (the mainland-phrase
    step would also rewrite words both scripts spell alike, 影片 -> 视频),
    and costs one regex scan instead of a conversion.  The gate's class holds
    the BMP characters and the whole astral range (emoji too), checked
    against ``astral`` on a hit: with astral members listed one by one, ``re``
    cannot use its bitmap and the scan is a hundred times slower.
    """
    import opencc

    chars = [chr(cp) for lo, hi in _HAN_BLOCKS for cp in range(lo, hi)]
    # Separated by spaces, no two characters form a phrase: this is the
    # character-by-character conversion.
    converted = opencc.OpenCC("t2s").convert(" ".join(chars)).split(" ")
    if len(converted) != len(chars):  # not one character for one: ask per character
        probe = opencc.OpenCC("t2s").convert
        converted = [probe(ch) for ch in chars]
    traditional = [ch for ch, simple in zip(chars, converted) if ch != simple]
    bmp = [ch for ch in traditional if ch < "\U00010000"]
    gate = re.compile("[" + _char_ranges(bmp) + "\U00010000-\U0010ffff]")
    return gate.search, frozenset(traditional) - frozenset(bmp), opencc.OpenCC(SIMPLIFY_CONFIG).convert


def _char_ranges(chars: Iterable[str]) -> str:
    """A regex character-class body for ``chars`` (sorted code points as ranges)."""
    points = sorted(set(map(ord, chars)))
    parts = []
    i = 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        lo, hi = chr(points[i]), chr(points[j])
        parts.append(re.escape(lo) if i == j else f"{re.escape(lo)}-{re.escape(hi)}")
        i = j + 1
    return "".join(parts)


def to_simplified(text: str) -> str:
    """``text`` in simplified Chinese: converted (OpenCC :data:`SIMPLIFY_CONFIG`)
    when it contains a character only traditional writing uses, else the same
    string object.  Classification sees the converted text; the complaint
    record keeps what the customer wrote."""
    if text.isascii():  # a flag CPython keeps: no scan
        return text
    gate, astral, convert = _simplifier()
    found = gate(text, 0)
    while found is not None:
        ch = found.group()
        if ch < "\U00010000" or ch in astral:
            return convert(text)
        found = gate(text, found.end())
    return text


def normalise_term(term: str) -> tuple[str, bool]:
    """Normalise a rule term; a trailing ``*`` marks a prefix (stem) term."""
    prefix = term.endswith("*")
    if prefix:
        term = term[:-1]
    return normalise(term), prefix


# --------------------------------------------------------------------------
# The term matcher
# --------------------------------------------------------------------------

# A term that starts or ends with an ASCII letter/digit must sit on an ASCII
# word boundary; ``\b`` would not do, because CJK characters are word
# characters too and mixed text ("bill上多了") has no boundary there.
_WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_DIGITS = frozenset("0123456789")
_LEFT, _RIGHT, _NUMBER = 1, 2, 4  # checks of a term, as bits
_SURROGATE = re.compile("[\ud800-\udfff]")


def _filler(strings: Iterable[str]) -> str:
    """A character none of ``strings`` contains."""
    used = set("".join(strings))
    return next(ch for ch in map(chr, range(0xE000, 0x110000)) if ch not in used)


def _overlapping(automaton: AhoCorasick, text: str, filler: str) -> list[tuple[int, int, int]]:
    """Every occurrence of every string of ``automaton`` in ``text``:
    (string index, start, end), ordered by end.  The automaton takes valid
    Unicode only: a lone surrogate in the text is replaced by ``filler``, a
    character no string contains (same offsets)."""
    try:
        return automaton.find_matches_as_indexes(text, overlapping=True)
    except UnicodeEncodeError:
        return automaton.find_matches_as_indexes(_SURROGATE.sub(filler, text), overlapping=True)


def _bounds(term: str, prefix: bool) -> int:
    """The checks a term needs: the left word boundary when it starts with an
    ASCII letter/digit; the right one when it also ends with one, unless it
    is a prefix (stem) term; the number context when it is all digits."""
    return ((_LEFT if term[0] in _WORD else 0) | (_RIGHT if not prefix and term[-1] in _WORD else 0)
            | (_NUMBER if _DIGITS.issuperset(term) else 0))


def _alternation(strings: Iterable[str]) -> str:
    """A regex alternation of literal ``strings``, longest first; one that
    starts (ends) with an ASCII letter must not continue an ASCII word before
    (after) it, so the unit "m" is not the m of "miit"."""
    parts = []
    for string in sorted(set(strings), key=lambda x: (-len(x), x)):
        left = "(?<![a-z])" if string[0].isascii() and string[0].isalpha() else ""
        right = "(?![a-z])" if string[-1].isascii() and string[-1].isalpha() else ""
        parts.append(left + re.escape(string) + right)
    return "|".join(parts) or "(?!)"


@dataclass(frozen=True)
class NumberContext:
    """When a term made of digits (a hotline: 12300, 12315, 12345, 10086)
    does not mean that number.

    The term's digits must be a whole number, which the ASCII word boundaries
    already demand (no digit or letter on either side), and not part of a
    longer one: not next to one of ``joiners`` that continues it with more
    digits ("12315.5", "3.12315").  And that number must not be an amount or
    an identifier: not followed by one of ``units`` ("12345元", "12300 yuan",
    "12315%"), not preceded by one of ``labels`` ("订单号12315", "扣了12345",
    "order no. 12300"), with any of ``separators`` between label and number.
    All of it is data (``numbers`` in the rules file).  A prefix term of
    digits (``106*``) is a number that starts with them; its number ends
    where the digits do.
    """

    joiners: str = ""
    units: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    separators: str = " "

    def compile(self) -> Callable[[str, int, int], bool]:
        """``counts(text, start, end)``: whether the digits at ``text[start:end]``
        (on their word boundaries) are a mention of that number."""
        joiners = frozenset(self.joiners)
        digits = _DIGITS
        unit = re.compile(r"\s*(?:" + _alternation(self.units) + ")").match
        separators = frozenset(self.separators)
        tail = f"[{re.escape(self.separators)}]*" if self.separators else ""
        label = re.compile("(?:" + _alternation(self.labels) + ")" + tail + "$").search
        longest = max(map(len, self.labels), default=0)

        def counts(text: str, start: int, end: int) -> bool:
            size = len(text)
            while end < size and text[end] in digits:  # a prefix term's number goes on
                end += 1
            if end + 1 < size and text[end] in joiners and text[end + 1] in digits:
                return False
            if start >= 2 and text[start - 1] in joiners and text[start - 2] in digits:
                return False
            if unit(text, end) is not None:
                return False
            # A label ends at or after the last character before the
            # separators, so it starts at most ``longest`` before that (a
            # look-behind in the pattern still sees the text before ``pos``).
            first = start
            while first and text[first - 1] in separators:
                first -= 1
            return label(text, max(0, first - longest), start) is None

        return counts


def _always(text: str, start: int, end: int) -> bool:
    return True


_UNIT, _UNIT_ONLY = 8, 16  # a declared word; a declared word that is no term


class TermMatcher:
    """Finds rule terms in normalised text.

    At every position, the longest term that starts there counts, if a
    term starting with an ASCII letter/digit does not follow one and a
    whole-word term ending with one is not followed by one (a prefix term
    such as ``charg*`` needs no right boundary); a term is reported when it
    reaches past every term reported before it, so terms wholly inside a
    longer, earlier match are dropped.  The automaton reports every
    occurrence of every term (overlapping search); the rest is done here.

    Two more conditions make an occurrence a candidate at all: a term of
    digits must be a mention of that number (``numbers``, see
    :class:`NumberContext`), and a term must not cut through an occurrence
    of one of ``words``: it may contain the word or equal it, but not start
    or end strictly inside it (with the word 不管, 管局 does not occur in
    不管局面; with 协议, 消协 does not occur in 取消协议).  Words are common
    words whose characters a term could otherwise borrow; they mean nothing
    themselves (a word may also be a term).

    ``terms``: normalised ``(term, is_prefix)`` pairs; a term listed as both
    a prefix and a whole word is a prefix term (the looser form).
    """

    __slots__ = ("_automaton", "_bounds", "_filler", "_names", "_number", "numbers", "terms", "words")

    def __init__(self, terms: Iterable[tuple[str, bool]], words: Iterable[str] = (),
                 numbers: NumberContext | None = None):
        prefixes: dict[str, bool] = {}
        for term, prefix in terms:
            if term:
                prefixes[term] = prefixes.get(term, False) or prefix
        #: The terms, in the automaton's order.
        self.terms: tuple[str, ...] = tuple(prefixes)
        #: The words no term may cut through.
        self.words: tuple[str, ...] = tuple(dict.fromkeys(w for w in words if w))
        # Words share the terms' automaton (one pass over the text): a word
        # that is no term comes after the terms, flagged so it is never
        # reported.  A word's own boundaries are those of a whole word.
        unit = frozenset(self.words)
        self._names: tuple[str, ...] = self.terms + tuple(w for w in self.words if w not in prefixes)
        self._bounds = tuple(
            (_bounds(name, prefixes[name]) if name in prefixes else _bounds(name, False) | _UNIT_ONLY)
            | (_UNIT if name in unit else 0)
            for name in self._names)
        self._automaton = AhoCorasick(list(self._names), matchkind=MATCHKIND_STANDARD)
        self._filler = _filler(self._names)
        #: When a term of digits counts (``None``: whenever it is on its word boundaries).
        self.numbers = numbers
        self._number = numbers.compile() if numbers is not None else _always

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` of the terms found in ``text``, in text order."""
        return list(zip(*self.find_spans(text)))

    def find_spans(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """What :meth:`find` returns, as three lists: terms, starts, ends."""
        matches = _overlapping(self._automaton, text, self._filler)
        words: list[tuple[int, int]] = []
        kept = self._select(text, matches, words)
        # The cut rule only removes occurrences, and removing one the
        # selection did not keep changes nothing it keeps (its start still
        # has a longest term reaching no further).  So the selection is
        # redone, without the occurrences that cut through a word, only when
        # one of the terms it kept crosses a word.
        if words and any(w_start < k[1] < w_end or w_start < k[2] < w_end
                         for k in kept for w_start, w_end in words):
            whole = [m for m in matches
                     if not any(w_start < m[1] < w_end or w_start < m[2] < w_end for w_start, w_end in words)]
            kept = self._select(text, whole, None)
        names = self._names
        return [names[k[0]] for k in kept], [k[1] for k in kept], [k[2] for k in kept]

    def _select(self, text: str, matches: list[tuple[int, int, int]],
                words: list[tuple[int, int]] | None) -> list[tuple[int, int, int]]:
        """The occurrences that count, from the automaton's ``matches``; adds
        the occurrences of words to ``words`` (when given)."""
        # The automaton reports occurrences by end position.  ``kept`` holds
        # the occurrences on their word boundaries that no other one contains
        # (starts and ends both ascending): a new occurrence ends at or after
        # all of them, so it contains those starting at or after it, and is
        # contained in one only if that one ends where it does and starts
        # before.  At each start, the longest term then survives, and a term
        # survives if it reaches past every term starting before it.
        kept: list[tuple[int, int, int]] = []
        bounds = self._bounds
        size = len(text)
        for match in matches:
            index, start, end = match
            bound = bounds[index]
            if bound:
                if ((bound & _LEFT and start and text[start - 1] in _WORD)
                        or (bound & _RIGHT and end < size and text[end] in _WORD)):
                    continue
                if bound & _UNIT_ONLY:
                    if words is not None:
                        words.append((start, end))
                    continue
                if bound & _NUMBER and not self._number(text, start, end):
                    continue
                if bound & _UNIT and words is not None:
                    words.append((start, end))
            while kept and kept[-1][1] >= start:
                kept.pop()
            if kept and kept[-1][2] >= end:
                continue
            kept.append(match)
        return kept


# --------------------------------------------------------------------------
# The regex gate
# --------------------------------------------------------------------------

class LiteralGate:
    """Tells which of several regexes can possibly match a text.

    Each regex comes with the literals one of which every match of it
    contains (``needs`` in the rules file; none: it may match any text).
    One overlapping Aho-Corasick pass finds which of all those literals the
    text contains; bit ``i`` of an integer stands for "regex ``i`` may
    match", so the candidates are the OR of the bits of the literals found.
    """

    __slots__ = ("_always", "_automaton", "_bits", "_filler")

    def __init__(self, needs: Sequence[Sequence[str]]):
        self._always = 0  # regexes with no declared literal
        bits: dict[str, int] = {}
        for index, literals in enumerate(needs):
            if not literals:
                self._always |= 1 << index
            for literal in literals:
                if not literal:
                    raise ValueError("a needed literal cannot be empty")
                bits[literal] = bits.get(literal, 0) | 1 << index
        self._bits = tuple(bits.values())
        self._automaton = AhoCorasick(list(bits), matchkind=MATCHKIND_STANDARD)
        self._filler = _filler(bits)

    def candidates(self, text: str) -> list[int]:
        """Indices (ascending) of the regexes that may match ``text``."""
        mask = self._always
        bits = self._bits
        for index, _, _ in _overlapping(self._automaton, text, self._filler):
            mask |= bits[index]
        found = []
        while mask:
            low = mask & -mask
            found.append(low.bit_length() - 1)
            mask ^= low
        return found
