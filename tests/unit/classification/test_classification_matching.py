"""The term matcher finds exactly what the matching rules say it should,
and the regex gate never skips a regex that matches.

The reference here is the rule spelt out as slowly as possible: at every
position, the longest term that starts there and sits on its ASCII word
boundaries; a term counts when it reaches past every term counted before
it.  The matcher (Aho-Corasick, then the same selection) is checked
against it on real complaints and on texts built to hit the hard cases
(terms inside, across and next to other terms, ASCII word boundaries,
mixed scripts).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.domain.classification.text import NumberContext, TermMatcher, normalise, normalise_term

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT / "data" / "eval" / "complaints_dev.jsonl"
BLIND = ROOT / "tests" / "data" / "complaints_blind.jsonl"

WORD = re.compile(r"[a-z0-9]")


def reference_find(specs: list[tuple[str, bool]], text: str, words: tuple[str, ...] = (),
                   numbers: NumberContext | None = None) -> list[tuple[str, int, int]]:
    """The matching rule, position by position and term by term."""
    prefix: dict[str, bool] = {}
    for term, is_prefix in specs:
        if term:
            prefix[term] = prefix.get(term, False) or is_prefix

    def is_word(i: int) -> bool:
        return 0 <= i < len(text) and WORD.match(text[i]) is not None

    # Every occurrence of every word, on its ASCII word boundaries.
    word_spans = []
    for word in words:
        at = text.find(word)
        while at >= 0:
            end = at + len(word)
            if not ((WORD.match(word[0]) and is_word(at - 1)) or (WORD.match(word[-1]) and is_word(end))):
                word_spans.append((at, end))
            at = text.find(word, at + 1)

    def cuts_a_word(start: int, end: int) -> bool:
        return any(a < start < b or a < end < b for a, b in word_spans)

    def is_alpha(ch: str) -> bool:
        return ch.isascii() and ch.isalpha()

    def is_digit(ch: str) -> bool:
        return ch != "" and ch in "0123456789"

    def a_number_mention(start: int, end: int) -> bool:
        if numbers is None:
            return True
        while end < len(text) and is_digit(text[end]):
            end += 1
        if text[end:end + 1] and text[end] in numbers.joiners and is_digit(text[end + 1:end + 2]):
            return False
        if start >= 2 and text[start - 1] in numbers.joiners and is_digit(text[start - 2]):
            return False
        after = text[end:].lstrip()
        for unit in numbers.units:
            if after.startswith(unit) and not (is_alpha(unit[-1]) and is_alpha(after[len(unit):len(unit) + 1])):
                return False
        for label in numbers.labels:
            # the label, then nothing but separators up to the number
            for end_of_label in range(start, -1, -1):
                before = text[:end_of_label]
                if before.endswith(label) and not (is_alpha(label[0]) and is_alpha(before[:-len(label)][-1:])):
                    return False
                if end_of_label == 0 or text[end_of_label - 1] not in numbers.separators:
                    break
        return True

    found = []
    reach = 0
    for start in range(len(text)):
        best = None
        for term, is_prefix in prefix.items():
            end = start + len(term)
            if not text.startswith(term, start):
                continue
            if WORD.match(term[0]) and is_word(start - 1):
                continue
            if not is_prefix and WORD.match(term[-1]) and is_word(end):
                continue
            if all(map(is_digit, term)) and not a_number_mention(start, end):
                continue
            if cuts_a_word(start, end):
                continue
            if best is None or end > best[2]:
                best = (term, start, end)
        if best is not None and best[2] > reach:
            reach = best[2]
            found.append(best)
    return found


def _texts(path: Path) -> list[str]:
    assert path.exists(), f"{path} is missing (the dev set is in data/eval)"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.fixture(scope="module")
def hard_texts(rules) -> list[str]:
    """Real complaints plus random texts stitched from rule terms, their
    pieces, literal runs of the rule patterns and filler, so that terms
    overlap, nest, straddle each other and touch ASCII words."""
    rng = random.Random(20261128)
    terms = sorted(rules.lookup)
    literals = sorted({run for _, source, _ in rules.patterns
                       for run in re.findall(r"[^\\\[\]().*+?|{}^$]{2,}", source)})
    filler = list("的了我是在有不这个说abcxyz019 _-,.，。!？") + ["5g", "sim", "bill", "卡", "网"]
    texts = [normalise(t) for t in _texts(DEV) + _texts(BLIND)]
    for _ in range(3000):
        pieces = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.45:
                term = rng.choice(terms)
                # Whole terms, and their prefixes and suffixes (partial matches).
                cut = rng.random()
                if cut < 0.2 and len(term) > 1:
                    term = term[: rng.randint(1, len(term) - 1)]
                elif cut < 0.4 and len(term) > 1:
                    term = term[rng.randint(1, len(term) - 1):]
                pieces.append(term)
            elif kind < 0.6:
                pieces.append(rng.choice(literals))
            else:
                pieces.append("".join(rng.choice(filler) for _ in range(rng.randint(0, 3))))
        joiner = rng.choice(["", "", " ", "，"])
        texts.append(normalise(joiner.join(pieces)))
    return texts


def test_the_matcher_finds_exactly_the_reference_terms(rules, hard_texts):
    # The reference tries every term at every position: a sample is enough.
    specs = list(rules.term_specs)
    by_first: dict[str, list[tuple[str, bool]]] = {}
    for term, prefix in specs:
        by_first.setdefault(term[0], []).append((term, prefix))
    nested = 0
    for text in hard_texts[::5]:  # real and generated texts
        relevant = [spec for ch in set(text) for spec in by_first.get(ch, ())]
        expected = reference_find(relevant, text, rules.terms.words, rules.terms.numbers)
        assert rules.terms.find(text) == expected, text
        nested += any(s2 < e1 for (_, _, e1), (_, s2, _) in zip(expected, expected[1:]))
    assert nested > 5  # the texts do exercise overlapping terms


def test_terms_on_ascii_word_boundaries():
    specs = [normalise_term(t) for t in ("bill", "bill*", "charg*", "5g", "sim卡", "no signal", "卡", "rmb")]
    matcher = TermMatcher(specs)
    for text in ["billing", "my bill", "bill上多了", "5g信号", "a5g", "5gb", "xsim卡", "sim卡坏",
                 "charged twice", "recharge", "no signals", "no signal", "50rmb", "rmb50", "rmb", ""]:
        assert matcher.find(text) == reference_find(specs, text), text
    assert matcher.find("billing") == [("bill", 0, 4)]  # the prefix form wins
    assert matcher.find("bill上多了") == [("bill", 0, 4)]  # CJK is no ASCII word character
    assert matcher.find("a5g") == []
    assert matcher.find("rmb50") == []
    assert matcher.find("recharge") == []
    assert matcher.find("xsim卡") == [("卡", 4, 5)]
    assert matcher.find("no signals") == []
    assert [t for t, *_ in matcher.find("50 rmb")] == ["rmb"]


def test_a_term_inside_a_longer_earlier_one_does_not_count_but_one_reaching_past_it_does():
    matcher = TermMatcher([("携号转网", False), ("转网", False), ("网络", False), ("携号", False)])
    assert matcher.find("携号转网") == [("携号转网", 0, 4)]
    assert matcher.find("携号转网络") == [("携号转网", 0, 4), ("网络", 3, 5)]
    assert matcher.find("转网络") == [("转网", 0, 2), ("网络", 1, 3)]


def test_texts_the_automaton_cannot_encode_are_matched_too():
    matcher = TermMatcher([("卡", False), ("bill", False)])
    assert matcher.find("\ud83d办卡\udc00bill") == [("卡", 2, 3), ("bill", 4, 8)]
    assert matcher.find("信号差😡卡") == [("卡", 4, 5)]  # offsets count code points
    assert TermMatcher([]).find("anything") == []


def test_the_regex_gate_never_drops_a_regex_that_matches(rules, hard_texts):
    """The literals declared for each regex (``needs`` in the rules file)
    are in every match of it, on real texts and on texts stitched from
    terms and the patterns' own literal runs."""
    regexes = [p[0] for p in rules.patterns] + list(rules.context)
    matched = skipped = 0
    for text in hard_texts:
        candidates = set(rules.pattern_gate.candidates(text))
        for index, regex in enumerate(regexes):
            if regex.search(text) is not None:
                matched += 1
                assert index in candidates, (regex.pattern, text)
            elif index not in candidates:
                skipped += 1
    # The texts exercise the patterns, and the gate does spare searches.
    assert matched > 200
    assert skipped > 0.8 * len(hard_texts) * len(regexes)


class _Sampler:
    """Random strings matching a regex written in the rule files' subset of
    the syntax: literals, ``(?:...|...)``, ``[...]``/``[^...]`` with ranges,
    ``? * + {m,n}`` (greedy or lazy) and ``\\`` escapes.  Anything else fails
    loudly, so that a new construct in the rules gets a sampler too."""

    POOL = "的我x 1a。,好g"  # what a negated class picks from

    def __init__(self, pattern: str, rng: random.Random):
        self.pattern, self.rng, self.pos = pattern, rng, 0

    def sample(self) -> str:
        self.pos = 0
        out = self._alternation()
        assert self.pos == len(self.pattern), f"unsupported syntax at {self.pos}: {self.pattern}"
        return out

    def _peek(self) -> str:
        return self.pattern[self.pos] if self.pos < len(self.pattern) else ""

    def _alternation(self) -> str:
        # Every branch is parsed (to move past it), one is kept.
        branches = [self._sequence()]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._sequence())
        return self.rng.choice(branches)

    def _sequence(self) -> str:
        out = []
        while self._peek() not in ("", "|", ")"):
            start = self.pos
            self._atom()
            end = self.pos
            low, high = self._quantifier()
            repeat = self.rng.randint(low, high)
            for _ in range(repeat):  # each repetition its own random choice
                self.pos = start
                out.append(self._atom())
            self.pos = end
            self._quantifier()
        return "".join(out)

    def _quantifier(self) -> tuple[int, int]:
        ch = self._peek()
        if ch == "?":
            bounds = (0, 1)
        elif ch == "*":
            bounds = (0, 3)
        elif ch == "+":
            bounds = (1, 3)
        elif ch == "{":
            close = self.pattern.index("}", self.pos)
            low, _, high = self.pattern[self.pos + 1:close].partition(",")
            bounds = (int(low), min(int(high or low), int(low) + 4))
            self.pos = close
        else:
            return 1, 1
        self.pos += 1
        if self._peek() == "?":  # lazy
            self.pos += 1
        return bounds

    def _atom(self) -> str:
        ch = self._peek()
        if ch == "(":
            assert self.pattern.startswith("(?:", self.pos), f"unsupported group: {self.pattern}"
            self.pos += 3
            out = self._alternation()
            assert self._peek() == ")"
            self.pos += 1
            return out
        if ch == "[":
            return self._class()
        assert ch not in ".^$", f"unsupported {ch!r}: {self.pattern}"
        if ch == "\\":
            self.pos += 1
            ch = self._peek()
        self.pos += 1
        return ch

    def _class(self) -> str:
        self.pos += 1
        negated = self._peek() == "^"
        self.pos += negated
        members: set[str] = set()
        while self._peek() != "]":
            ch = self._peek()
            if ch == "\\":
                self.pos += 1
                ch = self._peek()
            self.pos += 1
            if self._peek() == "-" and self.pattern[self.pos + 1] != "]":
                last = self.pattern[self.pos + 1]
                members.update(map(chr, range(ord(ch), ord(last) + 1)))
                self.pos += 2
            else:
                members.add(ch)
        self.pos += 1
        choices = sorted(set(self.POOL) - members) if negated else sorted(members)
        return self.rng.choice(choices)


def test_every_alternative_of_every_regex_passes_the_gate(rules):
    """Sampled matches of each regex (every alternative, with filler around
    them) all contain a declared literal: a literal forgotten in ``needs``
    when an alternative is added fails here."""
    rng = random.Random(7)
    sources = [source for _, source, _ in rules.patterns] + [regex.pattern for regex in rules.context]
    regexes = [p[0] for p in rules.patterns] + list(rules.context)
    for index, (source, regex) in enumerate(zip(sources, regexes)):
        sampler = _Sampler(source, rng)
        for _ in range(300):
            text = "说" + sampler.sample() + " ok"
            assert regex.search(text), (source, text)  # the sampler's own check
            assert index in rules.pattern_gate.candidates(text), (source, text)


def test_declared_literals_must_occur_in_their_pattern(tmp_path):
    from complaint_stream.domain.classification import RulesError
    from complaint_stream.domain.classification.rules import DEFAULT_RULES_PATH

    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    data["patterns"][0]["needs"] = ["名上"]  # a typo for 名下
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError, match="needed literal"):
        load_rules(path)
    del data["patterns"][0]["needs"]  # no literals: searched in every text
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert 0 in load_rules(path).pattern_gate.candidates("nothing here")


def test_classify_many_gives_what_classify_gives(rules, hard_texts):
    classifier = Classifier(rules)
    items = [(text, "hotline") for text in hard_texts[:600]]
    assert classifier.classify_many(items) == [classifier.classify(t, c) for t, c in items]
    assert classifier.classify_many([]) == []


def test_classify_many_asks_the_model_once_per_batch(rules):
    calls = []

    class CountingModel:
        def predict_proba(self, text):
            calls.append("one")
            return {"billing": 0.9, "other": 0.1}

        def predict_proba_many(self, texts):
            calls.append(len(texts))
            return [self.predict_proba(t) for t in texts]

    classifier = Classifier(rules, model=CountingModel())
    many = classifier.classify_many([("扣费不对", "app"), ("signal gone", "app")])
    assert calls[0] == 2
    calls.clear()
    single = [classifier.classify("扣费不对", "app"), classifier.classify("signal gone", "app")]
    assert many == single
    assert calls == ["one", "one"]


def _number_and_word_pieces() -> list[str]:
    rules = load_rules()
    numbers = rules.terms.numbers
    digit_terms = [t for t in rules.lookup if t.isascii() and t.isdigit()]
    overlapping = [t for t in rules.lookup if any(w[-1] == t[0] or w[0] == t[-1] for w in rules.terms.words)]
    return sorted({*digit_terms, *numbers.units, *numbers.labels, *numbers.separators, *numbers.joiners,
                   *rules.terms.words, *overlapping[:300], "0", "1", "9", "5", "a", "m", "的", "打", "了", " ", ","})


PIECES = _number_and_word_pieces()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=10))
def test_numbers_units_labels_and_words_match_as_the_reference_says(rules, pieces):
    # Texts made of hotlines and other digit terms, the units, labels, separators and
    # joiners around them, the declared words and terms that overlap them.
    text = normalise("".join(pieces))
    relevant = [spec for spec in rules.term_specs if spec[0][0] in text]
    expected = reference_find(relevant, text, rules.terms.words, rules.terms.numbers)
    assert rules.terms.find(text) == expected, text
