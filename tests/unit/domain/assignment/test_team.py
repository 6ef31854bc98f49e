"""One team's state: agent choice, capacity, the queue, presence, working hours, manual reassignment."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import pytest

from complaint_stream.domain.assignment import (
    Assigned,
    Queued,
    TeamState,
    due,
    offer,
    reassign_to,
    release,
    set_presence,
    withdraw,
)
from complaint_stream.domain.stage import Refused
from tests.unit.domain.assignment.builders import EVERY_DAY, HOUR, MIN, T0, agent, cid, item, team_spec

OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}


def loads(state: TeamState) -> dict[str, int]:
    return {a.id: a.load for a in state.agents}


# -- choosing an agent ----------------------------------------------------------------------------

def test_the_agent_with_the_most_spare_capacity_takes_the_complaint():
    team = team_spec(agent("a", 3), agent("b", 10), agent("c", 5))
    state, decision = offer(None, item(1), T0, team)
    assert decision == Assigned(cid(1), "b", "most spare capacity (10 of 10 free)")
    for n in range(2, 7):
        state, _ = offer(state, item(n), T0, team)
    assert loads(state) == {"a": 0, "b": 5, "c": 1}  # b 5 free, c 4 free after five to b and one to c


def test_equally_free_agents_take_turns_never_always_the_first():
    team = team_spec(*(agent(x, 5) for x in "abcd"))
    state, chosen = None, []
    for n in range(8):
        state, d = offer(state, item(n), T0, team)
        chosen.append(d.agent)
        state, _ = release(state, cid(n), T0, team)
    assert chosen == list("abcdabcd")


@pytest.mark.parametrize("strategy", ["most_spare_capacity", "round_robin"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fairness_over_a_thousand_offers_with_releases(strategy, seed):
    """Four equal agents, 1,000 offers, after each 0-2 complaints resolved (the longest-held first), with a
    burst of 100 offers and no resolutions (the agents fill up, the rest waits): each agent's share is
    within 10% of every other's."""
    team = team_spec(*(agent(x, 8) for x in "abcd"), strategy=strategy)
    rng = random.Random(seed)
    state: TeamState | None = None
    counts: Counter[str] = Counter()
    held: list[str] = []
    queued = 0
    for n in range(1000):
        state, d = offer(state, item(n), T0 + n * MIN, team)
        decisions: list = [d]
        for _ in range(0 if 100 <= n < 200 else rng.choice([0, 1, 1, 2])):  # a burst: all full, some wait
            if held:
                state, more = release(state, held.pop(0), T0 + n * MIN, team)
                decisions += more
        queued += isinstance(d, Queued)
        for x in decisions:
            if isinstance(x, Assigned):
                counts[x.agent] += 1
                held.append(x.complaint_id)
    assert queued > 0 and sum(counts.values()) + len(state.queue) == 1000
    assert max(counts.values()) <= 1.1 * min(counts.values()), counts


def test_round_robin_takes_the_next_eligible_agent_after_the_last_one():
    team = team_spec(*(agent(x, 5) for x in "abc"), strategy="round_robin")
    state, chosen = None, []
    for n in range(7):
        state, d = offer(state, item(n), T0, team)
        chosen.append(d.agent)
    assert chosen == list("abcabca")
    state, _ = set_presence(state, "b", "away", T0, team)
    for n in range(7, 10):
        state, d = offer(state, item(n), T0, team)
        chosen.append(d.agent)
    assert chosen[7:] == list("cac")  # a was last; b is away


def test_round_robin_skips_an_agent_at_capacity():
    team = team_spec(agent("a", 1), agent("b", 5), agent("c", 5), strategy="round_robin")
    state, chosen = None, []
    for n in range(5):
        state, d = offer(state, item(n), T0, team)
        chosen.append(d.agent)
    assert chosen == list("abcbc")


def test_only_an_agent_with_the_skill_and_the_language_takes_the_complaint():
    team = team_spec(agent("zh-net", 5, skills=["network"], languages=["zh"]),
                     agent("en-bill", 5, skills=["billing"], languages=["zh", "en"]),
                     agent("en-net", 1, skills=["network"], languages=["en"]))
    state, d = offer(None, item(1, language="en"), T0, team)
    assert d.agent == "en-net"
    state, d = offer(state, item(2, language="en"), T0, team)  # en-net is full; zh-net speaks no English
    assert isinstance(d, Queued) and d.reason == "no available agent with room for network and en"
    state, d = offer(state, item(3, skill="billing", language="en"), T0, team)
    assert d.agent == "en-bill"
    state, d = offer(state, item(4, language="zh"), T0, team)
    assert d.agent == "zh-net"
    state, more = release(state, cid(1), T0, team)
    assert more == [Assigned(cid(2), "en-net", f"most spare capacity (1 of 1 free); waited since {T0.isoformat()}")]


def test_an_agent_with_no_skills_of_its_own_has_the_teams():
    team = team_spec(agent("a", 5), skills=("billing",))
    assert offer(None, item(1, skill="billing"), T0, team)[1].agent == "a"
    assert isinstance(offer(None, item(2, skill="network"), T0, team)[1], Queued)


def test_the_previous_handler_is_taken_when_eligible_else_the_strategy_decides():
    team = team_spec(agent("a", 5), agent("b", 5), agent("c", 1))
    state, d = offer(None, item(1, preferred="c"), T0, team)
    assert (d.agent, d.reason) == ("c", "the previous handler")
    state, d = offer(state, item(2, preferred="c"), T0, team)
    assert d.agent == "a"  # c is full
    assert state.cursor == "a"


# -- capacity and the queue -----------------------------------------------------------------------

def test_capacity_is_never_exceeded_and_the_rest_waits_in_order():
    team = team_spec(agent("a", 2), agent("b", 1))
    state, decisions = None, []
    for n in range(5):
        state, d = offer(state, item(n), T0 + n * MIN, team)
        decisions.append(d)
    assert loads(state) == {"a": 2, "b": 1}
    assert decisions[3:] == [Queued(cid(3), 1, "no available agent with room for network"),
                             Queued(cid(4), 2, "no available agent with room for network")]
    assert state.waiting() == (cid(3), cid(4))


def test_a_release_gives_the_freed_room_to_the_most_urgent_then_oldest_waiting_complaint():
    team = team_spec(agent("a", 1))
    state, _ = offer(None, item(0), T0, team)
    state, _ = offer(state, item(1, "P3"), T0 + 1 * MIN, team)
    state, _ = offer(state, item(2, "P3"), T0 + 2 * MIN, team)
    state, d = offer(state, item(3, "P1"), T0 + 3 * MIN, team)
    state, _ = offer(state, item(4, "P2"), T0 + 4 * MIN, team)
    assert d == Queued(cid(3), 1, "no available agent with room for network")
    assert state.waiting() == (cid(3), cid(4), cid(1), cid(2))
    order = []
    for n in (0, 3, 4, 1):
        state, more = release(state, cid(n), T0 + HOUR, team)
        order += [x.complaint_id for x in more]
    assert order == [cid(3), cid(4), cid(1), cid(2)]
    assert state.queue == ()


def test_a_waiting_complaint_nobody_can_take_does_not_hold_up_the_ones_behind_it():
    team = team_spec(agent("zh", 1, languages=["zh"]), agent("en", 1, languages=["en"]))
    state, _ = offer(None, item(1, language="zh"), T0, team)
    state, _ = offer(state, item(2, language="en"), T0, team)
    state, _ = offer(state, item(3, "P1", language="en"), T0 + MIN, team)
    state, _ = offer(state, item(4, "P4", language="zh"), T0 + 2 * MIN, team)
    state, more = release(state, cid(1), T0 + HOUR, team)
    assert [(x.complaint_id, x.agent) for x in more] == [(cid(4), "zh")]
    assert state.waiting() == (cid(3),)


def test_offering_a_complaint_already_here_changes_nothing():
    team = team_spec(agent("a", 1))
    state, first = offer(None, item(1), T0, team)
    again, d = offer(state, item(1, "P1"), T0 + HOUR, team)
    assert again == state and d.agent == first.agent and d.replay
    state, _ = offer(state, item(2), T0, team)
    again, d = offer(state, item(2), T0 + HOUR, team)
    assert again == state and isinstance(d, Queued) and d.position == 1 and d.replay
    assert loads(state) == {"a": 1}


def test_load_is_the_set_of_open_complaints():
    team = team_spec(agent("a", 3))
    state, _ = offer(None, item(1), T0, team)
    state, _ = offer(state, item(1), T0, team)
    state, _ = release(state, cid(1), T0, team)
    state, _ = release(state, cid(1), T0, team)  # a second release of the same complaint: no-op
    assert state.agent("a").open == frozenset() and state.agent("a").load == 0


# -- presence -------------------------------------------------------------------------------------

def test_away_and_offline_agents_get_nothing():
    team = team_spec(agent("a", 5), agent("b", 5, presence="away"), agent("c", 5, presence="offline"))
    state = None
    for n in range(4):
        state, d = offer(state, item(n), T0, team)
        assert d.agent == "a"


def test_an_agent_going_away_keeps_its_complaints_and_one_coming_back_takes_waiting_work():
    team = team_spec(agent("a", 1), agent("b", 2))
    state, _ = offer(None, item(1), T0, team)
    state, _ = offer(state, item(2), T0, team)
    state, decisions = set_presence(state, "b", "away", T0, team)
    assert decisions == [] and state.holder(cid(1)) == "b"
    state, _ = offer(state, item(3), T0, team)
    state, d = offer(state, item(4, "P2"), T0 + MIN, team)
    assert isinstance(d, Queued) and state.holder(cid(2)) == "a"
    state, decisions = set_presence(state, "b", "available", T0 + HOUR, team)
    assert [(x.complaint_id, x.agent) for x in decisions] == [(cid(4), "b")]  # room for one: the P2 first
    assert state.waiting() == (cid(3),) and loads(state) == {"a": 1, "b": 2}


def test_presence_of_an_unknown_agent_is_refused():
    with pytest.raises(Refused) as caught:
        set_presence(None, "ghost", "available", T0, team_spec(agent("a")))
    assert caught.value.rule == "unknown_agent"


# -- working hours (China time) -------------------------------------------------------------------

def china(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


def test_outside_working_hours_a_complaint_waits_and_due_assigns_it_when_hours_start():
    team = team_spec(agent("a", 5), agent("b", 5), hours=OFFICE)
    state, d = offer(None, item(1, "P3"), china("2026-12-01T07:30"), team)
    assert d == Queued(cid(1), 1, "outside working hours (mon,tue,wed,thu,fri 09:00-18:00 China time)")
    state, _ = offer(state, item(2, "P1"), china("2026-12-01T08:00"), team)
    assert due(state, china("2026-12-01T08:59"), team) == (state, [])
    state, decisions = due(state, china("2026-12-01T09:00"), team)  # 01:00 UTC
    assert [(x.complaint_id, x.agent) for x in decisions] == [(cid(2), "a"), (cid(1), "b")]
    assert state.queue == ()


def test_an_evening_in_utc_is_the_next_morning_in_china():
    team = team_spec(agent("a", 5), hours=OFFICE)
    monday_night_utc = datetime.fromisoformat("2026-11-30T17:00:00+00:00")  # Tue 01:00 in China
    assert isinstance(offer(None, item(1), monday_night_utc, team)[1], Queued)
    tuesday_morning = datetime.fromisoformat("2026-12-01T01:30:00+00:00")  # Tue 09:30 in China
    assert isinstance(offer(None, item(1), tuesday_morning, team)[1], Assigned)


def test_a_weekend_complaint_waits_for_monday():
    team = team_spec(agent("a", 5), hours=OFFICE)
    state, d = offer(None, item(1), china("2026-12-05T10:00"), team)  # Saturday
    assert isinstance(d, Queued)
    assert due(state, china("2026-12-06T10:00"), team)[1] == []
    assert [x.agent for x in due(state, china("2026-12-07T09:01"), team)[1]] == ["a"]


def test_a_release_outside_hours_frees_room_but_assigns_nothing_until_due():
    team = team_spec(agent("a", 1), hours=OFFICE)
    state, _ = offer(None, item(1), china("2026-12-01T17:00"), team)
    state, _ = offer(state, item(2), china("2026-12-01T17:30"), team)
    state, decisions = release(state, cid(1), china("2026-12-01T18:30"), team)
    assert decisions == [] and state.waiting() == (cid(2),)
    state, decisions = due(state, china("2026-12-02T09:00"), team)
    assert [x.agent for x in decisions] == ["a"]


def test_an_offer_before_due_ran_at_the_start_of_hours_waits_behind_the_queue():
    team = team_spec(agent("a", 1), hours=OFFICE)
    state, _ = offer(None, item(1, "P2"), china("2026-12-01T08:00"), team)
    state, d = offer(state, item(2, "P3"), china("2026-12-01T09:00"), team)
    assert isinstance(d, Queued) and d.position == 2 and "due()" in d.reason
    state, decisions = due(state, china("2026-12-01T09:01"), team)
    assert [x.complaint_id for x in decisions] == [cid(1)]


def test_a_team_without_hours_is_always_open():
    team = team_spec(agent("a", 5))
    assert isinstance(offer(None, item(1), china("2026-12-06T03:00"), team)[1], Assigned)


# -- manual reassignment and withdrawal -----------------------------------------------------------

def test_a_supervisor_moves_a_complaint_to_an_agent_with_room():
    team = team_spec(agent("a", 1), agent("b", 2))
    state, _ = offer(None, item(1), T0, team)  # b
    state, _ = offer(state, item(2), T0, team)  # a (tie, in turn after b)
    state, _ = offer(state, item(3), T0, team)  # b
    state, _ = offer(state, item(4), T0 + MIN, team)  # waits
    assert loads(state) == {"a": 1, "b": 2} and state.waiting() == (cid(4),)
    state, decisions = reassign_to(state, cid(2), "a", T0, team)
    assert decisions == [Assigned(cid(2), "a", "already held by a", replay=True)]
    with pytest.raises(Refused) as caught:
        reassign_to(state, cid(1), "a", T0, team)
    assert caught.value.rule == "agent_at_capacity" and "holds 1 of 1" in caught.value.detail
    state, _ = release(state, cid(2), T0 + HOUR, team)  # a takes 4 from the queue
    state, _ = release(state, cid(3), T0 + HOUR, team)
    state, decisions = reassign_to(state, cid(4), "b", T0 + HOUR, team)  # from a to b: a is free again
    assert decisions == [Assigned(cid(4), "b", "reassigned by a supervisor")]
    assert state.holder(cid(4)) == "b" and state.agent("a").load == 0


def test_a_reassignment_takes_a_complaint_from_the_queue_whatever_the_agents_presence():
    team = team_spec(agent("a", 1), agent("b", 1), agent("c", 1, presence="away"))
    state = None
    for n in range(4):
        state, _ = offer(state, item(n), T0 + n * MIN, team)
    assert state.waiting() == (cid(2), cid(3))
    state, decisions = reassign_to(state, cid(3), "c", T0, team)  # c is away: the supervisor's choice
    assert decisions == [Assigned(cid(3), "c", "reassigned by a supervisor")]
    assert state.waiting() == (cid(2),)
    with pytest.raises(Refused):
        reassign_to(state, cid(0), "c", T0, team)  # c is full now


def test_a_reassignment_away_from_a_full_agent_gives_its_room_to_the_queue():
    team = team_spec(agent("a", 1), agent("b", 2), agent("c", 1, presence="away"))
    state = None
    for n in range(4):
        state, _ = offer(state, item(n), T0 + n * MIN, team)
    assert loads(state) == {"a": 1, "b": 2, "c": 0} and state.waiting() == (cid(3),)
    assert state.holder(cid(1)) == "a"
    refused_state = state
    state, decisions = reassign_to(state, cid(1), "c", T0 + HOUR, team)
    assert [(x.complaint_id, x.agent) for x in decisions] == [(cid(1), "c"), (cid(3), "a")]
    assert decisions[0].reason == "reassigned by a supervisor"
    assert state.queue == () and loads(state) == {"a": 1, "b": 2, "c": 1}
    with pytest.raises(Refused):
        reassign_to(refused_state, cid(0), "a", T0, team)


def test_reassignment_to_an_unknown_agent_is_refused():
    with pytest.raises(Refused) as caught:
        reassign_to(None, cid(1), "ghost", T0, team_spec(agent("a")))
    assert caught.value.rule == "unknown_agent"


def test_withdrawing_takes_a_complaint_from_its_agent_or_the_queue():
    team = team_spec(agent("a", 1))
    state, _ = offer(None, item(1), T0, team)
    state, _ = offer(state, item(2), T0, team)
    state, _ = offer(state, item(3), T0 + MIN, team)
    state, decisions = withdraw(state, cid(2), T0, team)
    assert decisions == [] and state.waiting() == (cid(3),)
    state, decisions = withdraw(state, cid(1), T0, team)
    assert [(x.complaint_id, x.agent) for x in decisions] == [(cid(3), "a")]
    assert withdraw(state, cid(99), T0, team) == (state, [])


# -- the roster changes ---------------------------------------------------------------------------

def test_a_new_agent_in_the_roster_joins_and_a_removed_one_keeps_its_work_until_released():
    before = team_spec(agent("a", 1), agent("b", 1))
    state, _ = offer(None, item(1), T0, before)
    holder = state.holder(cid(1))
    other = "b" if holder == "a" else "a"
    after = team_spec(agent(other, 1), agent("c", 1, presence="away"))
    state, d = offer(state, item(2), T0, after)
    assert d.agent == other
    assert state.holder(cid(1)) == holder and state.agent("c").presence == "away"
    state, _ = release(state, cid(1), T0, after)
    state, _ = due(state, T0, after)
    assert {a.id for a in state.agents} == {other, "c"}


def test_a_state_is_used_with_its_own_team_only():
    state = TeamState.initial(team_spec(agent("a"), team_id="x"))
    with pytest.raises(ValueError, match="state of team x used with team t"):
        offer(state, item(1), T0, team_spec(agent("a")))


def test_hours_apply_every_day_when_listed():
    team = team_spec(agent("a", 5), hours={"days": EVERY_DAY, "start": "08:00", "end": "20:00"})
    assert isinstance(offer(None, item(1), china("2026-12-06T08:00"), team)[1], Assigned)
    assert isinstance(offer(None, item(1), china("2026-12-06T20:00"), team)[1], Queued)
