"""Text normalisation and the single-pass term matcher.

Matching is the hot path of classification, so every literal term of the
rule set (category terms, cues, risk terms, stop terms) is compiled into one
trie-shaped regular expression.  One ``finditer`` over the text finds the
longest term starting at every position; terms wholly inside a longer match
are dropped, so "携号转网" does not also count as "转网".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

_ASCII_WORD = re.compile(r"[a-z0-9]")

# A term that starts or ends with an ASCII letter/digit must sit on an ASCII
# word boundary; ``\b`` cannot be used because CJK characters are word
# characters too and mixed text ("bill上多了") has no boundary there.
_LEFT = r"(?<![a-z0-9])"
_RIGHT = r"(?![a-z0-9])"
_END = ""  # trie key marking the end of a term


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, collapse whitespace."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())


def normalise_term(term: str) -> tuple[str, bool]:
    """Normalise a rule term; a trailing ``*`` marks a prefix (stem) term."""
    prefix = term.endswith("*")
    if prefix:
        term = term[:-1]
    return normalise(term), prefix


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
    """Alternation over ``chars`` split into guarded groups, recursively.

    The regex engine tries the branches of a group one by one; a character
    class in front of each sub-group rejects a position after a few class
    tests instead of one test per distinct first character.
    """
    if len(chars) <= leaf:
        return "|".join(re.escape(ch) + _node_regex(root[ch]) for ch in chars)
    size = -(-len(chars) // fan)
    parts = []
    for i in range(0, len(chars), size):
        sub = chars[i:i + size]
        parts.append(f"(?={_class(sub)})(?:{_guarded(root, sub, fan, leaf)})")
    return "|".join(parts)


def compile_terms(terms: Iterable[tuple[str, bool]], fan: int = 8, leaf: int = 8) -> re.Pattern[str]:
    """Compile normalised ``(term, is_prefix)`` pairs into one overlapping matcher.

    The whole pattern sits in a lookahead, so ``finditer`` visits every
    position and reports the longest term starting there.
    """
    root = _build_trie(t for t in terms if t[0])
    if not root:
        return re.compile(r"(?!x)x")
    firsts = sorted(root)
    ascii_first = [ch for ch in firsts if _ASCII_WORD.match(ch)]
    other_first = [ch for ch in firsts if not _ASCII_WORD.match(ch)]
    branches = []
    if ascii_first:
        # Checked once for all ASCII terms: rejects mid-word positions at once.
        branches.append(f"{_LEFT}(?={_class(ascii_first)})(?:{_guarded(root, ascii_first, fan, leaf)})")
    if other_first:
        branches.append(f"(?={_class(other_first)})(?:{_guarded(root, other_first, fan, leaf)})")
    return re.compile("(?=(" + "|".join(branches) + "))")


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
