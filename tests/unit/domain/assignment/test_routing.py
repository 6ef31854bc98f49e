"""Routing a classified complaint to a team: rules in order, region fallback, home province, returns,
repeats, language, follow-ups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_stream.domain.assignment import (
    MAX_RETURNS_RULE,
    NO_MATCH_RULE,
    Roster,
    complaint_language,
    route,
    work_item,
)
from complaint_stream.schemas import Category, Channel, Priority, Region, RiskFlag
from tests.unit.domain.assignment.builders import T0, cid, complaint, mini_roster, mini_roster_data, region

ROSTER = Roster.load()
MINI = mini_roster()
EARLIER = "CMP20261101-000000000042"


# -- region: district, city, province, provincial --------------------------------------------------

@pytest.mark.parametrize("where, team, level", [
    (region("广东", "深圳", "南山"), "ops-nanshan", "district 440305"),
    (region("广东", "深圳", "福田"), "ops-shenzhen", "city 440300"),
    (region("广东", "深圳", ""), "ops-shenzhen", "city 440300"),
    (region("广东", "珠海", "香洲"), "ops-guangdong", "province 440000"),
    (region("湖南", "长沙", "岳麓"), "ops-any", "provincial"),
    (Region(province="火星", city="某市"), "ops-any", "provincial"),
])
def test_a_role_resolves_by_district_then_city_then_province_then_the_provincial_team(where, team, level):
    r = route(complaint(where=where), MINI)
    assert (r.team, r.rule) == (team, "network")
    assert level in r.explanation[-1]


def test_a_team_that_returned_the_complaint_is_passed_over_for_the_next_level():
    nanshan = complaint(where=region("广东", "深圳", "南山"))
    assert route(nanshan, MINI, exclude=frozenset({"ops-nanshan"})).team == "ops-shenzhen"
    assert route(nanshan, MINI, exclude=frozenset({"ops-nanshan", "ops-shenzhen"})).team == "ops-guangdong"
    r = route(nanshan, MINI, exclude=frozenset({"ops-nanshan", "ops-shenzhen", "ops-guangdong"}))
    assert r.team == "ops-any"
    assert any("ops-nanshan skipped: it returned the complaint" in line for line in r.explanation)


def test_every_team_of_the_role_returned_it_then_the_next_rule_or_the_triage_desk():
    every_ops = frozenset({"ops-nanshan", "ops-shenzhen", "ops-guangdong", "ops-any"})
    r = route(complaint(), MINI, exclude=every_ops)
    assert (r.team, r.rule) == ("desk", "rest")  # the catch-all rule matches network too
    r = route(complaint(needs_review=True), MINI, exclude=every_ops)
    assert (r.team, r.rule) == ("triage", NO_MATCH_RULE)


def test_in_the_default_roster_a_returned_network_complaint_goes_to_the_city_then_the_province():
    nanshan = complaint(where=region("广东", "深圳", "南山"))
    assert route(nanshan, ROSTER).team == "net-sz-west"
    assert route(nanshan, ROSTER, exclude=frozenset({"net-sz-west"})).team == "net-sz"
    assert route(nanshan, ROSTER, exclude=frozenset({"net-sz-west", "net-sz"})).team == "net-gd"


def test_a_returned_billing_complaint_with_no_other_billing_team_goes_to_the_triage_desk():
    r = route(complaint(category="billing"), ROSTER, exclude=frozenset({"billing"}))
    assert (r.team, r.rule) == ("triage", NO_MATCH_RULE)
    assert "no rule routes it" in r.explanation[-1]


# -- home province (号码归属地) ---------------------------------------------------------------------

def test_billing_goes_by_the_numbers_home_province():
    in_shenzhen = complaint(category="billing", where=region("广东", "深圳", "南山"))
    assert route(in_shenzhen, MINI, home_province_code="430000").team == "bill-hn"
    assert route(in_shenzhen, MINI, home_province_code="440000").team == "bill-gd"
    assert route(in_shenzhen, MINI, home_province_code="110000").team == "bill-any"
    r = route(in_shenzhen, MINI, home_province_code="430000")
    assert "home province" in r.explanation[0] and "430000" in r.explanation[0]


def test_without_a_home_province_billing_falls_back_to_the_location():
    in_changsha = complaint(category="billing", where=region("湖南", "长沙", "岳麓"))
    r = route(in_changsha, MINI)
    assert r.team == "bill-hn"
    assert "not known: by location" in r.explanation[0]


def test_a_location_category_ignores_the_home_province():
    r = route(complaint(where=region("广东", "深圳", "南山")), MINI, home_province_code="430000")
    assert r.team == "ops-nanshan"


def test_a_bad_home_province_code_is_a_callers_bug():
    with pytest.raises(ValueError, match="not a province code"):
        route(complaint(category="billing"), MINI, home_province_code="440300")


# -- returns (退单) --------------------------------------------------------------------------------

def test_after_max_returns_the_triage_desk_decides():
    assert MINI.max_returns == 2
    assert route(complaint(), MINI, returns=1).team == "ops-nanshan"
    r = route(complaint(), MINI, returns=2, exclude=frozenset({"ops-nanshan", "ops-shenzhen"}))
    assert (r.team, r.rule) == ("triage", MAX_RETURNS_RULE)
    assert "returned 2 times" in r.explanation[0]
    assert route(complaint(), ROSTER, returns=3).rule == MAX_RETURNS_RULE
    assert route(complaint(), ROSTER, returns=2).rule == "network"


# -- repeats (重复投诉) and follow-ups (催单) -------------------------------------------------------

def test_a_repeat_goes_to_the_senior_desk_by_default():
    r = route(complaint(repeat_of=EARLIER), MINI, previous_team="ops-nanshan", previous_agent="ns-1")
    assert (r.team, r.rule, r.agent) == ("senior", "repeat", None)


def test_with_repeat_to_previous_handler_a_repeat_goes_back_to_who_handled_it():
    roster = mini_roster(repeat_to="previous_handler")
    r = route(complaint(repeat_of=EARLIER), roster, previous_team="ops-shenzhen", previous_agent="sz-2")
    assert (r.team, r.rule, r.agent) == ("ops-shenzhen", "repeat", "sz-2")
    assert "sz-2 of team ops-shenzhen" in r.explanation[-1]
    assert work_item(complaint(repeat_of=EARLIER), r).preferred_agent == "sz-2"


def test_the_previous_handler_falls_back_to_the_senior_desk_when_it_cannot_take_it():
    roster = mini_roster(repeat_to="previous_handler")
    repeat = complaint(repeat_of=EARLIER)
    r = route(repeat, roster)
    assert r.team == "senior" and any("not known" in line for line in r.explanation)
    r = route(repeat, roster, previous_team="ops-shenzhen", exclude=frozenset({"ops-shenzhen"}))
    assert r.team == "senior" and any("returned it" in line for line in r.explanation)
    assert route(repeat, roster, previous_team="gone-team").team == "senior"
    assert route(complaint(category="billing", repeat_of=EARLIER), roster, previous_team="ops-shenzhen").team == "senior"
    r = route(repeat, roster, previous_team="ops-shenzhen", previous_agent="left-the-company")
    assert (r.team, r.agent) == ("ops-shenzhen", None)


def test_a_follow_up_is_not_routed():
    assert route(complaint(follow_up_of=EARLIER), ROSTER) is None
    assert route(complaint(follow_up_of=EARLIER, channel="regulator"), ROSTER) is None


# -- language -------------------------------------------------------------------------------------

def test_among_several_teams_of_a_role_the_one_with_an_agent_speaking_the_language_is_preferred():
    other = complaint(category="other")
    assert route(other, ROSTER).team == "care-gd"
    assert route(other, ROSTER, language="zh").team == "care-gd"
    r = route(other, ROSTER, language="en")
    assert r.team == "care-intl"
    assert any("care-intl preferred: an agent speaks en" in line for line in r.explanation)
    assert route(other, ROSTER, language="en", exclude=frozenset({"care-intl"})).team == "care-gd"


def test_language_does_not_pull_a_complaint_away_from_its_local_team():
    data = mini_roster_data()
    data["teams"][2]["languages"] = ["zh", "en"]  # ops-guangdong speaks English; ops-nanshan does not
    data["teams"][2]["agents"][0]["languages"] = ["zh", "en"]
    roster = Roster.from_dict(data)
    assert route(complaint(), roster, language="en").team == "ops-nanshan"


def test_the_complaints_language_as_an_agent_must_speak_it():
    assert [complaint_language(x) for x in ("zh", "en", "mixed", None)] == ["zh", "en", None, None]


# -- rules in order -------------------------------------------------------------------------------

def test_the_first_matching_rule_wins_and_the_explanation_says_why():
    r = route(complaint(category="billing", channel="regulator", repeat_of=EARLIER, needs_review=True), ROSTER)
    assert (r.team, r.rule) == ("appeals", "regulator-channel")
    assert "rule regulator-channel matches (channel regulator) -> team appeals" in r.explanation


def test_nothing_matching_goes_to_the_triage_desk():
    r = route(complaint(category="device", needs_review=True), MINI)
    assert (r.team, r.rule) == ("triage", NO_MATCH_RULE)


def test_a_rule_on_regions_and_risk_flags():
    data = mini_roster_data()
    data["rules"].insert(0, {"name": "shenzhen-media", "team": "senior",
                             "match": {"regions": ["440300"], "risk_flags": ["media", "legal"]}})
    roster = Roster.from_dict(data)
    assert route(complaint(risk=("legal",)), roster).rule == "shenzhen-media"
    assert route(complaint(risk=("regulator",)), roster).rule == "network"
    assert route(complaint(risk=("legal",), where=region("广东", "广州", "天河")), roster).rule == "network"


def test_the_work_item_carries_the_category_as_the_skill():
    c = complaint(category="billing", priority="P2")
    item = work_item(c, route(c, ROSTER), language="en", enqueued_at=T0)
    assert (item.complaint_id, item.skill, item.priority, item.language, item.enqueued_at) == (
        cid(1), Category.BILLING, Priority.P2, "en", T0)


_WHERE = [region("广东", "深圳", "南山"), region("广东", "深圳", "福田"), region("广东", "广州", "天河"),
          region("广东", "佛山", "顺德"), region("广东", "珠海", "香洲"), Region(province="火星", city="某市")]


@settings(max_examples=300, deadline=None)
@given(category=st.sampled_from(list(Category)), channel=st.sampled_from(list(Channel)),
       priority=st.sampled_from(list(Priority)), risk=st.sets(st.sampled_from(list(RiskFlag))),
       needs_review=st.booleans(), repeat=st.booleans(), where=st.sampled_from(_WHERE),
       exclude=st.frozensets(st.sampled_from([t.id for t in ROSTER.teams])), returns=st.integers(0, 5),
       home=st.sampled_from([None, "440000", "430000"]), language=st.sampled_from([None, "zh", "en"]))
def test_every_route_is_a_team_with_the_skill_that_did_not_return_it_or_the_triage_desk(
        category, channel, priority, risk, needs_review, repeat, where, exclude, returns, home, language):
    c = complaint(category=category.value, channel=channel.value, priority=priority.value,
                  risk=tuple(f.value for f in risk), needs_review=needs_review,
                  repeat_of=EARLIER if repeat else None, where=where)
    r = route(c, ROSTER, exclude=exclude, returns=returns, home_province_code=home, language=language)
    assert r is not None and r.explanation
    if r.team == ROSTER.triage_team and r.rule in (NO_MATCH_RULE, MAX_RETURNS_RULE):
        return
    assert category in ROSTER.team(r.team).skills
    assert r.team not in exclude
    assert returns < ROSTER.max_returns
