"""The rules file, its loading, and the shape of a Classification."""

import json
import re
from pathlib import Path

import pytest

import complaint_stream.domain.classification as pkg
from complaint_stream.domain.classification import (
    CATEGORIES,
    RISK_FLAGS,
    Classifier,
    RulesError,
    load_rules,
)
from complaint_stream.domain.classification.rules import DEFAULT_RULES_PATH

TAXONOMY_ORDER = ("network", "broadband", "billing", "vas_subscription", "marketing",
                  "service_quality", "business_handling", "number_portability", "device",
                  "security_fraud", "other")


def test_categories_and_risk_flags_follow_the_taxonomy():
    assert CATEGORIES == TAXONOMY_ORDER
    assert RISK_FLAGS == ("regulator", "consumer_association", "media", "legal")
    assert load_rules().categories == CATEGORIES


def test_a_classification_is_frozen_with_scores_best_first():
    result = Classifier().classify("宽带断网三天了", "app")
    assert result.category == "broadband"
    assert 0.0 <= result.confidence <= 1.0
    values = [v for _, v in result.scores]
    assert values == sorted(values, reverse=True)
    assert {c for c, _ in result.scores} == set(CATEGORIES)
    assert result.scores[0] == (result.category, result.confidence)
    with pytest.raises(AttributeError):
        result.category = "other"


def test_explanations_name_the_terms_that_counted():
    result = Classifier().classify("退订彩铃", "app")
    assert 'term "彩铃" (+3.0 vas_subscription)' in result.explanation


def test_full_width_and_upper_case_text_match_like_plain_text():
    plain = Classifier().classify("携号转网被拒绝, port out refused", "app")
    wide = Classifier().classify("携号转网被拒绝，ＰＯＲＴ ＯＵＴ refused", "app")
    assert wide.category == plain.category == "number_portability"


def test_a_stronger_match_gives_higher_confidence_than_a_weak_one():
    strong = Classifier().classify("携号转网被拒，说我有合约，转网授权码也收不到", "app")
    weak = Classifier().classify("号码的事", "app")
    assert strong.confidence > 0.7
    assert weak.confidence < strong.confidence


def test_an_operator_can_add_a_term_in_a_copy_of_the_rules_file(tmp_path):
    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    data["terms"]["device"]["zh"]["蓝牙耳机"] = 3
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert Classifier(load_rules()).classify("蓝牙耳机", "app").category == "other"
    assert Classifier(load_rules(path)).classify("蓝牙耳机", "app").category == "device"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["terms"].setdefault("roaming", {"x": 1}), "unknown category"),
    (lambda d: d["risk"].setdefault("police", ["警察"]), "unknown risk flag"),
    (lambda d: d["boundaries"].append({"name": "x", "kind": "move", "when": ["cat:nope > 1"],
                                       "sources": ["billing"], "target": "device"}), "unknown category"),
    (lambda d: d["boundaries"].append({"name": "x", "kind": "route", "cue": "nope", "routes": []}), "unknown cue"),
    (lambda d: d["boundaries"].append({"name": "x", "kind": "move", "when": ["cat:billing >> 1"],
                                       "sources": [], "target": "device"}), "bad condition"),
])
def test_a_malformed_rules_file_is_rejected_with_a_clear_error(tmp_path, mutate, message):
    data = json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        load_rules(path)


def test_the_domain_package_imports_no_adapter_and_loads_heavy_libraries_only_where_needed():
    adapters = re.compile(r"^\s*(?:import|from)\s+(faust|kafka|aiokafka|prometheus_client)\b", re.MULTILINE)
    heavy = re.compile(r"^(?:import|from)\s+(sklearn|joblib|numpy|pydantic)\b", re.MULTILINE)
    for module in Path(pkg.__file__).parent.glob("*.py"):
        source = module.read_text(encoding="utf-8")
        assert not adapters.search(source), module.name
        top_level = "\n".join(line for line in source.splitlines() if not line.startswith((" ", "\t")))
        found = {m.group(1) for m in heavy.finditer(top_level)}
        # numpy only where a trained model is evaluated; scikit-learn only lazily, for training
        assert found <= ({"numpy"} if module.name == "portable.py" else set()), (module.name, found)
