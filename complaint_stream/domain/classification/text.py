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
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

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
    """NFKC (full-width to half-width), lower-case, collapse whitespace."""
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
_LEFT, _RIGHT = 1, 2  # boundary checks of a term, as bits
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
    """The word boundaries a term needs: left when it starts with an ASCII
    letter/digit; right when it also ends with one, unless it is a prefix
    (stem) term."""
    return (_LEFT if term[0] in _WORD else 0) | (_RIGHT if not prefix and term[-1] in _WORD else 0)


class TermMatcher:
    """Finds rule terms in normalised text.

    At every position, the longest term that starts there counts, if a
    term starting with an ASCII letter/digit does not follow one and a
    whole-word term ending with one is not followed by one (a prefix term
    such as ``charg*`` needs no right boundary); a term is reported when it
    reaches past every term reported before it, so terms wholly inside a
    longer, earlier match are dropped.  The automaton reports every
    occurrence of every term (overlapping search); the rest is done here.

    ``terms``: normalised ``(term, is_prefix)`` pairs; a term listed as both
    a prefix and a whole word is a prefix term (the looser form).
    """

    __slots__ = ("_automaton", "_bounds", "_filler", "terms")

    def __init__(self, terms: Iterable[tuple[str, bool]]):
        prefixes: dict[str, bool] = {}
        for term, prefix in terms:
            if term:
                prefixes[term] = prefixes.get(term, False) or prefix
        #: The terms, in the automaton's order.
        self.terms: tuple[str, ...] = tuple(prefixes)
        self._bounds = tuple(_bounds(term, prefix) for term, prefix in prefixes.items())
        self._automaton = AhoCorasick(list(self.terms), matchkind=MATCHKIND_STANDARD)
        self._filler = _filler(self.terms)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` of the terms found in ``text``, in text order."""
        return list(zip(*self.find_spans(text)))

    def find_spans(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """What :meth:`find` returns, as three lists: terms, starts, ends."""
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
        for match in _overlapping(self._automaton, text, self._filler):
            index, start, end = match
            bound = bounds[index]
            if bound and ((bound & _LEFT and start and text[start - 1] in _WORD)
                          or (bound & _RIGHT and end < size and text[end] in _WORD)):
                continue
            while kept and kept[-1][1] >= start:
                kept.pop()
            if kept and kept[-1][2] >= end:
                continue
            kept.append(match)
        names = self.terms
        return [names[k[0]] for k in kept], [k[1] for k in kept], [k[2] for k in kept]


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
