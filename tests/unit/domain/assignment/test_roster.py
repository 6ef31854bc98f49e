"""The roster file: the packaged default for Guangdong, and broken files refused with the problem named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from complaint_stream.domain.assignment import NO_MATCH_RULE, Roster, RosterError, route
from complaint_stream.domain.assignment.roster import WorkingHours, division_codes
from complaint_stream.schemas import Category, Channel, Region
from tests.unit.domain.assignment.builders import complaint, default_roster_data, mini_roster_data

ROSTER = Roster.load()


# -- the default roster ---------------------------------------------------------------------------

def test_the_default_roster_loads_and_names_the_triage_desk():
    assert ROSTER.triage_team == "triage"
    assert ROSTER.max_returns == 3
    assert ROSTER.repeat_to == "senior_desk"


def test_every_team_has_two_to_six_agents_with_capacities_five_to_fifteen():
    for team in ROSTER.teams:
        assert 2 <= len(team.agents) <= 6, team.id
        assert all(5 <= a.capacity <= 15 for a in team.agents), team.id


def test_some_agents_speak_english():
    speakers = [a.id for t in ROSTER.teams for a in t.agents if "en" in t.languages_of(a)]
    assert len(speakers) >= 10
    assert ROSTER.team("care-intl").speaks("en") and not ROSTER.team("care-gd").speaks("en")


def test_region_codes_are_real_guangdong_divisions():
    table = division_codes()
    codes = {c for t in ROSTER.teams for c in t.regions}
    assert {"440100", "440300", "440600", "440305"} <= codes
    assert all(c in table and c.startswith("44") for c in codes)
    assert table["440305"].city == "440300" and table["440106"].province == "440000"


def test_the_desks_the_operator_needs_are_there():
    ids = {t.id for t in ROSTER.teams}
    assert {"appeals", "senior", "triage", "billing", "vas", "portability", "device", "fraud-infosec", "care-gd",
            "net-gz", "net-sz", "net-fs", "net-gd", "bb-gz", "bb-sz", "bb-fs", "bb-gd"} <= ids
    assert ROSTER.region_mode(Category.BILLING) == "home"
    assert ROSTER.region_mode(Category.NUMBER_PORTABILITY) == "home"
    assert ROSTER.region_mode(Category.NETWORK) == "location"


GUANGDONG = sorted(c for c in division_codes() if c.startswith("44"))


def _region_of(code: str) -> Region:
    codes = division_codes()[code]
    return Region(province="广东省", city="某市", district="某区" if codes.district else "",
                  province_code=codes.province, city_code=codes.city, district_code=codes.district)


@pytest.mark.parametrize("category", list(Category))
def test_every_category_is_routable_everywhere_in_guangdong_and_beyond(category):
    """Every division of Guangdong, a region that did not resolve and one outside the province, on every
    channel: a rule (not the triage desk's fallback) routes it to a team with the skill."""
    wheres = [_region_of(c) for c in GUANGDONG] + [Region(province="火星", city="某市"),
                                                    Region(province="北京", city="北京", district="朝阳")]
    assert len(wheres) > 100
    for where in wheres:
        for channel in Channel:
            for home in (None, "440000", "430000"):
                r = route(complaint(category=category.value, channel=channel.value, where=where), ROSTER,
                          home_province_code=home)
                assert r is not None and r.rule != NO_MATCH_RULE, (category, where, channel)
                assert category in ROSTER.team(r.team).skills


@pytest.mark.parametrize("category, district, team", [
    ("network", ("深圳", "南山"), "net-sz-west"),
    ("network", ("深圳", "福田"), "net-sz"),
    ("network", ("广州", "天河"), "net-gz"),
    ("network", ("佛山", "顺德"), "net-fs"),
    ("network", ("珠海", "香洲"), "net-gd"),
    ("broadband", ("广州", "天河"), "bb-gz"),
    ("broadband", ("深圳", "南山"), "bb-sz"),
    ("broadband", ("东莞", ""), "bb-gd"),
    ("billing", ("深圳", "南山"), "billing"),
    ("vas_subscription", ("深圳", "南山"), "vas"),
    ("number_portability", ("佛山", "南海"), "portability"),
    ("device", ("深圳", "南山"), "device"),
    ("security_fraud", ("广州", "越秀"), "fraud-infosec"),
    ("service_quality", ("广州", "越秀"), "care-gd"),
    ("business_handling", ("广州", "越秀"), "care-gd"),
    ("marketing", ("广州", "越秀"), "care-gd"),
    ("other", ("广州", "越秀"), "care-gd"),
])
def test_the_default_roster_sends_each_category_where_an_operator_expects(category, district, team):
    city, dist = district
    assert route(complaint(category=category, where=Region(province="广东", city=city, district=dist)),
                 ROSTER).team == team


def test_the_regulator_desk_takes_every_regulator_complaint_and_every_p1_risk_case():
    assert route(complaint(category="billing", channel="regulator"), ROSTER).team == "appeals"
    assert route(complaint(category="network", priority="P1", risk=("media",)), ROSTER).team == "appeals"
    assert route(complaint(category="network", priority="P2", risk=("media",)), ROSTER).team == "net-sz-west"
    assert route(complaint(category="network", priority="P1"), ROSTER).team == "net-sz-west"


def test_repeats_go_to_the_senior_desk_and_unsure_classifications_to_triage():
    assert route(complaint(category="billing", repeat_of="CMP20261101-000000000009"), ROSTER).team == "senior"
    r = route(complaint(category="billing", needs_review=True), ROSTER)
    assert (r.team, r.rule) == ("triage", "needs-review")


# -- broken files ---------------------------------------------------------------------------------

def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "roster.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _team(data: dict[str, Any], team_id: str) -> dict[str, Any]:
    return next(t for t in data["teams"] if t["id"] == team_id)


def _rule(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["rules"] if r["name"] == name)


def _unknown_team(d):
    _rule(d, "billing")["team"] = "bililng"


def _unknown_role(d):
    _rule(d, "network")["role"] = "netops"


def _duplicate_team(d):
    _team(d, "vas")["id"] = "billing"


def _duplicate_agent(d):
    _team(d, "vas")["agents"][1]["id"] = "billing-01"


def _duplicate_rule(d):
    _rule(d, "device")["name"] = "billing"


def _capacity_zero(d):
    _team(d, "vas")["agents"][0]["capacity"] = 0


def _capacity_string(d):
    _team(d, "vas")["agents"][0]["capacity"] = "10"


def _short_code(d):
    _team(d, "net-sz")["regions"] = ["44030"]


def _unknown_code(d):
    _team(d, "net-sz")["regions"] = ["440399"]


def _unknown_rule_code(d):
    _rule(d, "network")["match"]["regions"] = ["449999"]


def _unroutable_category(d):
    d["rules"] = [r for r in d["rules"] if r["name"] != "device"]


def _unroutable_outside_cities(d):
    d["teams"] = [t for t in d["teams"] if t["id"] != "bb-gd"]


def _agent_skill(d):
    _team(d, "vas")["agents"][0]["skills"] = ["billing"]


def _agent_language(d):
    _team(d, "vas")["agents"][0]["languages"] = ["en"]


def _unspoken_language(d):
    _team(d, "billing")["agents"][0]["languages"] = ["zh"]


def _unknown_triage(d):
    d["triage_team"] = "triage-desk"


def _triage_lacks_skill(d):
    _team(d, "triage")["skills"] = ["network"]


def _rule_both_targets(d):
    _rule(d, "billing")["role"] = "billing_back_office"


def _rule_skill(d):
    _rule(d, "billing")["match"]["categories"] = ["billing", "device"]


def _previous_handler_without_repeat_rule(d):
    d["repeat_to"] = "previous_handler"
    d["rules"] = [r for r in d["rules"] if r["name"] != "repeat-complaint"]


def _hours_backwards(d):
    _team(d, "vas")["hours"] = {"days": ["mon"], "start": "18:00", "end": "09:00"}


def _hours_bad_clock(d):
    _team(d, "vas")["hours"] = {"days": ["mon"], "start": "09:00", "end": "25:00"}


def _hours_bad_day(d):
    _team(d, "vas")["hours"] = {"days": ["monday"], "start": "09:00", "end": "18:00"}


def _unknown_category(d):
    _team(d, "vas")["skills"] = ["vas"]


def _unknown_key(d):
    _team(d, "vas")["agents"][0]["capcity"] = 5


def _bad_strategy(d):
    _team(d, "vas")["strategy"] = "random"


def _bad_presence(d):
    _team(d, "vas")["agents"][0]["presence"] = "busy"


def _reserved_rule_name(d):
    _rule(d, "device")["name"] = "no_match"


def _bad_max_returns(d):
    d["max_returns"] = 0


@pytest.mark.parametrize("breaks, key, expected", [
    (_unknown_team, "rules[7].team", "unknown team 'bililng'"),
    (_unknown_role, "rules[5].role", "no team has role 'netops'"),
    (_duplicate_team, "teams[10].id", "duplicate team id 'billing' (also teams[9].id)"),
    (_duplicate_agent, "teams[10].agents[1].id", "duplicate agent id 'billing-01'"),
    (_duplicate_rule, "rules[10].name", "duplicate rule name 'billing'"),
    (_capacity_zero, "teams[10].agents[0].capacity", "greater than or equal to 1"),
    (_capacity_string, "teams[10].agents[0].capacity", "expected a whole number"),
    (_short_code, "teams[1].regions[0]", "should match pattern"),
    (_unknown_code, "teams[1].regions[0]", "440399 is not a GB/T 2260 division code"),
    (_unknown_rule_code, "rules[5].match.regions[0]", "449999 is not a GB/T 2260 division code"),
    (_unroutable_category, "rules", "no rule routes category device in an unknown region"),
    (_unroutable_outside_cities, "rules", "no rule routes category broadband"),
    (_agent_skill, "teams[10].agents[0].skills", "billing not among the team's skills"),
    (_agent_language, "teams[10].agents[0].languages", "en not among the team's languages"),
    (_unspoken_language, "teams[9].languages", "no agent of team billing speaks en"),
    (_unknown_triage, "triage_team", "unknown team 'triage-desk'"),
    (_triage_lacks_skill, "triage_team", "lacks skill(s) broadband"),
    (_rule_both_targets, "rules[7]", "exactly one of team"),
    (_rule_skill, "rules[7]", "sends device to team billing, which lacks that skill"),
    (_previous_handler_without_repeat_rule, "repeat_to", "no rule matches repeat: true"),
    (_hours_backwards, "teams[10].hours", "end 09:00 must be after start 18:00"),
    (_hours_bad_clock, "teams[10].hours.end", "should match pattern"),
    (_hours_bad_day, "teams[10].hours.days[0]", "monday"),
    (_unknown_category, "teams[10].skills[0]", "unknown category \"vas\""),
    (_unknown_key, "teams[10].agents[0].capcity", "unknown key; expected one of: id, name, skills"),
    (_bad_strategy, "teams[10].strategy", "random"),
    (_bad_presence, "teams[10].agents[0].presence", "busy"),
    (_reserved_rule_name, "rules[10].name", "reserved"),
    (_bad_max_returns, "max_returns", "greater than or equal to 1"),
])
def test_a_broken_roster_is_refused_with_the_file_the_key_and_the_problem(tmp_path, breaks, key, expected):
    data = default_roster_data()
    breaks(data)
    path = write(tmp_path, data)
    with pytest.raises(RosterError) as caught:
        Roster.load(path)
    line = next((p for p in caught.value.problems if p.startswith(f"{path}: {key}: ") or
                 p.startswith(f"{path}: {key} ")), None)
    assert line is not None and expected in line, caught.value.problems


def test_every_problem_gets_its_own_line(tmp_path):
    data = default_roster_data()
    for breaks in (_unknown_team, _unknown_role, _duplicate_agent, _unknown_code, _agent_skill):
        breaks(data)
    path = write(tmp_path, data)
    with pytest.raises(RosterError) as caught:
        Roster.load(path)
    assert len(caught.value.problems) == 5, caught.value.problems
    assert str(caught.value).count("\n") == 4
    assert all(p.startswith(f"{path}: ") for p in caught.value.problems)


def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "roster.json"
    path.write_text("{teams: []", encoding="utf-8")
    with pytest.raises(RosterError, match="not valid JSON"):
        Roster.load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(RosterError, match="cannot be read"):
        Roster.load(tmp_path / "nope.json")


def test_an_operator_file_is_read_from_a_path(tmp_path):
    data = default_roster_data()
    data["max_returns"] = 5
    assert Roster.load(write(tmp_path, data)).max_returns == 5


def test_the_mini_roster_of_the_routing_tests_is_sound():
    assert Roster.from_dict(mini_roster_data()).team("ops-any").provincial


@pytest.mark.parametrize("now, open_", [
    ("2026-12-01T00:59:00+00:00", False),  # Tue 08:59 China
    ("2026-12-01T01:00:00+00:00", True),   # Tue 09:00 China
    ("2026-12-01T09:59:00+00:00", True),   # Tue 17:59 China
    ("2026-12-01T10:00:00+00:00", False),  # Tue 18:00 China
    ("2026-12-06T02:00:00+00:00", False),  # Sun 10:00 China
    ("2026-12-05T16:30:00+00:00", False),  # Sun 00:30 China, still Saturday in UTC
    ("2026-12-01T10:00:00", True),         # naive: China time already
])
def test_working_hours_are_china_time(now, open_):
    from datetime import datetime

    hours = WorkingHours(days=("mon", "tue", "wed", "thu", "fri", "sat"), start="09:00", end="18:00")
    assert hours.is_open(datetime.fromisoformat(now)) is open_
