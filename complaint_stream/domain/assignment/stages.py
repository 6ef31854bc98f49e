"""Assignment as two stages of the generic runtime (派单 and 坐席分配), keyed two ways.

:class:`AssignStage` (worker ``assign``) is keyed by complaint id, like every complaint topic. It routes
each classified complaint to a team (:func:`routing.route`, the roster's rules), keeps what a later
decision about the complaint needs (the classification, the team it is with, the teams that returned it)
and tells that team what to do on the internal topic ``ASSIGN_WORK``, keyed by team:

* ``offer``    a complaint routed to the team (or moved there by a supervisor: with ``agent_id``);
* ``withdraw`` a complaint that left the team (returned, 退单, or moved to another team);
* ``release``  a complaint that ended (the lifecycle reported it resolved, closed, cancelled or rejected);
* ``reassign`` a complaint a supervisor gave to another agent of the same team;
* ``reprioritise`` a complaint whose priority changed (a waiting one moves in the queue).

With the roster's ``repeat_to: previous_handler``, a repeat complaint (重复投诉) first asks the complaint it
repeats who handled it, on the router's own internal topic ``ASSIGN_LINKS`` (:class:`PreviousHandler`,
keyed by the complaint asked, so the instance holding that complaint answers), and is routed when the
answer comes back, or after :data:`ASK_TIMEOUT` without the previous handler.

:class:`DispatchStage` (worker ``dispatch``) is keyed by team: one team's agents, the complaints each holds
and the team's queue are one state (:class:`team.TeamState`), held by one instance, so capacity is
never exceeded and the queue is served in order. It publishes every decision as ``ComplaintAssigned``
keyed by complaint id, back among the complaint topics: to an agent, or waiting at a place in the queue
and later given to an agent (``dequeued``). Agents' presence arrives on ``AGENTS``, keyed by team.

Load is never a counter: an agent's load is the set of complaint ids it holds, built from these events, so
after a restart it is exactly the open assignments. Every output id is derived from what caused it, and a
replayed input finds its effect already in the state and emits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from complaint_stream.domain.assignment.roster import Roster
from complaint_stream.domain.assignment.routing import Route, complaint_language, route
from complaint_stream.domain.assignment.team import (
    Assigned,
    Decision,
    Queued,
    TeamState,
    WorkItem,
    offer,
    reassign_to,
    release,
    reprioritise,
    set_presence,
    withdraw,
)
from complaint_stream.domain.assignment.team import due as team_due
from complaint_stream.domain.intake import event_id
from complaint_stream.domain.privacy import redact_phone_numbers
from complaint_stream.domain.stage import ALWAYS, Output, Refused, StageBase
from complaint_stream.schemas import (
    AgentPresenceChanged,
    CaseChange,
    CaseUpdated,
    ComplaintAssigned,
    ComplaintClassified,
    Envelope,
    PreviousHandler,
    ReassignComplaint,
    ReturnComplaint,
    TeamWork,
    TicketStatus,
    wrap,
)
from complaint_stream.topics import ASSIGN_LINKS, ASSIGN_WORK, ASSIGNED, COMMANDS, TopicSpec

__all__ = ["ENDED", "AssignStage", "DispatchStage", "Routing"]

#: Statuses the lifecycle reports that end a complaint's hold on its agent.
ENDED = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.REJECTED})
#: Complaints one team's queue may hold. A team's state (agents, held ids, queue: ~150 bytes per waiting
#: complaint) is one changelog record, which must stay under the producer's 1 MiB: beyond this an offer is
#: refused (``team_queue_full``, dead-lettered with its bytes for a replay) instead of the worker stopping on
#: a record it cannot store.
MAX_QUEUE = 5000
#: Command ids a complaint's routing state remembers (a repeated delivery comes soon after the first).
MAX_COMMANDS = 32
#: How long the router remembers a complaint after it ended (a reopen finds its team and agent again).
KEEP_ENDED = timedelta(days=30)
#: How long a repeat waits for the complaint it repeats to say who handled it before it is routed without.
ASK_TIMEOUT = timedelta(minutes=1)


@dataclass(frozen=True)
class Routing:
    """What the router knows of one complaint: its classification, the team it is with and by which rule,
    the teams that returned it, the agent the lifecycle last reported handling it, and when it ended."""

    complaint: ComplaintClassified
    team: str
    rule: str
    updated_at: datetime
    excluded: tuple[str, ...] = ()
    returns: int = 0
    handler: str | None = None
    ended_at: datetime | None = None
    #: Ids of the last commands applied (returns, moves): the same command delivered again is a no-op.
    commands: tuple[str, ...] = ()
    #: Set while a repeat waits for its previous handler (``team`` and ``rule`` are empty until it is routed).
    asked_at: datetime | None = None

    @property
    def routed(self) -> bool:
        return self.asked_at is None and bool(self.team)


class AssignStage(StageBase[Routing]):
    """The router (派单): which team, returns, supervisors' moves, and ends reported by the lifecycle."""

    name = "assign"
    #: Every command on the commands topic is read (the others are none of its business and change nothing).
    consumes: tuple[type[Any], ...] = (ComplaintClassified, CaseUpdated, PreviousHandler, *COMMANDS.values)
    produces: tuple[TopicSpec, ...] = (ASSIGN_WORK, ASSIGN_LINKS)
    state_type: Any = Routing
    #: Sweeps look only at the complaints whose timer is due (``next_due``): a repeat past ASK_TIMEOUT, an
    #: ended complaint past KEEP_ENDED.
    timer_interval: float | None = 15.0
    source = "/workers/assign"

    def __init__(self, roster: Roster, keep_ended: timedelta = KEEP_ENDED, ask_timeout: timedelta = ASK_TIMEOUT):
        self.roster = roster
        self.keep_ended = keep_ended
        self.ask_timeout = ask_timeout

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.complaint_id)

    def apply(self, state: Routing | None, event: Envelope[Any], now: datetime) -> tuple[Routing | None, Sequence[Output]]:
        data = event.data
        if isinstance(data, ComplaintClassified):
            return self._classified(state, event)
        if isinstance(data, CaseUpdated):
            return self._case_updated(state, event)
        if isinstance(data, PreviousHandler):
            return self._asked(state, event) if data.kind == "ask" else self._answered(state, event)
        if not isinstance(data, (ReturnComplaint, ReassignComplaint)):
            return state, ()  # a note, a priority change, a merge ...: the lifecycle's
        if state is None:
            raise Refused("unknown_complaint", f"{data.complaint_id} was never routed here")
        if event.id in state.commands:
            return state, ()  # delivered again (at-least-once): applied already
        if not state.routed and isinstance(data, ReturnComplaint):
            raise Refused("not_with_team", f"{data.complaint_id} is not with any team yet (it waits to hear who"
                                           " handled the complaint it repeats)")
        new, outputs = self._returned(state, event) if isinstance(data, ReturnComplaint) \
            else self._reassigned(state, event)
        return replace(new, commands=(*state.commands, event.id)[-MAX_COMMANDS:]), outputs

    def due(self, state: Routing, now: datetime) -> tuple[Routing | None, Sequence[Output]]:
        if state.ended_at is not None and now - state.ended_at > self.keep_ended:
            return None, ()
        if state.asked_at is not None and state.ended_at is None and now >= state.asked_at + self.ask_timeout:
            note = (f"the complaint it repeats ({state.complaint.repeat_of}) did not say who handled it within"
                    f" {self.ask_timeout.total_seconds():.0f} s")
            return self._route_first(state, now, f"ask-timeout:{state.asked_at.isoformat()}", note=note)
        return state, ()

    def next_due(self, state: Routing) -> datetime | None:
        if state.asked_at is not None and state.ended_at is None:
            return state.asked_at + self.ask_timeout
        return None if state.ended_at is None else state.ended_at + self.keep_ended

    # -- events ------------------------------------------------------------------------------------

    def _classified(self, state: Routing | None, event: Envelope[ComplaintClassified]) -> tuple[Routing | None,
                                                                                                  Sequence[Output]]:
        data = event.data
        if state is not None:
            return state, ()  # routed already: a replay, or a later classification (corrections are commands)
        if data.follow_up_of is not None:  # a follow-up (催单): the lifecycle attaches it to its case; nothing to hold
            return None, ()
        at = event.time
        # kept for later routing decisions: the facts, not the classifier's words (free text stays out of state)
        kept = data.model_copy(update={"explanation": (), "priority_reasons": (), "classifier_version": ""})
        new = Routing(complaint=kept, team="", rule="", updated_at=at)
        if (data.repeat_of is not None and data.repeat_of != data.complaint_id
                and self.roster.repeat_to == "previous_handler"):
            ask = PreviousHandler(kind="ask", complaint_id=data.repeat_of, other_id=data.complaint_id, at=at)
            eid = event_id(data.complaint_id, f"assign:ask:{event.id}")
            return replace(new, asked_at=at), (
                Output(ASSIGN_LINKS, data.repeat_of, wrap(ask, source=self.source, subject=data.repeat_of,
                                                          event_id=eid, time=at)),)
        return self._route_first(new, at, event.id)

    def _route_first(self, state: Routing, at: datetime, material: str, *, previous_team: str | None = None,
                     previous_agent: str | None = None, note: str = "") -> tuple[Routing, Sequence[Output]]:
        """The first route of a complaint held here (at once, or once its previous handler is known)."""
        c = state.complaint
        routed = route(c, self.roster, language=complaint_language(c.language),
                       home_province_code=c.home_province_code, previous_team=previous_team,
                       previous_agent=previous_agent)
        assert routed is not None  # follow-ups are never held
        if note:
            routed = replace(routed, explanation=(note, *routed.explanation))
        new = replace(state, team=routed.team, rule=routed.rule, updated_at=at, asked_at=None)
        return new, (self._offer(new, routed, at, cause="routed", material=material),)

    def _asked(self, state: Routing | None, event: Envelope[PreviousHandler]) -> tuple[Routing | None,
                                                                                       Sequence[Output]]:
        """A repeat asks this complaint who handled it: the team it is (or was) with and its last handler."""
        data = event.data
        known = state is not None and state.routed
        answer = PreviousHandler(kind="answer", complaint_id=data.other_id, other_id=data.complaint_id, at=data.at,
                                 known=known, team=state.team if state is not None and known else None,
                                 agent_id=state.handler if state is not None and known else None)
        eid = event_id(data.other_id, f"assign:answer:{event.id}")
        return state, (Output(ASSIGN_LINKS, data.other_id, wrap(answer, source=self.source, subject=data.other_id,
                                                                event_id=eid, time=data.at)),)

    def _answered(self, state: Routing | None, event: Envelope[PreviousHandler]) -> tuple[Routing | None,
                                                                                          Sequence[Output]]:
        data = event.data
        if state is None or state.asked_at is None or state.ended_at is not None:
            return state, ()  # routed already (a replay, or the answer came after the timeout), or ended
        note = "" if data.known else (f"the complaint it repeats ({data.other_id}) was never routed here, or has"
                                      " been forgotten")
        return self._route_first(state, data.at, event.id, previous_team=data.team, previous_agent=data.agent_id,
                                 note=note)

    def _returned(self, state: Routing, event: Envelope[ReturnComplaint]) -> tuple[Routing, Sequence[Output]]:
        data = event.data
        if state.ended_at is not None:
            raise Refused("case_ended", f"{data.complaint_id} ended {state.ended_at.isoformat()}: nothing to return")
        if data.team != state.team:
            raise Refused("not_with_team", f"{data.complaint_id} is with {state.team}, not {data.team}")
        excluded = (*state.excluded, data.team)
        returns = state.returns + 1
        routed = route(state.complaint, self.roster, exclude=frozenset(excluded), returns=returns,
                       language=complaint_language(state.complaint.language),
                       home_province_code=state.complaint.home_province_code)
        assert routed is not None  # a follow-up never has a state
        new = replace(state, team=routed.team, rule=routed.rule, excluded=excluded, returns=returns,
                      updated_at=event.time, handler=None)
        reason = f"returned by {data.team} ({data.reason_code})"
        return new, (self._work(state, "withdraw", state.team, event.time, event.id, reason=reason),
                     self._offer(new, routed, event.time, cause="returned", material=event.id, reason=reason))

    def _reassigned(self, state: Routing, event: Envelope[ReassignComplaint]) -> tuple[Routing, Sequence[Output]]:
        data = event.data
        if state.ended_at is not None:
            raise Refused("case_ended", f"{data.complaint_id} ended {state.ended_at.isoformat()}: reopen it first")
        if not self.roster.has_team(data.team):
            raise Refused("unknown_team", f"{data.team} is not a team of the roster")
        team = self.roster.team(data.team)
        if data.agent_id is not None and team.agent(data.agent_id) is None:
            raise Refused("unknown_agent", f"{data.agent_id} is not an agent of team {data.team}")
        reason = f"reassigned by {data.requested_by}" + (f": {data.reason}" if data.reason else "")
        at = event.time
        if not state.routed:  # a repeat still waiting for its previous handler: the supervisor decides
            new = replace(state, team=data.team, rule="reassigned", updated_at=at, asked_at=None)
            routed = Route(data.team, "reassigned", (f"{reason} -> team {data.team}",))
            return new, (self._offer(new, routed, at, cause="reassigned", material=event.id, reason=reason,
                                     agent=data.agent_id),)
        if data.team == state.team:
            if data.agent_id is None:
                return state, ()  # already with that team
            new = replace(state, updated_at=at)
            return new, (self._work(new, "reassign", data.team, at, event.id, agent=data.agent_id, reason=reason),)
        new = replace(state, team=data.team, rule="reassigned", updated_at=at, handler=None)
        routed = Route(data.team, "reassigned", (f"{reason} -> team {data.team}",))
        return new, (self._work(state, "withdraw", state.team, at, event.id, reason=reason),
                     self._offer(new, routed, at, cause="reassigned", material=event.id, reason=reason,
                                 agent=data.agent_id))

    def _case_updated(self, state: Routing | None, event: Envelope[CaseUpdated]) -> tuple[Routing | None,
                                                                                           Sequence[Output]]:
        data = event.data
        if state is None:
            return None, ()  # not routed here (a follow-up, or before this worker existed)
        handler = data.handler or state.handler
        if data.status in ENDED and state.ended_at is None:
            new = replace(state, ended_at=data.at, handler=handler, updated_at=data.at)
            if not state.routed:  # ended while waiting for its previous handler: no team holds it
                return replace(new, asked_at=None), ()
            return new, (self._work(new, "release", state.team, data.at, event.id,
                                    reason=f"{data.status.value} ({data.change.value})"),)
        if data.change is CaseChange.REOPENED and state.ended_at is not None and not state.team:
            return self._route_first(replace(state, ended_at=None, handler=handler), data.at, event.id,
                                     note="reopened before it was routed")
        if data.change is CaseChange.REOPENED and state.ended_at is not None:
            new = replace(state, ended_at=None, handler=handler, updated_at=data.at)
            routed = Route(state.team, state.rule, ("reopened: back to its team and, when it has room, its agent",),
                           handler)
            return new, (self._offer(new, routed, data.at, cause="reopened", material=event.id, reason="reopened"),)
        if data.priority is not state.complaint.priority and not state.routed:
            return replace(state, complaint=state.complaint.model_copy(update={"priority": data.priority}),
                           handler=handler), ()
        if data.priority is not state.complaint.priority and state.ended_at is None:
            # a supervisor's change, or the lifecycle raising it for follow-ups (催单): the queue order follows
            new = replace(state, complaint=state.complaint.model_copy(update={"priority": data.priority}),
                          handler=handler)
            return new, (self._work(new, "reprioritise", state.team, data.at, event.id,
                                    reason=f"priority {state.complaint.priority.value} -> {data.priority.value}"),)
        if handler != state.handler:
            return replace(state, handler=handler), ()
        return state, ()

    # -- outputs -----------------------------------------------------------------------------------

    def _offer(self, state: Routing, routed: Route, at: datetime, *, cause: str, material: str, reason: str = "",
               agent: str | None = None) -> Output:
        c = state.complaint
        work = TeamWork(kind="offer", team=routed.team, complaint_id=c.complaint_id, at=at, priority=c.priority,
                        skill=c.category, language=complaint_language(c.language), preferred_agent=routed.agent,
                        agent_id=agent, cause=cause, rule=routed.rule[:64], explanation=routed.explanation,
                        returns=state.returns, reason=reason[:500])
        return self._out(work, material)

    def _work(self, state: Routing, kind: str, team: str, at: datetime, material: str, *, agent: str | None = None,
              reason: str = "") -> Output:
        c = state.complaint
        work = TeamWork(kind=kind, team=team, complaint_id=c.complaint_id, at=at, priority=c.priority,
                        skill=c.category, agent_id=agent, returns=state.returns, reason=reason[:500])
        return self._out(work, material)

    def _out(self, work: TeamWork, material: str) -> Output:
        eid = event_id(work.complaint_id, f"assign:{work.kind}:{work.team}:{material}")
        return Output(ASSIGN_WORK, work.team, wrap(work, source=self.source, subject=work.complaint_id,
                                                   event_id=eid, time=work.at))


class DispatchStage(StageBase[TeamState]):
    """One team's dispatcher (坐席分配): agents, capacity, presence, the queue."""

    name = "dispatch"
    consumes: tuple[type[Any], ...] = (TeamWork, AgentPresenceChanged)
    produces: tuple[TopicSpec, ...] = (ASSIGNED,)
    state_type: Any = TeamState
    timer_interval: float | None = 60.0
    order_dependent = True  # first come, first served: see StageBase.order_dependent
    source = "/workers/dispatch"

    def __init__(self, roster: Roster):
        self.roster = roster

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.team)

    def apply(self, state: TeamState | None, event: Envelope[Any], now: datetime) -> tuple[TeamState | None,
                                                                                            Sequence[Output]]:
        data = event.data
        if not self.roster.has_team(data.team):
            raise Refused("unknown_team", f"{data.team} is not a team of the roster")
        team = self.roster.team(data.team)
        waiting = _Waiting(state)
        if isinstance(data, AgentPresenceChanged):
            new, decisions = set_presence(state, data.agent_id, data.presence, data.at, team)
            return new, self._publish(new, decisions, waiting, data.at, event.id, None)
        at = data.at
        if (data.kind == "offer" and state is not None and len(state.queue) >= MAX_QUEUE
                and state.holder(data.complaint_id) is None and state.position(data.complaint_id) is None):
            raise Refused("team_queue_full", f"{data.team} has {len(state.queue)} complaints waiting (at most"
                                             f" {MAX_QUEUE}): add agents or capacity, then replay the dead letters")
        if data.kind == "offer" and data.agent_id is None:
            item = WorkItem(complaint_id=data.complaint_id, priority=data.priority, skill=data.skill,
                            language=data.language, preferred_agent=data.preferred_agent)
            new, decision = offer(state, item, at, team)
            if decision.replay:
                return new, ()
            return new, self._publish(new, [decision], waiting, at, event.id, data)
        if data.kind == "reassign":  # a supervisor's choice of another agent of this team
            assert data.agent_id is not None
            new, decisions = reassign_to(state, data.complaint_id, data.agent_id, at, team)
            return new, self._publish(new, decisions, waiting, at, event.id, data)
        if data.kind == "offer":  # moved here by a supervisor, to a named agent
            assert data.agent_id is not None
            try:
                new, decisions = reassign_to(state, data.complaint_id, data.agent_id, at, team)
            except Refused as refusal:
                # The complaint has left its old team already: it must land here. The agent is full (or
                # gone from the roster): the team takes it as any complaint, that agent preferred.
                item = WorkItem(complaint_id=data.complaint_id, priority=data.priority, skill=data.skill,
                                language=data.language, preferred_agent=data.agent_id)
                new, decision = offer(state, item, at, team)
                moved = data.model_copy(update={"explanation": (*data.explanation, f"{refusal}; the team takes it")})
                return new, self._publish(new, [decision], waiting, at, event.id, moved)
            return new, self._publish(new, decisions, waiting, at, event.id, data)
        if data.kind == "reprioritise":
            return reprioritise(state, data.complaint_id, data.priority, team), ()
        transition = withdraw if data.kind == "withdraw" else release
        new, decisions = transition(state, data.complaint_id, at, team)
        return new, self._publish(new, decisions, waiting, at, event.id, None)

    def due(self, state: TeamState, now: datetime) -> tuple[TeamState | None, Sequence[Output]]:
        if not self.roster.has_team(state.team) or not state.queue:
            return state, ()
        waiting = _Waiting(state)
        new, decisions = team_due(state, now, self.roster.team(state.team))
        return new, self._publish(new, decisions, waiting, now, f"due:{now.isoformat()}", None)

    def next_due(self, state: TeamState) -> datetime | None:
        return ALWAYS if state.queue else None  # waiting work: the hours may start (a team is cheap to look at)

    # -- outputs -----------------------------------------------------------------------------------

    def _publish(self, state: TeamState, decisions: Sequence[Decision], waiting: _Waiting, at: datetime,
                 material: str, work: TeamWork | None) -> list[Output]:
        """One ``ComplaintAssigned`` per decision that changed something. ``work``: the offer or supervisor's
        move that caused the first decision (its route and cause); the others are waiting work served."""
        outputs = []
        for n, decision in enumerate(decisions):
            if decision.replay:
                continue
            item = None if work is not None and work.complaint_id == decision.complaint_id \
                else waiting.get(decision.complaint_id)
            caused = work is not None and work.complaint_id == decision.complaint_id
            cause = work.cause if caused and work is not None else "dequeued"
            if work is not None and caused and work.kind == "reassign":
                cause = "reassigned"
            priority = work.priority if caused and work is not None else (item.priority if item else None)
            if priority is None:
                continue  # nothing known of it here: cannot happen through these transitions
            agent = decision.agent if isinstance(decision, Assigned) else None
            position = decision.position if isinstance(decision, Queued) else None
            # the route's words come from the work topic: masked, as everything free-text this topic carries
            event = ComplaintAssigned(
                complaint_id=decision.complaint_id, team=state.team, agent_id=agent, priority=priority,
                assigned_at=at, cause=cause, rule=redact_phone_numbers(work.rule)[:64] if caused and work else "",
                explanation=tuple(redact_phone_numbers(x) for x in (*(work.explanation if caused and work else ()),
                                                                   decision.reason)),
                queue_position=position, returns=work.returns if caused and work is not None else 0,
                reason=redact_phone_numbers(work.reason if caused and work is not None else "")[:500])
            eid = event_id(decision.complaint_id, f"dispatch:{state.team}:{agent or 'queue'}:{material}:{n}")
            outputs.append(Output(ASSIGNED, decision.complaint_id,
                                  wrap(event, source=self.source, subject=decision.complaint_id, event_id=eid,
                                       time=at)))
        return outputs


class _Waiting:
    """The complaints that waited in a team's queue before a transition, found by id. Served ones are at
    the front of the queue, so a scan from the front finds them at once (a queue may be thousands long)."""

    def __init__(self, state: TeamState | None):
        self.queue = () if state is None else state.queue

    def get(self, complaint_id: str) -> WorkItem | None:
        return next((w for w in self.queue if w.complaint_id == complaint_id), None)
