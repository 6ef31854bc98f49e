"""Operator-edited policy files are loaded strictly, and refused with the file, the key and what was expected.

A loose loader let a misspelt category key fall back to the default baseline and read
``"raise_one_step_for_repeat": "false"`` as true; nobody would have noticed either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_stream.domain.classification import RulesError, load_rules
from complaint_stream.domain.classification.rules import DEFAULT_RULES_PATH
from complaint_stream.domain.classifier_rules import RulesFile
from complaint_stream.domain.policy_files import PolicyFileError, PolicyModel, load_policy_file
from complaint_stream.domain.priority import PriorityRulesError, PriorityRulesFile, load_priority_rules
from complaint_stream.schemas import Category, CustomerTier, Priority

PRIORITY_FILE = Path(__file__).resolve().parents[3] / "complaint_stream" / "domain" / "priority_rules.json"


def write(tmp_path: Path, data: object, name: str = "policy.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def packaged_priority() -> dict:
    return json.loads(PRIORITY_FILE.read_text(encoding="utf-8"))


def packaged_rules() -> dict:
    return json.loads(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))


# -- the packaged files ---------------------------------------------------------------------------

def test_the_packaged_files_pass_their_models():
    assert load_priority_rules().raise_for_repeat is True
    assert load_rules().categories == tuple(c.value for c in Category)
    assert load_policy_file(PRIORITY_FILE, PriorityRulesFile).category_baseline[Category.SECURITY_FRAUD] is Priority.P2
    assert load_policy_file(DEFAULT_RULES_PATH, RulesFile).version == 1


def test_every_category_of_the_taxonomy_has_a_baseline_in_the_packaged_priorities():
    assert set(load_priority_rules().category_baseline) == {c.value for c in Category}


# -- the priority rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("change, key, expected", [
    ({"raise_one_step_for_repeat": "false"}, "raise_one_step_for_repeat", "expected true or false"),
    ({"raise_one_step_for_repeat": 0}, "raise_one_step_for_repeat", "expected true or false"),
    ({"category_baseline": {"netwrok": "P2"}}, "category_baseline.netwrok (key)", "unknown category \"netwrok\""),
    ({"category_baseline": {"network": "P9"}}, "category_baseline.network", "unknown priority \"P9\""),
    ({"category_baseline": {"network": 1}}, "category_baseline.network", "unknown priority 1"),
    ({"risk_flag_priority": {"police": "P1"}}, "risk_flag_priority.police (key)", "unknown risk flag"),
    ({"channel_priority": {"fax": "P1"}}, "channel_priority.fax (key)", "unknown channel"),
    ({"raise_one_step_for_tiers": ["golden"]}, "raise_one_step_for_tiers[0]", "unknown customer tier"),
    ({"raise_one_step_for_tiers": "platinum"}, "raise_one_step_for_tiers", "expected a list"),
    ({"raise_one_step_for_tier": ["gold"]}, "raise_one_step_for_tier", "unknown key; expected one of: _comment,"),
])
def test_a_bad_priority_file_is_refused_with_the_file_the_key_and_what_was_expected(tmp_path, change, key, expected):
    data = packaged_priority()
    for name, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    path = write(tmp_path, data)
    with pytest.raises(PriorityRulesError) as caught:
        load_priority_rules(path)
    line = next(p for p in caught.value.problems if f": {key}: " in p)
    assert line.startswith(f"{path}: {key}: ") and expected in line, caught.value.problems


def test_a_missing_required_key_and_broken_json_are_refused(tmp_path):
    data = packaged_priority()
    del data["category_baseline"]
    with pytest.raises(PriorityRulesError, match="category_baseline: missing"):
        load_priority_rules(write(tmp_path, data))
    with pytest.raises(PriorityRulesError, match="not valid JSON"):
        load_priority_rules(write(tmp_path, '{"category_baseline": {'))
    with pytest.raises(PriorityRulesError, match="cannot be read"):
        load_priority_rules(tmp_path / "nowhere.json")


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    data = packaged_priority() | {"raise_one_step_for_repeat": "false", "extra": 1}
    data["category_baseline"]["billling"] = "P3"
    with pytest.raises(PriorityRulesError) as caught:
        load_priority_rules(write(tmp_path, data))
    assert len(caught.value.problems) == 3
    assert str(caught.value).count(str(tmp_path)) == 3


def test_false_now_means_false(tmp_path):
    rules = load_priority_rules(write(tmp_path, packaged_priority() | {"raise_one_step_for_repeat": False}))
    assert rules.raise_for_repeat is False


@settings(max_examples=50, deadline=None)
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20))
def test_any_unknown_top_level_key_is_refused_by_name(tmp_path_factory, key):
    if key in PriorityRulesFile.model_fields:
        return
    path = write(tmp_path_factory.mktemp("p"), packaged_priority() | {key: True})
    with pytest.raises(PriorityRulesError, match=f": {key}: unknown key"):
        load_priority_rules(path)


@settings(max_examples=50, deadline=None)
@given(category=st.text(min_size=1, max_size=12).filter(lambda c: c not in {x.value for x in Category}))
def test_any_category_key_outside_the_taxonomy_is_refused(tmp_path_factory, category):
    data = packaged_priority()
    data["category_baseline"][category] = "P3"
    path = write(tmp_path_factory.mktemp("p"), data)
    with pytest.raises(PriorityRulesError, match="unknown category"):
        load_priority_rules(path)


# -- the classifier rules -------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, key, expected", [
    (lambda d: d["terms"]["network"]["zh"].update({"信号": "3"}), "terms.network.zh.信号", "expected a number"),
    (lambda d: d["terms"]["network"]["zh"].update({"信号": True}), "terms.network.zh.信号", "expected a number"),
    (lambda d: d["terms"].update({"roaming": {"zh": {"漫游": 2}}}), "terms.roaming (key)", "unknown category"),
    (lambda d: d["terms"]["network"].update({"fr": {"réseau": 2}}), "terms.network.fr (key)", "Input should be"),
    (lambda d: d["patterns"][0].update({"wieght": 2}), "patterns[0].wieght", "unknown key; expected one of: pattern,"),
    (lambda d: d["negation"]["before"].update({"不是": "6"}), "negation.before.不是", "expected a whole number"),
    (lambda d: d["risk"].update({"police": {"zh": ["警察"]}}), "risk.police (key)", "unknown risk flag"),
    (lambda d: d["risk_channels"].update({"regulator": ["regulators"]}), "risk_channels.regulator[0]",
     "unknown risk flag"),
    (lambda d: d["boundaries"][0].update({"sources": ["billing"]}), "boundaries[0].route.sources", "unknown key"),
    (lambda d: d.update({"fallback_category": "misc"}), "fallback_category", "unknown category"),
    (lambda d: d["numbers"].update({"units": "元"}), "numbers.units", "expected a list"),
    (lambda d: d.update({"stopterms": []}), "stopterms", "unknown key"),
])
def test_a_bad_rules_file_is_refused_with_the_file_the_key_and_what_was_expected(tmp_path, mutate, key, expected):
    data = packaged_rules()
    mutate(data)
    path = write(tmp_path, data, "rules.json")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    lines = str(caught.value).splitlines()
    line = next((x for x in lines if f": {key}: " in x), None)
    assert line is not None and line.startswith(f"{path}: ") and expected in line, lines


def test_what_only_the_compiler_can_check_is_refused_with_the_file_too(tmp_path):
    data = packaged_rules()
    data["boundaries"].append({"name": "x", "kind": "route", "cue": "nope", "routes": []})
    path = write(tmp_path, data, "rules.json")
    with pytest.raises(RulesError, match=f"^{path}: route on unknown cue 'nope'"):
        load_rules(path)


# -- the helper itself, for the files of the later stages -----------------------------------------

class Roster(PolicyModel):
    """A stand-in for a later stage's file (a roster, an SLA policy, a calendar)."""

    team: str
    hours: int
    tiers: tuple[CustomerTier, ...] = ()


def test_the_helper_reads_toml_as_strictly_as_json(tmp_path):
    good = write(tmp_path, 'team = "north"\nhours = 8\ntiers = ["gold"]\n', "roster.toml")
    assert load_policy_file(good, Roster) == Roster(team="north", hours=8, tiers=(CustomerTier.GOLD,))
    bad = write(tmp_path, 'team = "north"\nhours = "8"\nshift = 1\n', "bad.toml")
    with pytest.raises(PolicyFileError) as caught:
        load_policy_file(bad, Roster)
    assert caught.value.problems == (f"{bad}: hours: expected a whole number, got \"8\"",
                                     f"{bad}: shift: unknown key; expected one of: team, hours, tiers")
    with pytest.raises(PolicyFileError, match="not valid TOML"):
        load_policy_file(write(tmp_path, "team = ", "broken.toml"), Roster)


def test_a_policy_model_is_frozen():
    roster = Roster(team="north", hours=8)
    with pytest.raises(Exception, match="frozen"):
        roster.hours = 9  # type: ignore[misc]
