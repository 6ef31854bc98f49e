"""``LifecycleStage.next_due``: the runtime's sweep skips a case until then, so it must never be later than
the first time ``due`` would do anything (earlier only costs a look).

Every state the recorded scenario goes through (after each of its events, timers fired up to that event)
is checked: ``due`` a microsecond before ``next_due`` changes nothing and emits nothing; with no
``next_due``, not even ten years on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from complaint_stream.domain.stage import ALWAYS, run_in_event_time
from complaint_stream.schemas import CaseRecord
from complaint_stream.topics import CASE_LINKS
from tests.support import cases as c
from tests.support.lifecycle_scenario import events as scenario_events

TICK = timedelta(microseconds=1)


def states_along(events, stage) -> list[CaseRecord]:
    """Every distinct state after each prefix of ``events`` (timers fired up to its last event)."""
    seen: dict[str, CaseRecord] = {}
    out: list[CaseRecord] = []
    for k in range(1, len(events) + 1):
        state: dict[str, CaseRecord] = {}
        list(run_in_event_time(stage, events[:k], until=events[k - 1].time, state=state, feedback=[CASE_LINKS],
                               on_refused=lambda e, r: None))
        for key, rec in state.items():
            if seen.get(key) != rec:
                seen[key] = rec
                out.append(rec)
    return out


@pytest.mark.parametrize("policy", [{}, {"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}],
                         ids=["packaged policy", "no quiet hours"])
def test_due_does_nothing_before_next_due(policy):
    stage = c.stage(**policy)
    events = scenario_events()
    states = states_along(events, stage)
    assert len(states) > 30
    timed = 0
    for rec in states:
        at = stage.next_due(rec)
        if at is ALWAYS:
            continue
        before = (events[-1].time + timedelta(days=3650)) if at is None else at - TICK
        new, outputs = stage.due(rec, before)
        assert new == rec and not outputs, (
            f"{rec.complaint_id} ({rec.kind}, {rec.status}): next_due {at} but due at {before} did"
            f" {[o.topic.name for o in outputs]}{' and changed it' if new != rec else ''}")
        timed += at is not None
    assert timed > 20  # most states have a timer (held messages, parked updates, callbacks, retention)


def test_next_due_is_when_the_timer_fires():
    """Not only never late: for a resolved case the callback's due time is the one given, and due then acts."""
    stage = c.stage()
    events = scenario_events()
    states = [s for s in states_along(events, stage) if s.callback is not None and s.callback.announced == 0
              and s.callback.attempts == 0 and s.callback.outcome is None]
    assert states
    for rec in states:
        at = stage.next_due(rec)
        assert at is not None and at <= rec.callback.due_at
        new, outputs = stage.due(rec, rec.callback.due_at)
        assert outputs and new != rec
