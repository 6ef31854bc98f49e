"""`complaints classify` and `complaints classifier train|eval` through the real command."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import run_cli


@pytest.mark.slow
def test_classify_writes_one_json_line_per_input_with_every_field(base_settings):
    lines = "\n".join([
        json.dumps({"text": "家里宽带三天上不了网，光猫一直亮红灯", "channel": "app"}, ensure_ascii=False),
        json.dumps({"text": "Unknown 15 yuan 'music club' charge every month, never subscribed. "
                            "I'll report this to MIIT.", "channel": "email"}),
        "not json",
        json.dumps({"text": "转办工单：用户称号码被冒名补卡", "channel": "工信部"}, ensure_ascii=False),
    ])
    out = run_cli(base_settings, "classify", "-", input=lines)
    assert out.returncode == 1  # one bad line
    assert "line 3: invalid JSON" in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert {"category", "confidence", "risk", "risk_flags", "priority", "needs_review", "explanation"} <= set(row)
    assert rows[0]["category"] == "broadband" and rows[0]["risk"] is False
    assert rows[1]["category"] == "vas_subscription" and rows[1]["risk_flags"] == ["regulator"]
    assert rows[1]["priority"] == "P1"
    assert rows[2]["risk_flags"] == ["regulator"] and rows[2]["priority"] == "P1"  # the regulator channel


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_settings, shared_eval):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    out = run_cli(base_settings, "classifier", "train", str(shared_eval / "complaints_dev.jsonl"), "--out", str(path))
    assert out.returncode == 0, out.stderr
    return path, out


@pytest.mark.slow
def test_train_saves_a_model_that_classify_then_uses(trained, base_settings):
    path, out = trained
    assert "trained on 240 rows in 11 categories" in out.stdout and path.is_file()
    settings = base_settings.with_overrides(classifier_model=str(path))
    res = run_cli(settings, "classify", "-", input=json.dumps({"text": "信号差", "channel": "app"}, ensure_ascii=False))
    row = json.loads(res.stdout)
    assert row["classifier_version"].startswith("rules+model-")
    assert any(e.startswith("model:") for e in row["explanation"])


@pytest.mark.slow
def test_eval_prints_per_category_figures_and_cross_validation(base_settings, shared_eval):
    out = run_cli(base_settings, "classifier", "eval", str(shared_eval / "complaints_dev.jsonl"), "--folds", "3")
    assert out.returncode == 0, out.stderr
    assert "rules alone" in out.stdout and "3-fold CV, rules+model" in out.stdout
    for word in ("network", "macro-F1", "risk precision", "risk recall"):
        assert word in out.stdout


@pytest.mark.slow
def test_eval_refuses_to_score_a_model_on_its_own_training_data(trained, base_settings, shared_eval):
    path, _ = trained
    settings = base_settings.with_overrides(classifier_model=str(path))
    out = run_cli(settings, "classifier", "eval", str(shared_eval / "complaints_dev.jsonl"), "--folds", "2", "--json")
    report = json.loads(out.stdout)
    assert "was trained on 240 of these rows" in report["note"]
    assert [r["label"] for r in report["reports"]] == ["rules alone", "2-fold CV, rules+model"]
