"""Text normalisation, the single-pass term matcher and the regex gate.

Matching is the hot path of classification, so every literal term of the
rule set (category terms, cues, risk terms, stop terms) is compiled into one
trie-shaped regular expression.  The matcher reports the longest term
starting at every position; terms wholly inside a longer match are dropped,
so "携号转网" does not also count as "转网".  The rule regexes (patterns,
background clauses) are searched only in texts that contain the literals
they need (:class:`RegexGate`).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from functools import reduce
from itertools import accumulate
from operator import or_
from typing import Iterable, Sequence

_ASCII_WORD = re.compile(r"[a-z0-9]")

try:  # the compiled scanner (_scan.c, built by setup.py when a C compiler is there)
    from . import _scan as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

#: Whether the compiled term scanner is available (see :class:`TermMatcher`).
NATIVE_SCANNER = _native is not None

# A term that starts or ends with an ASCII letter/digit must sit on an ASCII
# word boundary; ``\b`` cannot be used because CJK characters are word
# characters too and mixed text ("bill上多了") has no boundary there.
_LEFT = r"(?<![a-z0-9])"
_RIGHT = r"(?![a-z0-9])"
_END = ""  # trie key marking the end of a term


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

def _build_trie(terms: Iterable[tuple[str, bool]]) -> dict:
    root: dict = {}
    for term, prefix in terms:
        node = root
        for ch in term:
            node = node.setdefault(ch, {})
        # A prefix term needs no right boundary; if the same string is also a
        # whole-word term the looser (prefix) form wins.
        bound = "" if prefix or not _ASCII_WORD.match(term[-1]) else _RIGHT
        if _END in node and node[_END] == "":
            continue
        node[_END] = bound
    return root


def _node_regex(node: dict) -> str:
    alternatives = []
    for ch in sorted(k for k in node if k != _END):
        alternatives.append(re.escape(ch) + _node_regex(node[ch]))
    if _END in node:
        # Longer continuations are tried first (greedy, longest match).
        alternatives.append(node[_END])
    if len(alternatives) == 1:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")"


def _class(chars: list[str]) -> str:
    return "[" + "".join(re.escape(ch) for ch in chars) + "]"


def _guarded(root: dict, chars: list[str], fan: int, leaf: int) -> str:
    """Alternation over ``chars`` (sorted) split into guarded groups, recursively.

    The regex engine tries the branches of a group one by one; a guard in
    front of each sub-group rejects a position after a few tests instead of
    one test per distinct first character.  Callers put an exact class of
    all of ``chars`` in front, so a guard can be the range from a group's
    first to its last character: among ``chars`` it admits exactly that
    group (the groups are consecutive slices), and a range is two
    comparisons and a few bytes, where a class of scattered CJK characters
    is a bitmap of kilobytes.
    """
    if len(chars) <= leaf:
        return "|".join(re.escape(ch) + _node_regex(root[ch]) for ch in chars)
    size = -(-len(chars) // fan)
    parts = []
    for i in range(0, len(chars), size):
        sub = chars[i:i + size]
        span = re.escape(sub[0]) if len(sub) == 1 else f"{re.escape(sub[0])}-{re.escape(sub[-1])}"
        parts.append(f"(?=[{span}])(?:{_guarded(root, sub, fan, leaf)})")
    return "|".join(parts)


def _branches(root: dict, fan: int, leaf: int) -> tuple[str, str, str]:
    """Regexes (consuming form, "" when empty) for the longest term at the
    current position among: terms starting with an ASCII letter/digit;
    all other terms; those of the others that start with an ASCII character
    (punctuation: the only ones an ASCII text can contain)."""
    firsts = sorted(root)
    ascii_first = [ch for ch in firsts if _ASCII_WORD.match(ch)]
    other_first = [ch for ch in firsts if not _ASCII_WORD.match(ch)]
    ascii_other = [ch for ch in other_first if ch.isascii()]

    def alternation(chars: list[str]) -> str:
        return f"(?={_class(chars)})(?:{_guarded(root, chars, fan, leaf)})" if chars else ""

    words = ""
    if ascii_first:
        # Checked once for all ASCII terms, the class first: it rejects a CJK
        # position at once, the word boundary then rejects mid-word ones.
        words = f"(?={_class(ascii_first)}){_LEFT}(?:{_guarded(root, ascii_first, fan, leaf)})"
    return words, alternation(other_first), alternation(ascii_other)


def _trie_regex(root: dict, fan: int, leaf: int) -> str:
    """The longest term starting at the current position (consuming form)."""
    if not root:
        return r"(?!x)x"
    return "|".join(b for b in _branches(root, fan, leaf)[:2] if b)


def compile_terms(terms: Iterable[tuple[str, bool]], fan: int = 8, leaf: int = 8) -> re.Pattern[str]:
    """Compile normalised ``(term, is_prefix)`` pairs into one overlapping matcher.

    The whole pattern sits in a lookahead, so ``finditer`` visits every
    position and reports the longest term starting there.  This is the
    reference form used with :func:`find_terms`; classification uses the
    faster :class:`TermMatcher`, which finds exactly the same terms.
    """
    root = _build_trie(t for t in terms if t[0])
    if not root:
        return re.compile(r"(?!x)x")
    return re.compile("(?=(" + _trie_regex(root, fan, leaf) + "))")


def find_terms(pattern: re.Pattern[str], text: str) -> list[tuple[str, int, int]]:
    """``(term, start, end)`` of all longest matches, minus those contained in
    an earlier, longer match ("携号转网" does not also count as "转网")."""
    found = []
    reach = 0
    for m in pattern.finditer(text):
        start, end = m.span(1)
        if end <= reach:
            continue
        reach = end
        found.append((m.group(1), start, end))
    return found


class TermMatcher:
    """Finds the same terms as :func:`find_terms`, several times faster.

    With the compiled scanner (``_scan.c``, when it was built and ``native``
    is true) one trie walk per position in C does it.  Otherwise, the
    portable fallback described here:

    The overlapping (lookahead) form runs the whole trie at every position
    and returns a match object for every term start, even for the many
    starts inside a longer term that are then dropped.  Here the trie
    pattern consumes what it matches, so the scan resumes after each term
    and skips the positions inside it, and ``split`` returns the terms and
    the gaps between them as plain strings, without match objects.  A
    skipped position matters only when a term starting there reaches beyond
    the current one ("转网" followed by "...网络" where "网络" is a term, say);
    that is possible only at offsets where a suffix of the term is a proper
    prefix of another term and the next character of the text continues
    that prefix.  Those (term, next character) pairs are tabulated when the
    rules are loaded; for the few texts that have one, an anchored ``match``
    at each such offset finds the longer term, if any.

    ``markers`` are single characters to report as well, wherever no term
    covers them, so that the terms found tell which of these characters the
    text contains (see :class:`RegexGate`).  A marker is shorter than any
    term it could compete with, so it never changes which terms are found;
    :meth:`find` leaves markers out, :meth:`find_spans` keeps them.
    """

    __slots__ = ("pattern", "markers", "strings", "_words", "_others", "_follow", "_follow_pairs", "_scanner")

    # Trie shape (see ``_guarded``): measured with callgrind on complaint
    # text, wide leaves of cheap literal tests beat deep guard nesting.
    FAN = 4
    LEAF = 32

    def __init__(self, terms: Iterable[tuple[str, bool]], markers: Iterable[str] = (), native: bool = True):
        terms = [t for t in terms if t[0]]
        known = {term for term, _ in terms}
        self.markers = frozenset(ch for ch in markers if len(ch) == 1 and ch not in known)
        root = _build_trie(terms + [(ch, True) for ch in sorted(self.markers)])
        #: Every string :meth:`find_spans` can report.
        self.strings = frozenset(known | self.markers)
        # The compiled scanner walks the trie at every position in C: the
        # reference semantics directly, several times faster than the regex
        # scan, which is built only as the portable fallback.
        self._scanner = (_native.Scanner(*_flatten_trie(root))
                         if native and _native is not None and root else None)
        if self._scanner is None:
            self._compile_fallback(terms, root)
        else:
            self.pattern = self._others = self._words = None
            self._follow, self._follow_pairs = {}, frozenset()

    def _compile_fallback(self, terms: list[tuple[str, bool]], root: dict) -> None:
        """The regex scan and the overlap table of the pure-Python path."""
        # The follow table is built without the markers: a one-character
        # string never reaches past the term it starts in.
        self._follow = _follow_table(_build_trie(terms))
        # (term, next character) pairs after which a longer term may start
        # inside the term: the only cases needing a closer look.
        self._follow_pairs = frozenset((term, ch) for term, after in self._follow.items() for ch in after)
        words, others, ascii_others = _branches(root, self.FAN, self.LEAF) if root else ("", "", "")
        never = r"(?!x)x"

        def compiled(*branches: str) -> re.Pattern[str]:
            # One capturing group around the whole trie: ``split`` then
            # returns [gap, term, gap, term, ..., gap], built in C.
            return re.compile("(" + ("|".join(b for b in branches if b) or never) + ")")

        # The two halves start with disjoint characters, so their order does
        # not change any match; mixed texts are mostly CJK, hence CJK first.
        self.pattern: re.Pattern[str] | None = compiled(others, words)
        # Most texts are all Chinese or all English: a text with no ASCII
        # letter/digit cannot match a term starting with one, and an ASCII
        # text cannot match a term starting with a non-ASCII character, so
        # each is scanned with the part of the pattern that can match.
        self._others = compiled(others)
        self._words = compiled(words, ascii_others)

    @property
    def native(self) -> bool:
        """Whether this matcher scans with the compiled scanner."""
        return self._scanner is not None

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` of all longest matches, minus those contained
        in an earlier, longer match; identical to :func:`find_terms`."""
        markers = self.markers
        return [found for found in zip(*self.find_spans(text)) if found[0] not in markers]

    def find_spans(self, text: str) -> tuple[list[str], list[int], list[int]]:
        """What :meth:`find` returns, markers included, as three lists:
        terms, starts, ends."""
        if self._scanner is not None:
            return self._scanner.scan(text)
        if not _ASCII_WORD.search(text):
            pattern = self._others
        elif text.isascii():
            pattern = self._words
        else:
            pattern = self.pattern
        parts = pattern.split(text)
        if len(parts) == 1:
            return [], [], []
        terms = parts[1::2]
        # Offsets where each part ends: a term's start and end, in C.
        bounds = list(accumulate(map(len, parts)))
        ends = bounds[1::2]
        # Consecutive scan matches never overlap, so all of them count,
        # unless a longer term may start inside one: only possible after
        # the (term, next character) pairs tabulated at load time.  The NUL
        # stands for "end of text"; a spurious pair only costs a check.
        padded = text + "\0"
        starts = bounds[0:-1:2]
        if self._follow_pairs.isdisjoint(zip(terms, map(padded.__getitem__, ends))):
            return terms, starts, ends
        return self._with_overlaps(text, pattern, terms, starts, ends)

    def _with_overlaps(self, text: str, pattern: re.Pattern[str], terms: list[str],
                       starts: list[int], ends: list[int]) -> tuple[list[str], list[int], list[int]]:
        """The scan matches plus the longer terms starting inside them."""
        found_terms: list[str] = []
        found_starts: list[int] = []
        found_ends: list[int] = []
        reach = 0
        follow = self._follow
        match = pattern.match
        size = len(text)
        for term, start, end in zip(terms, starts, ends):
            if end > reach:
                reach = end
                found_terms.append(term)
                found_starts.append(start)
                found_ends.append(end)
            if end < size:
                after = follow.get(term)
                if after is not None:
                    # Offsets (ascending) where a longer term may start inside
                    # this one and run past ``end``; the anchored match is
                    # the same "longest term here" the scan would have found.
                    for offset in after.get(text[end], ()):
                        inner = match(text, start + offset)
                        if inner is not None and inner.end() > reach:
                            reach = inner.end()
                            found_terms.append(inner.group())
                            found_starts.append(inner.start())
                            found_ends.append(reach)
        return found_terms, found_starts, found_ends


def _flatten_trie(root: dict) -> tuple:
    """The trie as the arrays ``_scan.Scanner`` takes.

    Nodes are numbered breadth-first from the root (0); node ``i`` owns
    edges ``node_first[i] : node_first[i] + node_count[i]``, sorted by code
    point for a binary search, and ends the term ``terms[node_term[i]]``
    (-1: none), which needs a right word boundary when ``node_rbound[i]``.
    """
    terms: list[str] = []
    edge_char, edge_child = array("I"), array("i")
    node_first, node_count, node_term = array("i"), array("i"), array("i")
    node_rbound = bytearray()
    assert edge_char.itemsize == 4 and edge_child.itemsize == 4
    queue = [(root, "")]
    for node, path in queue:  # grows while it is walked: breadth-first
        chars = sorted(k for k in node if k != _END)
        node_first.append(len(edge_char))
        node_count.append(len(chars))
        if _END in node:
            node_term.append(len(terms))
            terms.append(path)
            node_rbound.append(1 if node[_END] else 0)
        else:
            node_term.append(-1)
            node_rbound.append(0)
        for ch in chars:
            edge_char.append(ord(ch))
            edge_child.append(len(queue))
            queue.append((node[ch], path + ch))
    return tuple(terms), edge_char, edge_child, node_first, node_count, node_term, bytes(node_rbound)


def _follow_table(root: dict) -> dict[str, dict[str, tuple[int, ...]]]:
    """term -> {next character: offsets where a longer term may start}.

    For each proper suffix ``term[k:]`` that is also a path in the trie, the
    characters continuing that path are the only ones after which a term
    starting at offset ``k`` can extend past the end of ``term``.  An offset
    where an ASCII letter/digit follows another is left out: a term starting
    with one needs a word boundary there (``_LEFT``).
    """
    table: dict[str, dict[str, tuple[int, ...]]] = {}
    terms: list[str] = []

    def collect(node: dict, path: str) -> None:
        for ch, child in node.items():
            if ch == _END:
                terms.append(path)
            else:
                collect(child, path + ch)

    collect(root, "")
    for term in terms:
        after: dict[str, list[int]] = {}
        for k in range(1, len(term)):
            if _ASCII_WORD.match(term[k]) and _ASCII_WORD.match(term[k - 1]):
                continue
            node = root
            for ch in term[k:]:
                node = node.get(ch)
                if node is None:
                    break
            if node is None:
                continue
            for ch in node:
                if ch != _END:
                    after.setdefault(ch, []).append(k)
        if after:
            table[term] = {ch: tuple(ks) for ch, ks in after.items()}
    return table


# --------------------------------------------------------------------------
# The regex gate
# --------------------------------------------------------------------------

# The most frequent characters of written Chinese (function words, common
# verbs): poor triggers for the regex gate, since nearly every text has them.
_COMMON_CJK = frozenset(
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得"
    "可你年生自会那后能对着事其里所去行过家用发天如然作方成者多日都小无同么经"
    "法当起与好看学进种将还分此心前面又定见只主没从知把它给些现再已很最做让吗"
)


# Rough odds that a character occurs in a complaint, used only to pick the
# most telling literal of a regex (a bad guess costs time, never a result).
def _char_odds(ch: str) -> float:
    if _ASCII_WORD.match(ch):
        return 0.05
    if ch.isascii() or ch in _COMMON_CJK:
        return 0.3
    return 0.02


def _literal_odds(literal: str) -> float:
    odds = 1.0
    for ch in literal:
        odds *= _char_odds(ch)
    return odds


def _group_odds(group: frozenset[str]) -> float:
    return min(1.0, sum(_literal_odds(s) for s in group))


def _simplify(group: Iterable[str]) -> frozenset[str]:
    """Drop any literal containing another one: the shorter one is implied."""
    items = sorted(set(group), key=len)
    kept: list[str] = []
    for s in items:
        if not any(k in s for k in kept):
            kept.append(s)
    return frozenset(kept)


def required_literals(regex: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    """Literal groups every match of ``regex`` contains: one string of each.

    Derived from the parsed pattern: runs of literal characters, character
    sets of literals, repeats of at least one, and alternations (each
    alternative contributes its most telling group).  Anything the analysis
    does not understand simply contributes nothing, so the result is always
    a necessary condition; case-insensitive patterns get none at all.
    """
    if regex.flags & (re.IGNORECASE | re.LOCALE):
        return ()
    try:
        from re import _constants as sre  # type: ignore[attr-defined]  # 3.11+
        from re import _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - other interpreters
        return ()

    def needs(items) -> list[frozenset[str]]:
        groups: list[frozenset[str]] = []
        run: list[str] = []
        for op, av in items:
            if op is sre.LITERAL:
                run.append(chr(av))
                continue
            if run:
                groups.append(frozenset(["".join(run)]))
                run = []
            if op is sre.SUBPATTERN:
                _, add_flags, _, sub = av
                if not add_flags & (re.IGNORECASE | re.LOCALE):
                    groups.extend(needs(sub))
            elif op is sre.ATOMIC_GROUP:
                groups.extend(needs(av))
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)):
                low, _, sub = av
                if low >= 1:
                    groups.extend(needs(sub))
            elif op is sre.BRANCH:
                choices: list[str] = []
                for alternative in av[1]:
                    inner = needs(alternative)
                    if not inner:
                        break
                    choices.extend(min(inner, key=_group_odds))
                else:
                    groups.append(_simplify(choices))
            elif op is sre.IN:
                if all(kind is sre.LITERAL for kind, _ in av):
                    groups.append(frozenset(chr(v) for _, v in av))
        if run:
            groups.append(frozenset(["".join(run)]))
        return groups

    try:
        groups = needs(parser.parse(regex.pattern, regex.flags))
    except Exception:  # pragma: no cover - parser internals changed
        return ()
    # Most telling first: a text usually fails on the first test.
    return tuple(sorted((_simplify(g) for g in groups), key=_group_odds))


_ASCII_LETTER = re.compile(r"[a-z]")


def _trigger(literal: str) -> str | None:
    """The least common character of ``literal`` that is worth scanning for.

    ASCII letters, digits and blanks are too common in complaint text to
    narrow anything down (English complaints contain nearly all letters).
    """
    eligible = [ch for ch in literal if not (_ASCII_WORD.match(ch) or ch.isspace())]
    return min(eligible, key=_char_odds) if eligible else None


def literal_groups(regex: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """:func:`required_literals` as plain tuples, most telling group first,
    ready for :func:`has_literals`."""
    return tuple(tuple(sorted(g)) for g in required_literals(regex))


class RegexGate:
    """Tells which of several regexes can possibly match a text.

    Searching every rule regex in every text costs a call and a scan each,
    although almost none of them match.  Each regex has groups of literals
    every match must contain (:func:`required_literals`); for the most
    telling groups, the least common character of each literal is a
    trigger, and a regex is a candidate only if every such group has one of
    its triggers in the text.  Bit ``slot * n + i`` of an integer stands for
    "condition ``slot`` of regex ``i`` holds", so the test for all regexes
    at once is a few integer operations.

    Which trigger characters a text has comes for free from the term
    matcher: the triggers are its markers (:class:`TermMatcher`), and each
    string it reports maps to the conditions its characters satisfy
    (:meth:`index`).  Without those strings, one ``findall`` finds them.
    Regexes with no distinctive character (English word patterns) pass the
    bit test whenever the text has an ASCII letter at all.  Every regex that
    passes is then checked for its literals with plain substring tests
    (:func:`has_literals`) before it is reported.
    """

    __slots__ = ("_size", "_free", "_letters", "_by_char", "_by_string", "_chars", "_verify")

    SLOTS = 3  # conditions tested per regex (``candidates`` spells out all 3)

    def __init__(self, regexes: Sequence[re.Pattern[str]]):
        n = self._size = len(regexes)
        self._free = 0  # conditions that hold for any text
        self._letters = 0  # conditions that hold for any text with a letter
        self._by_char: dict[str, int] = {}
        self._by_string: dict[str, int] = {}
        self._verify: dict[int, tuple[tuple[str, ...], ...]] = {}
        for index, regex in enumerate(regexes):
            groups = required_literals(regex)
            conditions = []
            for group in groups:  # most telling first
                triggers = {_trigger(literal) for literal in group}
                if None in triggers or triggers in conditions:
                    continue
                # A very common trigger would cost a hit in nearly every
                # text for little selectivity: only as the sole condition.
                if conditions and any(_char_odds(ch) >= 0.3 for ch in triggers):
                    continue
                conditions.append(triggers)
            for slot in range(self.SLOTS):
                bit = 1 << (slot * n + index)
                if slot < len(conditions):
                    for ch in conditions[slot]:
                        self._by_char[ch] = self._by_char.get(ch, 0) | bit
                elif slot == 0 and any(all(_ASCII_LETTER.search(s) for s in g) for g in groups):
                    self._letters |= bit
                else:
                    self._free |= bit
            if groups:
                # Trigger characters only hint that a literal may be there
                # ("卡" for "办卡"); most candidates they let through lack a
                # whole literal, and a substring test per literal is several
                # times cheaper than the regex search it spares.
                self._verify[index] = literal_groups(regex)
        chars = sorted(self._by_char)
        self._chars = re.compile(_class(chars)) if chars else None

    @property
    def triggers(self) -> frozenset[str]:
        """The characters whose presence the conditions test."""
        return frozenset(self._by_char)

    def index(self, strings: Iterable[str]) -> None:
        """Learn the conditions each of ``strings`` satisfies (the strings a
        :class:`TermMatcher` with :attr:`triggers` as markers reports)."""
        by_char = self._by_char
        for string in strings:
            held = 0
            for ch in set(string):
                held |= by_char.get(ch, 0)
            if held:
                self._by_string[string] = held

    def candidates(self, text: str, strings: Iterable[str] | None = None) -> list[int]:
        """Indices (ascending) of the regexes that may match ``text``.

        ``strings``: what a :class:`TermMatcher` indexed with :meth:`index`
        found in ``text`` (markers included); every trigger character of the
        text is in one of them.
        """
        held = self._free
        if self._letters and _ASCII_LETTER.search(text):
            held |= self._letters
        # OR of the conditions met by the strings or characters, in C.
        if strings is not None:
            held = reduce(or_, filter(None, map(self._by_string.get, strings)), held)
        elif self._chars is not None:
            held = reduce(or_, map(self._by_char.__getitem__, set(self._chars.findall(text))), held)
        n = self._size
        # Regexes all of whose SLOTS (3) conditions hold.
        mask = held & (held >> n) & (held >> (n + n)) & ((1 << n) - 1)
        if not mask:
            return []
        found = []
        verify = self._verify
        while mask:
            low = mask & -mask
            index = low.bit_length() - 1
            mask ^= low
            groups = verify.get(index)
            if groups is not None and not has_literals(text, groups):
                continue
            found.append(index)
        return found


class LiteralGate:
    """:class:`RegexGate`'s job done exactly, with the compiled scanner.

    Every literal of every group of :func:`required_literals` goes into a
    trie, and one native pass (``Scanner.masked``) ORs the condition bits of
    the literals the text contains, as plain substrings.  Bit ``slot * n + i`` stands for
    "group ``slot`` of regex ``i`` has a literal in the text" (or the regex
    has fewer groups); a regex is a candidate when all its bits are set.
    Unlike the trigger characters of :class:`RegexGate`, the test is the
    literals themselves and covers all groups, so nearly every candidate
    matches.  Needs no markers from the term matcher (:attr:`triggers` is
    empty); ``strings`` is accepted and ignored.
    """

    __slots__ = ("_size", "_slots", "_free", "_scanner")

    def __init__(self, regexes: Sequence[re.Pattern[str]]):
        if _native is None:
            raise RuntimeError("LiteralGate needs the compiled scanner (_scan)")
        groups = [required_literals(regex) for regex in regexes]
        n = self._size = len(regexes)
        self._slots = max((len(g) for g in groups), default=0) or 1
        self._free = 0
        literal_bits: dict[str, int] = {}
        for index, regex_groups in enumerate(groups):
            for slot in range(self._slots):
                bit = 1 << (slot * n + index)
                if slot < len(regex_groups):
                    for literal in regex_groups[slot]:
                        literal_bits[literal] = literal_bits.get(literal, 0) | bit
                else:
                    self._free |= bit
        flat = _flatten_trie(_build_trie((literal, True) for literal in sorted(literal_bits)))
        # One mask per literal, in the scanner's own (breadth-first) order of
        # its terms; the scanner ORs those of the literals it finds.
        width = max(1, -(-(self._slots * n) // 64)) * 8
        masks = b"".join(literal_bits[literal].to_bytes(width, "little") for literal in flat[0])
        self._scanner = _native.Scanner(*flat, masks)

    @property
    def triggers(self) -> frozenset[str]:
        return frozenset()

    def index(self, strings: Iterable[str]) -> None:
        """Nothing to learn: the gate scans for its literals itself."""

    def candidates(self, text: str, strings: Iterable[str] | None = None) -> list[int]:
        """Indices (ascending) of the regexes whose every literal group has a
        literal in ``text``."""
        held = self._scanner.masked(text) | self._free
        n = self._size
        mask = held
        for slot in range(1, self._slots):
            mask &= held >> (slot * n)
        mask &= (1 << n) - 1
        found = []
        while mask:
            low = mask & -mask
            found.append(low.bit_length() - 1)
            mask ^= low
        return found


def has_literals(text: str, groups: tuple[tuple[str, ...], ...]) -> bool:
    """Whether ``text`` contains at least one literal of every group (see
    :func:`literal_groups`); always true for no groups."""
    for group in groups:
        for literal in group:
            if literal in text:
                break
        else:
            return False
    return True
