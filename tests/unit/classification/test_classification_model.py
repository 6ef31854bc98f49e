"""The trainable n-gram model and its blend with the rules."""

import pytest

from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.domain.classification.model import ModelError, TextModel, train_model

# Made-up jargon that no rule knows: only a trained model can place it.
JARGON_ROWS = (
    [{"text": f"zorblax flimmer {i}", "category": "device"} for i in range(12)]
    + [{"text": f"quazzle wint {i}", "category": "billing"} for i in range(12)]
    + [{"text": f"plonkette drab {i}", "category": "network"} for i in range(12)]
)


@pytest.fixture(scope="module")
def model():
    return train_model(JARGON_ROWS)


@pytest.mark.slow
def test_the_model_returns_a_probability_for_every_trained_category(model):
    probs = model.predict_proba("zorblax flimmer again")
    assert set(probs) == {"device", "billing", "network"}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert max(probs, key=probs.get) == "device"


@pytest.mark.slow
def test_the_model_places_a_text_that_the_rules_alone_cannot(model):
    rules = load_rules()
    text = "zorblax flimmer since yesterday"
    alone = Classifier(rules).classify(text, "app")
    blended = Classifier(rules, model=model, model_weight=0.5).classify(text, "app")
    assert alone.category == "other"
    assert blended.category == "device"
    assert any(reason.startswith("model: device") for reason in blended.explanation)


@pytest.mark.slow
def test_clear_rule_evidence_is_not_overturned_by_a_moderate_model_weight(model):
    result = Classifier(load_rules(), model=model, model_weight=0.35).classify(
        "携号转网一直办不了，quazzle wint", "app")
    assert result.category == "number_portability"


def test_an_unfitted_model_refuses_to_predict_or_export():
    with pytest.raises(ModelError):
        TextModel().predict_proba("x")
    with pytest.raises(ModelError):
        _ = TextModel().pipeline


def test_model_weight_must_be_a_fraction():
    with pytest.raises(ValueError):
        Classifier(load_rules(), model_weight=1.5)


class _CountingModel:
    """A model that always says ``billing`` and counts how often it is asked."""

    def __init__(self):
        self.asked: list[str] = []

    def predict_proba(self, text):
        self.asked.append(text)
        return {"billing": 0.9, "other": 0.1}

    def predict_proba_many(self, texts):
        return [self.predict_proba(t) for t in texts]


CLEAR = "携号转网一直办不了，营业厅说要先销户"  # decisive rule evidence
UNCLEAR = "zorblax flimmer since yesterday"  # no rule matches


def test_the_model_is_asked_only_when_the_rules_are_not_decisive():
    model = _CountingModel()
    classifier = Classifier(load_rules(), model=model)
    clear = classifier.classify(CLEAR, "app")
    assert model.asked == []
    assert clear.category == "number_portability"
    assert any(line.startswith("model: not asked, the rules decide (margin ") for line in clear.explanation)
    unclear = classifier.classify(UNCLEAR, "app")
    assert model.asked == [UNCLEAR]
    assert any(line.startswith("model: billing p=0.90") for line in unclear.explanation)
    assert unclear.category == "billing"


def test_a_margin_above_one_always_asks_the_model_and_zero_never_does():
    always, never = _CountingModel(), _CountingModel()
    Classifier(load_rules(), model=always, model_margin=1.01).classify(CLEAR, "app")
    Classifier(load_rules(), model=never, model_margin=0.0).classify(UNCLEAR, "app")
    assert always.asked == [CLEAR]
    assert never.asked == []
    with pytest.raises(ValueError):
        Classifier(load_rules(), model=always, model_margin=-0.1)


def test_classify_many_asks_the_model_for_the_undecided_texts_only_in_one_batch():
    model = _CountingModel()
    classifier = Classifier(load_rules(), model=model)
    items = [(CLEAR, "app"), (UNCLEAR, "app"), (CLEAR, "web"), ("quazzle wint", "sms")]
    many = classifier.classify_many(items)
    assert model.asked == [UNCLEAR, "quazzle wint"]
    model.asked.clear()
    assert many == [classifier.classify(t, c) for t, c in items]


def test_the_configured_margin_reaches_the_deployed_classifier():
    from complaint_stream.bootstrap import build_classifier
    from complaint_stream.settings import load_settings

    deployed, version = build_classifier(load_settings(environ={"COMPLAINTS_CLASSIFIER_MODEL_MARGIN": "0.25"}))
    assert deployed.model is not None and deployed.model_margin == 0.25
    assert version.endswith("-m0.25")
    rules_only, version = build_classifier(load_settings(environ={"COMPLAINTS_CLASSIFIER_MODEL": "none"}))
    assert rules_only.model is None and version.startswith("rules-")


def test_asks_model_tells_in_advance_what_classify_will_do():
    model = _CountingModel()
    classifier = Classifier(load_rules(), model=model)
    assert classifier.asks_model(UNCLEAR, "app") and not classifier.asks_model(CLEAR, "app")
    assert model.asked == []  # telling does not ask
    assert not Classifier(load_rules()).asks_model(UNCLEAR, "app")  # no model, never asked
