"""The n-gram model never sees a term the rules' negation cancelled.

Without this, "不是信号问题" was network: the rules struck out 信号, found nothing
else and left the decision to the model, whose n-grams know 信号 as network and
nothing of the 不是 before it.  The classifier masks cancelled terms out of the
text it hands the model (the rest of the text still reaches it).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_stream.bootstrap import build_classifier
from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.settings import load_settings

RULES = load_rules()


class KeywordModel:
    """A model that reads category terms literally: each rule term found anywhere in its input
    votes for the term's categories.  Anything it is shown, it brings back."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_proba(self, text: str) -> dict[str, float]:
        self.seen.append(text)
        votes = dict.fromkeys(RULES.categories, 0.0)
        for term, entry in RULES.entries.items():
            if term in text:
                for category, weight in entry.categories:
                    votes[category] += weight
        total = sum(votes.values())
        if not total:
            return {c: 1.0 / len(votes) for c in votes}
        return {c: v / total for c, v in votes.items()}

    def predict_proba_many(self, texts: list[str]) -> list[dict[str, float]]:
        return [self.predict_proba(t) for t in texts]


@pytest.fixture(scope="module")
def deployed() -> Classifier:
    return build_classifier(load_settings(environ={}))[0]


@pytest.mark.parametrize("text", ["不是信号问题", "信号没问题", "信号是好的", "not a signal problem", "the signal is fine"])
def test_the_packaged_model_does_not_bring_back_a_negated_network_term(deployed, text):
    result = deployed.classify(text, "app")
    assert result.category != "network", result.explanation
    assert any(reason.startswith("negated:") for reason in result.explanation)
    assert deployed.classify_many([(text, "app")]) == [result]


def test_a_model_that_would_bring_the_term_back_is_not_shown_it():
    model = KeywordModel()
    classifier = Classifier(RULES, model=model, model_weight=0.9, model_margin=2.0)
    result = classifier.classify("不是信号问题", "app")
    assert result.category != "network"
    assert model.seen and all("信号" not in text for text in model.seen)
    # The rest of the text still reaches the model, and an un-negated term is shown as written.
    classifier.classify("不是信号问题，是手机死机", "app")
    assert "死机" in model.seen[-1]
    classifier.classify("信号很差", "app")
    assert model.seen[-1] == "信号很差"


def _negated_pairs() -> list[tuple[str, str]]:
    """(before-cue, category term) pairs whose text ``cue + term`` the rules negate."""
    probe = Classifier(RULES)
    terms = sorted(t for t, e in RULES.entries.items() if e.categories and not e.risk and len(t) >= 2)
    cues = sorted(t for t, e in RULES.entries.items() if e.negates_before)
    pairs = []
    for cue in cues:
        for term in terms[::7]:
            explanation = probe.classify(cue + term, "app").explanation
            if f'negated: "{term}" by "{cue}"' in explanation and not any(
                    r.startswith("term ") for r in explanation):
                pairs.append((cue, term))
    return pairs


PAIRS = _negated_pairs()


def test_there_are_many_negated_pairs_to_draw_from():
    assert len(PAIRS) > 200


@settings(max_examples=200, deadline=None)
@given(pair=st.sampled_from(PAIRS), tail=st.sampled_from(["", "问题", "的问题", " problem", "。"]),
       batch=st.booleans())
def test_a_negated_term_never_reaches_the_model(pair, tail, batch):
    cue, term = pair
    model = KeywordModel()
    classifier = Classifier(RULES, model=model, model_weight=1.0, model_margin=2.0)
    text = cue + term + tail
    result = classifier.classify_many([(text, "app")])[0] if batch else classifier.classify(text, "app")
    if any(r.startswith("term ") for r in result.explanation):
        return  # the tail added evidence of its own; nothing to check
    assert model.seen and all(term not in seen for seen in model.seen), (text, model.seen)
