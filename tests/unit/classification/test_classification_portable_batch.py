"""The vectorised batch path of the portable model: same probabilities as the per-text reference."""

import json
from pathlib import Path

import numpy as np
import pytest

from complaint_stream.domain.classification.model import TextModel
from complaint_stream.domain.classification.portable import LinearTextModel

REPO = Path(__file__).resolve().parents[3]
PACKAGED = REPO / "complaint_stream" / "domain" / "classification" / "default_model.npz"
BLIND = REPO / "tests" / "data" / "complaints_blind.jsonl"
DEV = REPO / "data" / "eval" / "complaints_dev.jsonl"
TRAINING = REPO / "data" / "classifier" / "authored_general.jsonl"

TOLERANCE = 1e-9  # per probability; only the summation order differs

EDGE_CASES = [
    "",
    "   ",
    " \t\n\u3000 ",
    "a b c 1 2 我 是 !",  # one-character words: padded words of 3 characters
    "x",
    "信号差😡",  # outside the BMP
    "😡😡 😡",
    "a\x00b \x00 信号\x00差",  # NUL (the batch path's word separator)
    "\x01\x02\x1b[0m\x7f bill \x85 \u200b 宽带",  # control and format characters
    "\ud83d lone surrogate \udc00",
    "宽带断网，" * 1000,  # 5,000 characters
    "ꙮꙮꙮ ߷߷ ᚠᛇᚻ",  # only characters no model has seen
    "手机信号差 no signal at home since 3 days, 宽带 wifi 一直断",
    "ＷＩＦＩ断了，话费多扣了１２３元！（急）",  # full-width forms
    "İstanbul ǅ ß ﬁ",  # case and compatibility mappings that change the length
]


def rows_of(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def corpus_texts():
    texts = [r["text"] for r in rows_of(BLIND)]
    if DEV.exists():
        texts += [r["text"] for r in rows_of(DEV)]
    return texts


def max_difference(model, texts):
    """Largest |batch - reference| over all texts and classes; also checks keys and types."""
    batch = model.predict_proba_many(texts)
    assert len(batch) == len(texts)
    worst = 0.0
    for text, got in zip(texts, batch):
        expected = model._predict_proba_reference(text)
        assert list(got) == list(model.classes) == list(expected)
        assert all(type(p) is float for p in got.values())
        worst = max(worst, max(abs(got[c] - expected[c]) for c in model.classes))
    return worst


@pytest.fixture(scope="module")
def packaged():
    return LinearTextModel.load(PACKAGED)


@pytest.fixture(scope="module")
def training():
    rows = rows_of(TRAINING)
    return [r["text"] for r in rows], [r["category"] for r in rows]


def fitted(training, ngram_range):
    """A scikit-learn model with the given n-gram range and its portable export."""
    texts, labels = training
    sk = TextModel(ngram_range=ngram_range).fit(texts, labels)
    return sk, LinearTextModel.from_pipeline(sk.pipeline)


def test_the_packaged_model_uses_the_batch_path(packaged):
    # Otherwise every comparison below would compare the reference with itself.
    assert packaged._codes is not None
    assert packaged.ngram_range == (1, 3)


@pytest.mark.parametrize("path", [BLIND, DEV], ids=["blind", "dev"])
def test_batch_equals_the_reference_on_the_evaluation_sets(packaged, path):
    assert path.exists(), f"{path} is missing (the dev set is in data/eval)"
    texts = [r["text"] for r in rows_of(path)]
    assert len(texts) >= 200
    assert max_difference(packaged, texts) < TOLERANCE


def test_batch_equals_the_reference_on_edge_cases(packaged):
    assert max_difference(packaged, EDGE_CASES) < TOLERANCE


def test_edge_cases_exercise_both_known_and_unknown_ngrams(packaged):
    intercept_only = packaged._predict_proba_reference("")
    for text in ["信号差😡", "a\x00b \x00 信号\x00差", "宽带断网，" * 1000, "a b c 1 2 我 是 !"]:
        assert packaged.predict_proba(text) != pytest.approx(intercept_only, abs=1e-6), text
    assert packaged.predict_proba("   ") == pytest.approx(intercept_only, abs=TOLERANCE)
    # Unknown characters count for nothing, the padding spaces of their words do.
    unknown = packaged.predict_proba("ꙮꙮꙮ ߷߷ ᚠᛇᚻ")
    assert unknown != pytest.approx(intercept_only, abs=1e-6)
    assert unknown == pytest.approx(packaged._predict_proba_reference("ᚠ ߷ ꙮ"), abs=TOLERANCE)


def test_one_text_gives_what_it_gives_in_a_batch(packaged):
    texts = EDGE_CASES + corpus_texts()[:50]
    batch = packaged.predict_proba_many(texts)
    for text, in_batch in zip(texts, batch):
        alone = packaged.predict_proba(text)
        assert alone == packaged.predict_proba_many([text])[0]
        assert max(abs(alone[c] - in_batch[c]) for c in alone) < TOLERANCE


def test_batches_larger_than_one_pass_keep_text_order(packaged):
    texts = (corpus_texts() + EDGE_CASES) * 3
    assert len(texts) > packaged.BATCH
    assert max_difference(packaged, texts) < TOLERANCE
    assert packaged.predict_proba_many([]) == []
    assert packaged.predict_proba_many(iter(texts[:3])) == packaged.predict_proba_many(texts[:3])


@pytest.mark.slow
@pytest.mark.parametrize("ngram_range", [(2, 4), (4, 5)])
def test_other_ngram_ranges_agree_with_the_reference_and_scikit_learn(training, ngram_range):
    sk, model = fitted(training, ngram_range)
    assert model._codes is not None  # coded: 10-bit character ranks, up to 6 characters
    if ngram_range[0] > 3:
        # scikit-learn's whole-word rule: a padded word shorter than the lowest n is one n-gram
        assert " a " in model.vocabulary or " 1 " in model.vocabulary
    texts = corpus_texts()[:120] + EDGE_CASES
    assert max_difference(model, texts) < TOLERANCE
    # scikit-learn is not asked about lone surrogates
    plain = [t for t in EDGE_CASES + texts[:20] if "\ud83d" not in t]
    for text, ours in zip(plain, model.predict_proba_many(plain)):
        theirs = sk.predict_proba(text)
        assert max(abs(ours[c] - theirs[c]) for c in ours) < 1e-6, text


@pytest.mark.slow
def test_a_vocabulary_too_long_to_code_takes_the_per_text_path(training):
    sk, model = fitted(training, (1, 7))  # 7 characters of 10 bits do not fit in 64 bits
    assert model._codes is None
    # ... and still gives scikit-learn's probabilities
    texts = corpus_texts()[:20] + ["a b c", "宽带 wifi 一直断"]
    for text, ours in zip(texts, model.predict_proba_many(texts)):
        theirs = sk.predict_proba(text)
        assert max(abs(ours[c] - theirs[c]) for c in ours) < 1e-6, text


def synthetic(vocabulary, ngram_range, sublinear_tf=True):
    rng = np.random.default_rng(7)
    n = len(vocabulary)
    return LinearTextModel(vocabulary, rng.uniform(1.0, 3.0, n), rng.normal(0.0, 2.0, (n, 3)),
                           np.array([0.1, -0.2, 0.3]), ["x", "y", "z"], ngram_range, sublinear_tf)


def test_a_hand_made_vocabulary_with_a_nul_character():
    # NUL is in the alphabet, so the batch path must choose another separator.
    # " ab " (4 characters) comes before its prefix " ab": with the range
    # (1, 3) it is never an n-gram, and must not be mistaken for " ab".
    vocabulary = [" a ", " a", "a ", "a", "\x00", "a\x00", "\x00b", "b", " b", "b ", "ab", " ab ", " ab", "ab ",
                  "信号", "号差", "差 ", " 信", "😡", "😡 "]
    texts = ["a", "a b", "ab ab a\x00b", "\x00", "信号差😡", "x y z", "", "aaa bbb  a"]
    for ngram_range, sublinear in [((1, 3), True), ((2, 4), False), ((3, 4), True)]:
        model = synthetic(vocabulary, ngram_range, sublinear)
        assert model._codes is not None and model._codes.separator != "\x00"
        assert max_difference(model, texts) < TOLERANCE
        assert model.predict_proba("ab ab") != pytest.approx(model.predict_proba(""), abs=1e-6)


def test_a_vocabulary_with_repeated_terms_is_not_coded():
    # The reference maps a repeated term to its last index; the batch path is not used.
    model = synthetic([" a", "a ", " a"], (2, 2))
    assert model._codes is None
    assert model.predict_proba("a") == model._predict_proba_reference("a")
