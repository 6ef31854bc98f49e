"""The fast matching paths find exactly what the reference forms find.

Classification has two implementations of its hot path: the compiled
scanner (``_scan.c``: term matcher and regex gate) and the pure-Python one
(regex split, trigger-character gate) used where no C compiler was there.
Both are checked here against the reference forms: ``find_terms`` over the
overlapping regex for terms, ``regex.search`` for the rule patterns, on
texts built to hit the hard cases (terms inside, across and next to other
terms, ASCII word boundaries, mixed scripts).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.domain.classification import text as text_module
from complaint_stream.domain.classification.text import (
    NATIVE_SCANNER,
    LiteralGate,
    RegexGate,
    TermMatcher,
    find_terms,
    normalise,
)

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT / "data" / "eval" / "complaints_dev.jsonl"
BLIND = ROOT / "tests" / "data" / "complaints_blind.jsonl"

NOT_BUILT = ("the compiled scanner (complaint_stream/domain/classification/_scan) was not built: "
             "`make test` installs a C compiler before installing the package")


def require_native() -> None:
    """The tests run the native path too, never skip it: `make test` builds it."""
    assert NATIVE_SCANNER, NOT_BUILT


def _texts(path: Path) -> list[str]:
    assert path.exists(), f"{path} is missing (the dev set is in data/eval)"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


@pytest.fixture(scope="module")
def native_rules():
    return load_rules()


@pytest.fixture(scope="module")
def python_rules():
    return load_rules(native=False)


@pytest.fixture(scope="module")
def hard_texts(python_rules) -> list[str]:
    """Real complaints plus random texts stitched from rule terms, their
    pieces, pattern literals and filler, so that terms overlap, nest,
    straddle each other and touch ASCII words."""
    rng = random.Random(20261128)
    terms = sorted(python_rules.lookup)
    literals = sorted({lit for regex, *_ in python_rules.patterns
                       for group in text_module.required_literals(regex) for lit in group})
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
            elif kind < 0.6 and literals:
                pieces.append(rng.choice(literals))
            else:
                pieces.append("".join(rng.choice(filler) for _ in range(rng.randint(0, 3))))
        joiner = rng.choice(["", "", " ", "，"])
        texts.append(normalise(joiner.join(pieces)))
    return texts


def _matchers(rules) -> list[TermMatcher]:
    return [rules.terms]


def test_the_python_matcher_finds_exactly_the_reference_terms(python_rules, hard_texts):
    matcher = python_rules.terms
    assert not matcher.native
    for text in hard_texts:
        assert matcher.find(text) == find_terms(python_rules.matcher, text), text


def test_the_native_matcher_finds_exactly_the_reference_terms(native_rules, hard_texts):
    require_native()
    matcher = native_rules.terms
    assert matcher.native
    for text in hard_texts:
        assert matcher.find(text) == find_terms(native_rules.matcher, text), text


def test_native_and_python_matchers_agree_on_ascii_word_boundaries():
    require_native()
    terms = [("bill", False), ("bill*", True), ("charg", True), ("5g", False), ("sim卡", False),
             ("no signal", False), ("卡", False), ("rmb", False)]
    from complaint_stream.domain.classification.text import normalise_term

    compiled = [normalise_term(t) if t.endswith("*") else (t, p) for t, p in terms]
    native = TermMatcher(compiled)
    python = TermMatcher(compiled, native=False)
    reference = text_module.compile_terms(compiled)
    assert native.native and not python.native
    for text in ["billing", "my bill", "bill上多了", "5g信号", "a5g", "5gb", "xsim卡", "sim卡坏",
                 "charged twice", "recharge", "no signals", "no signal", "50rmb", "rmb50", "rmb", ""]:
        expected = find_terms(reference, text)
        assert native.find(text) == expected, text
        assert python.find(text) == expected, text
    # The boundaries are really applied (not just equally wrong in both).
    assert native.find("billing") == [("bill", 0, 4)]  # the prefix form wins
    assert native.find("a5g") == []
    assert native.find("rmb50") == []
    assert [t for t, *_ in native.find("50 rmb")] == ["rmb"]


@pytest.mark.parametrize("gate_kind", ["literal", "trigger"])
def test_the_regex_gate_never_drops_a_pattern_that_matches(gate_kind, native_rules, python_rules, hard_texts):
    if gate_kind == "literal":
        require_native()
    rules = native_rules if gate_kind == "literal" else python_rules
    gate = rules.pattern_gate
    assert isinstance(gate, LiteralGate if gate_kind == "literal" else RegexGate)
    regexes = [p[0] for p in rules.patterns] + list(rules.context)
    matched = skipped = 0
    for text in hard_texts:
        strings = rules.terms.find_spans(text)[0]
        candidates = set(gate.candidates(text, strings))
        for index, regex in enumerate(regexes):
            if regex.search(text) is not None:
                matched += 1
                assert index in candidates, (regex.pattern, text)
            elif index not in candidates:
                skipped += 1
    # The texts exercise the patterns, and the gate does spare searches.
    assert matched > 200
    assert skipped > 0.9 * len(hard_texts) * len(regexes) / 2


def test_native_and_python_classifiers_give_identical_results(native_rules, python_rules, hard_texts):
    fast, slow = Classifier(native_rules), Classifier(python_rules)
    for text in hard_texts[:1500]:
        for channel in ("app", "regulator"):
            assert fast.classify(text, channel) == slow.classify(text, channel), text


def test_classify_many_gives_what_classify_gives(native_rules, hard_texts):
    classifier = Classifier(native_rules)
    items = [(text, "hotline") for text in hard_texts[:600]]
    assert classifier.classify_many(items) == [classifier.classify(t, c) for t, c in items]
    assert classifier.classify_many([]) == []


def test_classify_many_asks_the_model_once_per_batch(native_rules):
    calls = []

    class CountingModel:
        def predict_proba(self, text):
            calls.append("one")
            return {"billing": 0.9, "other": 0.1}

        def predict_proba_many(self, texts):
            calls.append(len(texts))
            return [self.predict_proba(t) for t in texts]

    classifier = Classifier(native_rules, model=CountingModel())
    many = classifier.classify_many([("扣费不对", "app"), ("signal gone", "app")])
    assert calls[0] == 2
    calls.clear()
    single = [classifier.classify("扣费不对", "app"), classifier.classify("signal gone", "app")]
    assert many == single
    assert calls == ["one", "one"]


def test_the_scanner_refuses_malformed_tries():
    require_native()
    from complaint_stream.domain.classification import _scan
    from complaint_stream.domain.classification.text import _build_trie, _flatten_trie

    terms, edge_char, edge_child, first, count, term, rbound = _flatten_trie(_build_trie([("ab", False)]))
    scanner = _scan.Scanner(terms, edge_char, edge_child, first, count, term, rbound)
    assert scanner.scan("-ab-") == (["ab"], [1], [3])
    assert scanner.scan("xaby") == ([], [], [])  # inside a word
    with pytest.raises(TypeError):
        scanner.scan(b"ab")
    with pytest.raises(RuntimeError):
        scanner.masked("ab")  # built without masks

    # masked(): the OR of the masks of the terms present, any width.
    literals = _flatten_trie(_build_trie([("ab", True), ("b", True), ("卡", True)]))
    bits = {"ab": 1 << 70, "b": 1, "卡": 1 << 3}
    masks = b"".join(bits[t].to_bytes(16, "little") for t in literals[0])
    masked = _scan.Scanner(*literals, masks)
    assert masked.masked("xxabyy") == (1 << 70) | 1
    assert masked.masked("办卡") == 1 << 3
    assert masked.masked("none here") == 0
    with pytest.raises(ValueError):
        _scan.Scanner(*literals, masks[:-1])
    bad_child = edge_child[:]
    bad_child[0] = 99
    with pytest.raises(ValueError):
        _scan.Scanner(terms, edge_char, bad_child, first, count, term, rbound)
    with pytest.raises(ValueError):
        _scan.Scanner(terms, edge_char, edge_child, first, count, term, rbound + b"\0")
    with pytest.raises(TypeError):
        _scan.Scanner(("ab", 3), edge_char, edge_child, first, count, term, rbound)


def test_the_native_scanner_is_built_and_used_by_default():
    """A broken build must not pass unnoticed: the classifier would silently
    run on the pure-Python matcher at a fraction of its speed."""
    require_native()
    rules = load_rules()
    assert rules.terms.native
    assert isinstance(rules.pattern_gate, LiteralGate)
