"""The state of one team and its pure transitions: who holds which complaint, and who waits (坐席分配).

The future worker keys this state by team. Every transition takes the state (``None``: the team's
first event) and the team as the roster has it now, and returns the new state and its decisions:

* :func:`offer` a complaint routed to the team: an agent takes it, or it waits in the queue;
* :func:`release` a complaint that ended (resolved, closed, cancelled) and :func:`withdraw` one that left
  the team (returned, reassigned elsewhere): the agent's load falls and waiting work is assigned at once;
* :func:`set_presence` an agent's presence (one coming back takes waiting work);
* :func:`reassign_to` an agent chosen by a supervisor (refused over the agent's capacity);
* :func:`due` the timer: waiting work is assigned when the team's working hours start.

Invariants: an agent's load is exactly the set of complaint ids it holds (never a counter), never more
than its capacity through these transitions; a complaint is held by one agent or waits in the queue,
never both; offering a complaint already here changes nothing (a replay counts no load twice); and
after every transition except :func:`offer`, no waiting complaint could be given to an agent (an offer
made while the queue could be served, because hours started and :func:`due` has not run yet, waits
behind the queue so that it never jumps it).

Which agent: present (``available``), under capacity, with the skill (the complaint's category) and the
language; the team's strategy then picks: ``most_spare_capacity`` (capacity - load, ties taken in turn
after the agent chosen last) or ``round_robin`` (the next eligible agent after the one chosen last).
A preferred agent (the previous handler of a repeat) is taken when eligible. Waiting work is served
most urgent first (P1 before P2 ...), then oldest, then by id.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from complaint_stream.domain.assignment.roster import AgentSpec, Language, Presence, TeamSpec
from complaint_stream.domain.stage import Refused
from complaint_stream.schemas import Category, Priority

__all__ = [
    "AgentState",
    "Assigned",
    "Decision",
    "Queued",
    "TeamState",
    "WorkItem",
    "due",
    "offer",
    "reassign_to",
    "reprioritise",
    "release",
    "set_presence",
    "withdraw",
]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A complaint offered to a team, or waiting in its queue."""

    complaint_id: str
    priority: Priority
    skill: Category | None = None          # the complaint's category; None: any agent
    language: Language | None = None       # None: any agent
    preferred_agent: str | None = None     # the previous handler, taken when eligible
    enqueued_at: datetime | None = None    # when it started waiting; set by offer() when None

    def order(self) -> tuple[int, datetime, str]:
        assert self.enqueued_at is not None
        return int(self.priority.value[1:]), self.enqueued_at, self.complaint_id


@dataclass(frozen=True, slots=True)
class AgentState:
    id: str
    presence: Presence
    open: frozenset[str] = frozenset()

    @property
    def load(self) -> int:
        return len(self.open)


@dataclass(frozen=True, slots=True)
class Assigned:
    """The complaint is the agent's. ``replay``: it already was (an offer seen before changes nothing)."""

    complaint_id: str
    agent: str
    reason: str
    replay: bool = False


@dataclass(frozen=True, slots=True)
class Queued:
    """The complaint waits, at ``position`` (1: next) in the queue as it is now."""

    complaint_id: str
    position: int
    reason: str
    replay: bool = False


Decision = Assigned | Queued


@dataclass(frozen=True, slots=True)
class TeamState:
    """One team: its agents with the complaints each holds, the waiting complaints in service order,
    and the agent chosen last (the cursor of round robin and of the rotation among equally free agents)."""

    team: str
    agents: tuple[AgentState, ...]
    queue: tuple[WorkItem, ...] = ()
    cursor: str | None = None

    @classmethod
    def initial(cls, team: TeamSpec) -> TeamState:
        return cls(team.id, tuple(AgentState(a.id, a.presence) for a in team.agents))

    def agent(self, agent_id: str) -> AgentState | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def holder(self, complaint_id: str) -> str | None:
        """The agent holding the complaint, if one does."""
        return next((a.id for a in self.agents if complaint_id in a.open), None)

    def position(self, complaint_id: str) -> int | None:
        """The complaint's place in the queue (1: next), if it waits."""
        return next((i for i, w in enumerate(self.queue, 1) if w.complaint_id == complaint_id), None)

    def held(self) -> frozenset[str]:
        """Every complaint an agent holds."""
        return frozenset().union(*(a.open for a in self.agents))

    def waiting(self) -> tuple[str, ...]:
        return tuple(w.complaint_id for w in self.queue)


# -- transitions --------------------------------------------------------------------------------------

def offer(state: TeamState | None, item: WorkItem, now: datetime, team: TeamSpec) -> tuple[TeamState, Decision]:
    """A complaint routed to this team: the chosen agent takes it, or it waits (outside working hours,
    no eligible agent with room, or behind waiting work :func:`due` has yet to assign). Offering one
    already here is a no-op that returns its place again, marked ``replay``."""
    state = _ready(state, team)
    holder = state.holder(item.complaint_id)
    if holder is not None:
        return state, Assigned(item.complaint_id, holder, f"already held by {holder}", replay=True)
    position = state.position(item.complaint_id)
    if position is not None:
        return state, Queued(item.complaint_id, position, "already waiting", replay=True)
    if item.enqueued_at is None:
        item = replace(item, enqueued_at=now)
    if not team.is_open(now):
        assert team.hours is not None
        return _enqueue(state, item, f"outside working hours ({team.hours.describe()})")
    if _has_room(state, team) and any(_choose(state, waiting, team) is not None for waiting in state.queue):
        return _enqueue(state, item, "behind waiting complaints an agent can take now; due() assigns them in order")
    choice = _choose(state, item, team)
    if choice is None:
        return _enqueue(state, item, _why_none(item))
    agent, reason = choice
    state = _assign(state, item.complaint_id, agent, rotate=item.preferred_agent != agent)
    return state, Assigned(item.complaint_id, agent, reason)


def release(state: TeamState | None, complaint_id: str, now: datetime,
            team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """The complaint ended here (resolved, closed, cancelled): its agent's load falls, or it leaves the
    queue, and the waiting complaints that can now be served are assigned. Unknown here: no-op."""
    state = _ready(state, team)
    return _drain(_remove(state, complaint_id), now, team)


def withdraw(state: TeamState | None, complaint_id: str, now: datetime,
             team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """The complaint left the team (returned, 退单, or reassigned to another team): it is taken from its
    agent or the queue, and the freed room is used at once, as by :func:`release`."""
    return release(state, complaint_id, now, team)


def set_presence(state: TeamState | None, agent: str, presence: Presence, now: datetime,
                 team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """An agent's presence changes. Going away or offline keeps the complaints it holds (it gets no new
    ones); coming back (available) it takes waiting work. Refused for an agent not in the team."""
    state = _ready(state, team)
    current = state.agent(agent)
    if current is None or team.agent(agent) is None:
        raise Refused("unknown_agent", f"{agent} is not an agent of team {team.id}")
    state = _replace_agent(state, replace(current, presence=presence))
    return _drain(state, now, team)


def reassign_to(state: TeamState | None, complaint_id: str, agent: str, now: datetime,
                team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """A supervisor gives the complaint to ``agent`` (改派): taken from the agent or the queue holding it
    here (or new to the team), whatever the agent's presence, skill or language, but never over its
    capacity (refused: pick an agent with room). The decisions: the assignment (``replay`` when the
    agent already holds it), then the waiting work that can now be served (the previous holder's freed
    room, or hours that started since the last transition)."""
    state = _ready(state, team)
    spec = team.agent(agent)
    target = state.agent(agent)
    if spec is None or target is None:
        raise Refused("unknown_agent", f"{agent} is not an agent of team {team.id}")
    if complaint_id in target.open:
        # A replay changes no holder, but it is a transition at ``now`` like any other: the working hours
        # may have started since the last one, so the waiting work that can be served is served.
        state, more = _drain(state, now, team)
        return state, [Assigned(complaint_id, agent, f"already held by {agent}", replay=True), *more]
    if target.load >= spec.capacity:
        raise Refused("agent_at_capacity", f"{agent} holds {target.load} of {spec.capacity} complaints;"
                                           " pick an agent with room")
    state = _assign(_remove(state, complaint_id), complaint_id, agent, rotate=False)
    state, more = _drain(state, now, team)
    return state, [Assigned(complaint_id, agent, "reassigned by a supervisor"), *more]


def reprioritise(state: TeamState | None, complaint_id: str, priority: Priority, team: TeamSpec) -> TeamState:
    """A complaint's priority changed: if it waits, it takes its place in the queue for the new priority
    (keeping when it started waiting); held by an agent or unknown here, nothing changes."""
    state = _ready(state, team)
    item = next((w for w in state.queue if w.complaint_id == complaint_id), None)
    if item is None or item.priority is priority:
        return state
    rest = replace(state, queue=tuple(w for w in state.queue if w.complaint_id != complaint_id))
    return _enqueue(rest, replace(item, priority=priority), "")[0]


def due(state: TeamState | None, now: datetime, team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """The timer: inside working hours, assign the waiting complaints that can be served (hours started,
    an agent was added or given more capacity in the roster)."""
    return _drain(_ready(state, team), now, team)


# -- helpers ------------------------------------------------------------------------------------------

def _ready(state: TeamState | None, team: TeamSpec) -> TeamState:
    """The state, brought in line with the roster's team: a new agent joins with its initial presence;
    one removed from the roster stays only while it holds complaints, and gets no more."""
    if state is None:
        return TeamState.initial(team)
    if state.team != team.id:
        raise ValueError(f"state of team {state.team} used with team {team.id}")
    known = {a.id: a for a in state.agents}
    agents = [known.get(a.id) or AgentState(a.id, a.presence) for a in team.agents]
    in_roster = {a.id for a in team.agents}
    agents += [a for a in state.agents if a.id not in in_roster and a.open]
    fresh = tuple(agents)
    return state if fresh == state.agents else replace(state, agents=fresh)


def _has_room(state: TeamState, team: TeamSpec) -> bool:
    """Whether any agent could take anything at all: available and under capacity. When none can, the
    queue need not be looked at (it may hold thousands during an outage)."""
    specs = {a.id: a for a in team.agents}
    return any(a.presence == "available" and a.id in specs and a.load < specs[a.id].capacity for a in state.agents)


def _eligible(agent: AgentState, spec: AgentSpec, item: WorkItem, team: TeamSpec) -> bool:
    return (agent.presence == "available"
            and agent.load < spec.capacity
            and (item.skill is None or item.skill in team.skills_of(spec))
            and (item.language is None or item.language in team.languages_of(spec)))


def _after(order: Sequence[str], cursor: str | None) -> dict[str, int]:
    """Each agent's distance after the cursor in the team's order (the agent after the cursor: 0)."""
    start = order.index(cursor) + 1 if cursor in order else 0
    return {agent: (i - start) % len(order) for i, agent in enumerate(order)}


def _choose(state: TeamState, item: WorkItem, team: TeamSpec) -> tuple[str, str] | None:
    """The agent the team's strategy gives ``item`` to, and why; ``None`` when no agent is eligible."""
    specs = {a.id: a for a in team.agents}
    order = [a.id for a in state.agents if a.id in specs]
    eligible = [a for a in state.agents if a.id in specs and _eligible(a, specs[a.id], item, team)]
    if not eligible:
        return None
    if item.preferred_agent is not None and any(a.id == item.preferred_agent for a in eligible):
        return item.preferred_agent, "the previous handler"
    turn = _after(order, state.cursor)
    if team.strategy == "round_robin":
        pick = min(eligible, key=lambda a: turn[a.id])
        return pick.id, f"round robin: next eligible agent after {state.cursor or 'the start'}"
    spare = {a.id: specs[a.id].capacity - a.load for a in eligible}
    most = max(spare.values())
    tied = [a for a in eligible if spare[a.id] == most]
    pick = min(tied, key=lambda a: turn[a.id])
    reason = f"most spare capacity ({most} of {specs[pick.id].capacity} free)"
    if len(tied) > 1:
        reason += f", in turn among {len(tied)} equally free agents"
    return pick.id, reason


def _why_none(item: WorkItem) -> str:
    wanted = " and ".join(x for x in (item.skill.value if item.skill else "", item.language or "") if x)
    return f"no available agent with room{' for ' + wanted if wanted else ''}"


def _assign(state: TeamState, complaint_id: str, agent: str, *, rotate: bool) -> TeamState:
    agents = tuple(replace(a, open=a.open | {complaint_id}) if a.id == agent else a for a in state.agents)
    queue = tuple(w for w in state.queue if w.complaint_id != complaint_id)
    return replace(state, agents=agents, queue=queue, cursor=agent if rotate else state.cursor)


def _remove(state: TeamState, complaint_id: str) -> TeamState:
    agents = tuple(replace(a, open=a.open - {complaint_id}) if complaint_id in a.open else a for a in state.agents)
    queue = tuple(w for w in state.queue if w.complaint_id != complaint_id)
    return replace(state, agents=agents, queue=queue)


def _replace_agent(state: TeamState, agent: AgentState) -> TeamState:
    return replace(state, agents=tuple(agent if a.id == agent.id else a for a in state.agents))


def _enqueue(state: TeamState, item: WorkItem, reason: str) -> tuple[TeamState, Decision]:
    queue = list(state.queue)  # kept in service order: insert in place (one copy), no sort
    at = bisect.bisect_right(queue, item.order(), key=WorkItem.order)
    queue.insert(at, item)
    return replace(state, queue=tuple(queue)), Queued(item.complaint_id, at + 1, reason)


def _drain(state: TeamState, now: datetime, team: TeamSpec) -> tuple[TeamState, list[Decision]]:
    """Serve the queue in order while the team is open: each waiting complaint goes to an agent when one
    is eligible. One pass is enough: an assignment only takes room, so a complaint passed over earlier
    (no eligible agent) still has none."""
    if not team.is_open(now):
        return state, []
    decisions: list[Decision] = []
    for item in state.queue:
        if not _has_room(state, team):
            break  # every agent is full or away: the rest waits
        choice = _choose(state, item, team)
        if choice is None:
            continue
        agent, reason = choice
        state = _assign(state, item.complaint_id, agent, rotate=item.preferred_agent != agent)
        assert item.enqueued_at is not None
        decisions.append(Assigned(item.complaint_id, agent, f"{reason}; waited since {item.enqueued_at.isoformat()}"))
    return state, decisions
