"""`complaints replay assign` (the router chained with the teams' dispatcher) on the recorded scenario gives
the assignments written by hand beside it, from the story and the packaged roster."""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from complaint_stream.cli.replay_cmd import run_replay
from complaint_stream.domain.assignment import Roster
from complaint_stream.domain.assignment.stages import AssignStage, DispatchStage
from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.stage import Refused, run_in_event_time
from complaint_stream.schemas import PAYLOADS, AgentPresenceChanged, decode
from tests.support import assign_scenario

DATA = Path(__file__).resolve().parents[2] / "data"
SCENARIO = DATA / "assign_scenario.jsonl"
EXPECTED = json.loads((DATA / "assign_scenario.expected.json").read_text(encoding="utf-8"))


def _replay(lines: list[bytes], settings) -> tuple[int, list[Any], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_replay("assign", lines, settings, until=None, policy_files=[])
    return code, [decode(line.encode(), PAYLOADS) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return SCENARIO.read_bytes().splitlines(keepends=True)


@pytest.fixture(scope="module")
def replayed(lines, base_settings):
    return _replay(lines, base_settings)  # defaults only: the packaged roster


def of_type(events, name):
    return [e for e in events if type(e.data).__name__ == name]


def china_hhmm(t) -> str:
    return t.astimezone(CHINA_TZ).strftime("%H:%M")


def assignments(events) -> list[list[Any]]:
    return [[a.complaint_id, a.cause, a.team, a.agent_id, a.queue_position, china_hhmm(a.assigned_at)]
            for a in (e.data for e in of_type(events, "ComplaintAssigned"))]


def refusals(err: str) -> list[str]:
    return [line.split(": refused: ", 1)[1].split(":", 1)[0] for line in err.splitlines() if ": refused: " in line]


def test_the_scenario_file_is_the_story_in_the_generator(lines):
    story = sorted(assign_scenario.events(), key=lambda e: e.time)
    assert [json.loads(line) for line in lines] == [json.loads(e.model_dump_json()) for e in story]


def test_every_assignment_in_order(replayed):
    code, events, err = replayed
    assert code == 0, err
    assert assignments(events) == EXPECTED["assignments"]
    assert refusals(err) == EXPECTED["refused"]
    # the router's work comes first (one stage after the other), then the dispatcher's decisions
    kinds = [type(e.data).__name__ for e in events]
    assert kinds == sorted(kinds, key=lambda k: k != "TeamWork")


def test_each_complaint_ends_with_its_team_and_agent_and_went_through_its_causes(replayed):
    _, events, _ = replayed
    final: dict[str, list[Any]] = {}
    causes: dict[str, list[str]] = defaultdict(list)
    for a in (e.data for e in of_type(events, "ComplaintAssigned")):
        final[a.complaint_id] = [a.team, a.agent_id]
        causes[a.complaint_id].append(a.cause)
    assert final == EXPECTED["final"]
    expected_causes: dict[str, list[str]] = defaultdict(list)
    for cid, cause, *_ in EXPECTED["assignments"]:
        expected_causes[cid].append(cause)
    assert dict(causes) == dict(expected_causes)


def test_the_routers_work_per_complaint_and_the_rules(replayed):
    _, events, _ = replayed
    work: dict[str, list[str]] = defaultdict(list)
    for w in (e.data for e in of_type(events, "TeamWork")):
        work[w.complaint_id].append(f"{w.kind}:{w.team}")
    assert dict(work) == EXPECTED["work"]
    rules: dict[str, list[str]] = defaultdict(list)
    returns = {}
    for a in (e.data for e in of_type(events, "ComplaintAssigned")):
        if a.cause in ("routed", "returned"):
            rules[a.complaint_id].append(a.rule)
        if a.returns:
            returns[a.complaint_id] = a.returns
    assert dict(rules) == EXPECTED["rules"]
    assert returns == EXPECTED["returns"]


def test_billing_goes_by_the_numbers_home_province_not_where_the_customer_is(replayed):
    _, events, _ = replayed
    for cid, province in EXPECTED["home_province"].items():
        routed = next(e.data for e in of_type(events, "ComplaintAssigned")
                      if e.data.complaint_id == cid and e.data.cause == "routed")
        assert f"号码归属地): province {province}" in routed.explanation[0]
        assert "430000" not in " ".join(routed.explanation)  # 湖南, where the customer complained from


def test_what_each_agent_holds_at_the_end():
    """The two stages with their tables, as the two workers keep them: the dispatcher's state is the
    open assignments, and no queue is left."""
    roster = Roster.load()
    story = assign_scenario.events()
    presence = [e for e in story if isinstance(e.data, AgentPresenceChanged)]
    routes: dict[str, Any] = {}
    teams: dict[str, Any] = {}
    work = [o.event for o in run_in_event_time(AssignStage(roster), [e for e in story if e not in presence],
                                                state=routes)]
    list(run_in_event_time(DispatchStage(roster), [*work, *presence], state=teams))
    loads = {a.id: sorted(a.open) for t in teams.values() for a in t.agents if a.open}
    assert loads == EXPECTED["loads"]
    assert all(not t.queue for t in teams.values())
    assert {cid: r.team for cid, r in routes.items()} == {cid: team for cid, (team, _) in EXPECTED["final"].items()}


def test_every_line_twice_assigns_nothing_more(lines, replayed, base_settings):
    """Every event delivered twice (the same ids): no assignment is made twice or changed, and nothing is
    refused (the second delivery of C14's return is recognised by its id, not taken for a new return)."""
    _, once, _ = replayed
    code, twice, err = _replay([*lines, *lines], base_settings)
    assert code == 0
    assigned_once = [e.model_dump() for e in of_type(once, "ComplaintAssigned")]
    assert [e.model_dump() for e in of_type(twice, "ComplaintAssigned")] == assigned_once
    assert refusals(err) == EXPECTED["doubled_refused"]
    assert f"{len(assigned_once)} to complaints.assigned.v1" in err.splitlines()[-1]


def test_a_move_to_a_full_agent_of_another_team_keeps_the_complaint_somewhere():
    """C11 (with the appeals desk, appeals-01) moved at 08:35 to net-szw-03, which holds 8 of 8 then: the move
    to the team stands (the complaint has left appeals), and net-sz-west takes it as any complaint of its
    own, net-szw-03 preferred when it has room. (A move used to leave it held by no agent and in no queue.)"""
    roster = Roster.load()
    story = [e for e in assign_scenario.events() if e.time <= assign_scenario.at("08:30")]
    story.append(assign_scenario.reassign(11, "08:35", "net-sz-west", "net-szw-03", "sup-west", "engineer on site"))
    presence = [e for e in story if isinstance(e.data, AgentPresenceChanged)]
    routes: dict[str, Any] = {}
    teams: dict[str, Any] = {}
    refused: list[Refused] = []
    work = [o.event for o in run_in_event_time(AssignStage(roster), [e for e in story if e not in presence],
                                                state=routes, on_refused=lambda e, r: refused.append(r))]
    list(run_in_event_time(DispatchStage(roster), [*work, *presence], state=teams,
                           on_refused=lambda e, r: refused.append(r)))
    cid = assign_scenario.cid(11)
    where = {name for name, t in teams.items() if t.holder(cid) is not None or t.position(cid) is not None}
    assert where == {routes[cid].team}  # held or waiting in exactly the team the router says
