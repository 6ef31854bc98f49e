"""The router (``AssignStage``, keyed by complaint) and the dispatcher (``DispatchStage``, keyed by team),
chained in event time as the two workers are through the internal work topic."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from complaint_stream.domain.assignment.stages import AssignStage, DispatchStage
from complaint_stream.domain.stage import Refused, run_in_event_time
from complaint_stream.schemas import (
    AgentPresenceChanged,
    CaseChange,
    CaseUpdated,
    ComplaintAssigned,
    Envelope,
    PreviousHandler,
    Priority,
    ReassignComplaint,
    ReturnComplaint,
    TeamWork,
    TicketStatus,
    wrap,
)
from complaint_stream.topics import ASSIGN_LINKS, ASSIGN_WORK
from tests.unit.domain.assignment.builders import MIN, T0, cid, complaint, mini_roster

HOUR_ = 60 * MIN


def env(payload: Any, at: datetime, subject: str | None = None) -> Envelope[Any]:
    return wrap(payload, source="/test", subject=subject or getattr(payload, "complaint_id", None),
                event_id=str(uuid.uuid4()), time=at)


def classified(n: int, at: datetime = T0, **kw: Any) -> Envelope[Any]:
    return env(complaint(n, **kw).model_copy(update={"received_at": at}), at)


def case(n: int, at: datetime, status: str, change: str = "status", handler: str | None = None) -> Envelope[Any]:
    c = complaint(n)
    return env(CaseUpdated(complaint_id=cid(n), change=CaseChange(change), sequence=1, at=at,
                           status=TicketStatus(status), category=c.category, priority=c.priority, channel=c.channel,
                           received_at=T0, first_contact_at=T0, handler=handler), at)


def returned(n: int, team: str, at: datetime, code: str = "not_our_remit") -> Envelope[Any]:
    return env(ReturnComplaint(complaint_id=cid(n), team=team, reason_code=code, requested_by="lead-1"), at)


def reassign(n: int, team: str, at: datetime, agent: str | None = None) -> Envelope[Any]:
    return env(ReassignComplaint(complaint_id=cid(n), team=team, agent_id=agent, requested_by="sup-1",
                                 reason="VIP"), at)


def presence(team: str, agent: str, value: str, at: datetime) -> Envelope[Any]:
    return env(AgentPresenceChanged(team=team, agent_id=agent, presence=value, at=at), at, subject=agent)


@dataclass
class Run:
    work: list[TeamWork]
    assigned: list[ComplaintAssigned]
    routes: dict[str, Any]
    teams: dict[str, Any]
    refused: list[tuple[Envelope[Any], Refused]] = field(default_factory=list)

    def last(self, n: int) -> ComplaintAssigned:
        return [a for a in self.assigned if a.complaint_id == cid(n)][-1]

    def holders(self) -> Counter[str]:
        """Open complaints per agent, from the dispatcher's state."""
        return Counter({a.id: a.load for t in self.teams.values() for a in t.agents})


def drive(events: list[Envelope[Any]], *, agent_events: list[Envelope[Any]] = (), roster=None,
          routes=None, teams=None, until: datetime | None = None, links: list[Envelope[Any]] | None = None) -> Run:
    roster = roster or mini_roster()
    refused: list[tuple[Envelope[Any], Refused]] = []
    routes = {} if routes is None else routes
    teams = {} if teams is None else teams
    outputs = list(run_in_event_time(AssignStage(roster), events, state=routes, until=until, feedback=[ASSIGN_LINKS],
                                     on_refused=lambda e, r: refused.append((e, r))))
    asked = [o for o in outputs if o.topic is ASSIGN_LINKS]
    assert all(o.key == o.event.data.complaint_id for o in asked)  # keyed by the complaint asked or answered
    if links is not None:
        links.extend(o.event for o in asked)
    outputs = [o for o in outputs if o.topic is not ASSIGN_LINKS]
    assert all(o.topic is ASSIGN_WORK and o.key == o.event.data.team for o in outputs)  # keyed by team
    work = [o.event for o in outputs]
    assigned = [o.event.data for o in run_in_event_time(DispatchStage(roster), [*work, *agent_events], state=teams,
                                                        on_refused=lambda e, r: refused.append((e, r)))]
    return Run([w.data for w in work], assigned, routes, teams, refused)


def test_a_team_fills_its_agents_evenly_then_queues_in_order():
    # ops-nanshan: 2 agents of capacity 5; 南山 network complaints go there first
    events = [classified(n, T0 + n * MIN) for n in range(1, 16)]
    run = drive(events)
    to_agents = [a for a in run.assigned if a.agent_id]
    queued = [a for a in run.assigned if a.agent_id is None]
    assert {a.team for a in run.assigned} == {"ops-nanshan"}
    assert Counter(a.agent_id for a in to_agents) == {"ns-1": 5, "ns-2": 5}
    assert [a.queue_position for a in queued] == [1, 2, 3, 4, 5]
    assert all(a.rule == "network" and a.cause == "routed" and a.explanation for a in run.assigned)
    assert run.holders() == {"ns-1": 5, "ns-2": 5}


def test_capacity_freed_by_an_end_serves_the_queue_most_urgent_first():
    events = [classified(n, T0 + n * MIN) for n in range(1, 13)]
    events.append(classified(13, T0 + 13 * MIN, priority="P1"))
    ended = [case(n, T0 + HOUR_ + n * MIN, "resolved") for n in (1, 2)]
    run = drive([*events, *ended])
    dequeued = [a for a in run.assigned if a.cause == "dequeued"]
    assert [a.complaint_id for a in dequeued] == [cid(13), cid(11)]  # P1 first, then the oldest P3
    assert all(a.agent_id for a in dequeued)
    assert sum(run.holders().values()) == 10  # 13 offered, 2 ended, 1 still waiting


def test_replaying_every_input_assigns_nothing_twice():
    events = [classified(n, T0 + n * MIN) for n in range(1, 13)] + [case(1, T0 + HOUR_, "resolved")]
    first = drive(events)
    again = drive(events, routes=first.routes, teams=first.teams)
    assert again.work == [] and again.assigned == []
    assert first.holders() == again.holders()


def test_a_returned_complaint_goes_elsewhere_and_after_max_returns_to_triage():
    run = drive([classified(1), returned(1, "ops-nanshan", T0 + MIN), returned(1, "ops-shenzhen", T0 + 2 * MIN)])
    teams = [a.team for a in run.assigned if a.agent_id]
    assert teams == ["ops-nanshan", "ops-shenzhen", "triage"]  # max_returns 2 in the mini roster
    assert run.last(1).cause == "returned" and run.last(1).returns == 2 and run.last(1).rule == "max_returns"
    assert run.holders()["ns-1"] + run.holders()["ns-2"] == 0  # the withdrawn complaint left its agent


def test_a_return_by_a_team_that_does_not_hold_it_is_refused():
    run = drive([classified(1), returned(1, "ops-guangdong", T0 + MIN), returned(2, "ops-nanshan", T0 + MIN)])
    assert [r.rule for _e, r in run.refused] == ["not_with_team", "unknown_complaint"]


def test_a_supervisor_moves_a_complaint_to_an_agent_here_or_in_another_team():
    run = drive([classified(1), reassign(1, "ops-nanshan", T0 + MIN, agent="ns-2"),
                 reassign(1, "desk", T0 + 2 * MIN, agent="desk-2"), reassign(1, "desk", T0 + 3 * MIN, agent="nobody")])
    moves = [(a.team, a.agent_id, a.cause) for a in run.assigned]
    assert moves == [("ops-nanshan", "ns-1", "routed"), ("ops-nanshan", "ns-2", "reassigned"),
                     ("desk", "desk-2", "reassigned")]
    assert run.holders() == {"ns-1": 0, "ns-2": 0, "desk-1": 0, "desk-2": 1}
    assert [r.rule for _e, r in run.refused] == ["unknown_agent"]


def test_a_follow_up_is_not_routed_and_an_end_for_it_changes_nothing():
    run = drive([classified(1, follow_up_of=cid(9)), case(1, T0 + MIN, "resolved")])
    assert run.work == [] and run.assigned == [] and run.routes == {}


def test_a_reopened_complaint_goes_back_to_its_agent():
    run = drive([classified(1), case(1, T0 + MIN, "inProgress", handler="ns-1"), case(1, T0 + HOUR_, "resolved"),
                 case(1, T0 + 2 * HOUR_, "inProgress", change="reopened")])
    assert [(a.agent_id, a.cause) for a in run.assigned] == [("ns-1", "routed"), ("ns-1", "reopened")]


def test_an_agent_away_takes_nothing_new_and_takes_waiting_work_when_back():
    away = [presence("ops-nanshan", "ns-1", "away", T0), presence("ops-nanshan", "ns-2", "away", T0)]
    back = presence("ops-nanshan", "ns-2", "available", T0 + HOUR_)
    # the presence events reach the dispatcher before the offers (same topic order as their times)
    run = drive([classified(n, T0 + n * MIN) for n in range(1, 4)], agent_events=[*away, back])
    assert [a.queue_position for a in run.assigned[:3]] == [1, 2, 3]
    assert [(a.complaint_id, a.agent_id, a.cause) for a in run.assigned[3:]] == [
        (cid(1), "ns-2", "dequeued"), (cid(2), "ns-2", "dequeued"), (cid(3), "ns-2", "dequeued")]


def test_billing_goes_by_the_numbers_home_province():
    run = drive([classified(1, category="billing").model_copy(
        update={"data": complaint(1, category="billing").model_copy(update={"home_province_code": "430000"})})])
    assert run.assigned[0].team == "bill-hn"


@pytest.mark.parametrize("payload", ["unknown team work", "unknown team presence"])
def test_work_for_a_team_not_in_the_roster_is_refused(payload):
    if payload == "unknown team work":
        e = env(TeamWork(kind="offer", team="gone", complaint_id=cid(1), at=T0), T0)
    else:
        e = presence("gone", "x-1", "available", T0)
    refused: list = []
    out = list(run_in_event_time(DispatchStage(mini_roster()), [e], on_refused=lambda ev, r: refused.append(r)))
    assert out == [] and [r.rule for r in refused] == ["unknown_team"]


def test_an_offer_beyond_the_queue_bound_is_refused_not_stored(monkeypatch):
    from complaint_stream.domain.assignment import stages

    monkeypatch.setattr(stages, "MAX_QUEUE", 3)
    away = [presence("ops-nanshan", "ns-1", "away", T0), presence("ops-nanshan", "ns-2", "away", T0)]
    run = drive([classified(n, T0 + n * MIN) for n in range(1, 6)], agent_events=away)
    assert [a.queue_position for a in run.assigned] == [1, 2, 3]
    assert [r.rule for _e, r in run.refused] == ["team_queue_full", "team_queue_full"]
    assert len(run.teams["ops-nanshan"].queue) == 3


def test_a_raised_priority_moves_a_waiting_complaint_up_the_queue():
    events = [classified(n, T0 + n * MIN) for n in range(1, 14)]  # 10 held, 11-13 wait
    raised = case(13, T0 + 20 * MIN, "acknowledged", change="priority")
    raised = raised.model_copy(update={"data": raised.data.model_copy(update={"priority": Priority.P1})})
    run = drive([*events, raised, case(1, T0 + HOUR_, "resolved")])
    assert [w.complaint_id for w in run.teams["ops-nanshan"].queue] == [cid(11), cid(12)]
    assert [a.complaint_id for a in run.assigned if a.cause == "dequeued"] == [cid(13)]
    assert [w.kind for w in run.work if w.complaint_id == cid(13)] == ["offer", "reprioritise"]


# -- repeat_to: previous_handler (重复投诉回原处理人) ---------------------------------------------------

def handled(n: int, at: datetime, agent: str) -> Envelope[Any]:
    """The lifecycle reporting complaint ``n`` handled by ``agent`` and resolved."""
    return case(n, at, "resolved", change="resolved", handler=agent)


def test_with_previous_handler_a_repeat_asks_the_complaint_it_repeats_and_goes_back_to_its_agent():
    roster = mini_roster(repeat_to="previous_handler")
    links: list[Envelope[Any]] = []
    first = [classified(1, T0), case(1, T0 + MIN, "inProgress", handler="ns-2"), handled(1, T0 + HOUR_, "ns-2")]
    run = drive([*first, classified(2, T0 + 2 * HOUR_, repeat_of=cid(1))], roster=roster, links=links)
    ask, answer = (e.data for e in links)
    assert (ask.kind, ask.complaint_id, ask.other_id) == ("ask", cid(1), cid(2))
    assert (answer.kind, answer.complaint_id, answer.other_id) == ("answer", cid(2), cid(1))
    first_team = run.last(1).team
    assert (answer.known, answer.team, answer.agent_id) == (True, first_team, "ns-2")
    second = run.last(2)
    assert (second.team, second.agent_id, second.rule) == (first_team, "ns-2", "repeat")
    assert any("previous handler" in line for line in second.explanation)
    assert run.routes[cid(2)].asked_at is None and run.routes[cid(2)].team == first_team


def test_a_repeat_of_a_complaint_never_routed_here_goes_to_the_repeat_rules_own_team():
    roster = mini_roster(repeat_to="previous_handler")
    run = drive([classified(2, T0, repeat_of=cid(99))], roster=roster)
    second = run.last(2)
    assert second.team == "senior" and second.rule == "repeat"
    assert any("never routed here" in line for line in second.explanation)


def test_without_an_answer_the_repeat_is_routed_after_the_ask_timeout_and_a_late_answer_changes_nothing():
    roster = mini_roster(repeat_to="previous_handler")
    stage = AssignStage(roster)
    routes: dict[str, Any] = {}
    asked = list(run_in_event_time(stage, [classified(2, T0, repeat_of=cid(1))], state=routes))  # no feedback
    assert [o.topic for o in asked] == [ASSIGN_LINKS]
    waiting = routes[cid(2)]
    assert waiting.asked_at == T0 and not waiting.routed and stage.next_due(waiting) == T0 + stage.ask_timeout
    state, outputs = stage.due(waiting, T0 + stage.ask_timeout - MIN)
    assert state is waiting and tuple(outputs) == ()
    state, outputs = stage.due(waiting, T0 + stage.ask_timeout)
    (offer,) = outputs
    assert offer.event.data.team == "senior" and "did not say who handled it" in offer.event.data.explanation[0]
    late = wrap(PreviousHandler(kind="answer", complaint_id=cid(2), other_id=cid(1), at=T0 + 5 * MIN, known=True,
                                team="ops-nanshan", agent_id="ns-1"), source="/test", subject=cid(2),
                event_id=str(uuid.uuid4()), time=T0 + 5 * MIN)
    assert stage.apply(state, late, T0 + 5 * MIN) == (state, ())


def test_a_repeat_waiting_for_its_answer_cannot_be_returned_and_an_end_or_a_supervisor_decides_it():
    roster = mini_roster(repeat_to="previous_handler")
    stage = AssignStage(roster)
    routes: dict[str, Any] = {}
    list(run_in_event_time(stage, [classified(2, T0, repeat_of=cid(1)), classified(3, T0, repeat_of=cid(1))],
                           state=routes))
    with pytest.raises(Refused) as refused:
        stage.apply(routes[cid(2)], returned(2, "senior", T0 + MIN), T0 + MIN)
    assert refused.value.rule == "not_with_team"
    ended, outputs = stage.apply(routes[cid(2)], case(2, T0 + MIN, "cancelled", change="cancelled"), T0 + MIN)
    assert ended is not None and tuple(outputs) == () and stage.next_due(ended) == T0 + MIN + stage.keep_ended
    moved, outputs = stage.apply(routes[cid(3)], reassign(3, "desk", T0 + MIN, agent="desk-2"), T0 + MIN)
    (offer,) = outputs
    assert (offer.event.data.kind, offer.event.data.team, offer.event.data.agent_id) == ("offer", "desk", "desk-2")
    assert moved is not None and moved.routed and moved.team == "desk"


def test_with_the_default_senior_desk_a_repeat_is_routed_at_once_without_asking():
    links: list[Envelope[Any]] = []
    run = drive([classified(1, T0), classified(2, T0 + MIN, repeat_of=cid(1))], links=links)
    assert links == [] and run.last(2).team == "senior"
