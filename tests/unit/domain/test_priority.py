"""Priority rules: baselines, risk, regulator channel, repeat and tier steps."""

from __future__ import annotations

import json

import pytest

from complaint_stream.domain.priority import (
    PriorityRulesError,
    decide_priority,
    load_priority_rules,
)

RULES = load_priority_rules()


def prio(category="marketing", channel="app", flags=(), repeat=False, tier="standard"):
    return decide_priority(RULES, category=category, channel=channel, risk_flags=flags, is_repeat=repeat,
                           tier=tier).priority


def test_category_baselines_rank_fraud_and_portability_above_marketing():
    assert prio("security_fraud") == "P2" and prio("number_portability") == "P2"
    assert prio("network") == "P3" and prio("marketing") == "P4"


@pytest.mark.parametrize("flag", ["regulator", "media", "legal"])
def test_regulator_media_and_legal_threats_rank_highest(flag):
    assert prio("marketing", flags=[flag]) == "P1"


def test_a_consumer_association_threat_ranks_p2():
    assert prio("marketing", flags=["consumer_association"]) == "P2"


def test_the_regulator_channel_ranks_highest_without_any_text_signal():
    decision = decide_priority(RULES, category="other", channel="regulator", risk_flags=(), is_repeat=False,
                               tier="standard")
    assert decision.priority == "P1" and "channel regulator -> P1" in decision.reasons


def test_a_repeat_raises_one_step():
    assert prio("network", repeat=True) == "P2"


def test_a_high_tier_raises_one_step_and_combines_with_a_repeat():
    assert prio("network", tier="diamond") == "P2"
    assert prio("network", tier="gold") == "P3"
    assert prio("marketing", repeat=True, tier="platinum") == "P2"


def test_nothing_goes_above_p1():
    assert prio("security_fraud", flags=["legal"], repeat=True, tier="diamond") == "P1"


def test_reasons_say_what_applied_in_order():
    d = decide_priority(RULES, category="marketing", channel="app", risk_flags=["consumer_association"],
                        is_repeat=True, tier="standard")
    assert d.reasons == ("category marketing baseline P4", "risk consumer_association -> P2",
                         "repeat complaint +1 -> P1")


def test_rules_are_read_from_an_operator_file(tmp_path):
    data = json.loads(json.dumps({
        "category_baseline": {"marketing": "P1"}, "risk_flag_priority": {}, "raise_one_step_for_repeat": False,
    }))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    rules = load_priority_rules(path)
    assert decide_priority(rules, category="marketing", channel="app", risk_flags=(), is_repeat=True,
                           tier="diamond").priority == "P1"
    assert decide_priority(rules, category="network", channel="app", risk_flags=(), is_repeat=True,
                           tier="standard").priority == "P3"


def test_a_bad_level_in_the_file_is_reported(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"category_baseline": {"marketing": "P9"}, "risk_flag_priority": {}}))
    with pytest.raises(PriorityRulesError, match="category_baseline.marketing"):
        load_priority_rules(path)
