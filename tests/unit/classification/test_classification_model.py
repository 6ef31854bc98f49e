"""The trainable n-gram model and its blend with the rules."""

import pytest


from complaint_stream.domain.classification import Classifier, load_rules  # noqa: E402
from complaint_stream.domain.classification.model import ModelError, TextModel, train_model  # noqa: E402

# Made-up jargon that no rule knows: only a trained model can place it.
JARGON_ROWS = (
    [{"text": f"zorblax flimmer {i}", "category": "device"} for i in range(12)]
    + [{"text": f"quazzle wint {i}", "category": "billing"} for i in range(12)]
    + [{"text": f"plonkette drab {i}", "category": "network"} for i in range(12)]
)


@pytest.fixture(scope="module")
def model():
    return train_model(JARGON_ROWS)


def test_the_model_returns_a_probability_for_every_trained_category(model):
    probs = model.predict_proba("zorblax flimmer again")
    assert set(probs) == {"device", "billing", "network"}
    assert sum(probs.values()) == pytest.approx(1.0)
    assert max(probs, key=probs.get) == "device"


def test_the_model_places_a_text_that_the_rules_alone_cannot(model):
    rules = load_rules()
    text = "zorblax flimmer since yesterday"
    alone = Classifier(rules).classify(text, "app")
    blended = Classifier(rules, model=model, model_weight=0.5).classify(text, "app")
    assert alone.category == "other"
    assert blended.category == "device"
    assert any(reason.startswith("model: device") for reason in blended.explanation)


def test_clear_rule_evidence_is_not_overturned_by_a_moderate_model_weight(model):
    result = Classifier(load_rules(), model=model, model_weight=0.35).classify(
        "携号转网一直办不了，quazzle wint", "app")
    assert result.category == "number_portability"


def test_a_saved_model_loads_back_with_the_same_predictions(model, tmp_path):
    path = tmp_path / "model.pkl"
    model.save(path)
    loaded = TextModel.load(path)
    assert loaded.classes == model.classes
    for text in ("zorblax flimmer", "quazzle wint", "plonkette"):
        assert loaded.predict_proba(text) == pytest.approx(model.predict_proba(text))


def test_loading_a_file_that_is_not_a_model_fails_clearly(tmp_path):
    import pickle

    path = tmp_path / "bogus.pkl"
    path.write_bytes(pickle.dumps({"hello": "world"}))
    with pytest.raises(ModelError):
        TextModel.load(path)


def test_an_unfitted_model_refuses_to_predict_or_save(tmp_path):
    with pytest.raises(ModelError):
        TextModel().predict_proba("x")
    with pytest.raises(ModelError):
        TextModel().save(tmp_path / "m.pkl")


def test_model_weight_must_be_a_fraction():
    with pytest.raises(ValueError):
        Classifier(load_rules(), model_weight=1.5)
