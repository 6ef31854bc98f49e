"""What the lifecycle does with the SLA worker's events: warnings and breaches on the timeline and published;
the other steps left to the SLA topic; an escalation on the timeline, raising the priority where the ladder
says so and never lowering it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.schemas import (
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    ComplaintEscalated,
    Envelope,
    Priority,
    SlaClock,
    SlaEvent,
    SlaStep,
    wrap,
)
from complaint_stream.topics import CASES
from tests.support.cases import T0, cid, opened, stage

MIN = timedelta(minutes=1)


def sla(n: int, step: str, at, clock: str = "resolution", material: str = "") -> Envelope[Any]:
    data = SlaEvent(complaint_id=cid(n), clock=SlaClock(clock), step=SlaStep(step), run=1, at=at, observed_at=at,
                    due_at=at, target_seconds=3600, elapsed_seconds=3600 if step == "breached" else 1800,
                    fraction=1.0 if step == "breached" else (0.5 if step == "warning" else None), calendar="24x7",
                    priority=Priority.P3, category=Category.NETWORK, channel=Channel.APP)
    return wrap(data, source="/workers/sla", subject=cid(n), event_id=f"sla-{n}-{step}-{material}", time=at)


def escalated(n: int, at, raise_to: str | None, level: int = 3) -> Envelope[Any]:
    data = ComplaintEscalated(complaint_id=cid(n), level=level, reason="regulatory at 67% (regulatory-warning)",
                              escalated_to="regional_director of network-sz", escalated_at=at, priority=Priority.P3,
                              clock=SlaClock.REGULATORY, step=SlaStep.WARNING, rule="regulatory-warning",
                              regulatory_risk=True, raise_priority_to=Priority(raise_to) if raise_to else None)
    return wrap(data, source="/workers/sla", subject=cid(n), event_id=f"esc-{n}-{raise_to}-{level}", time=at)


def changes(events) -> list[CaseUpdated]:
    return [o.event.data for o in run_in_event_time(stage(), events) if o.topic == CASES]


def test_warnings_and_breaches_go_on_the_timeline_other_steps_do_not():
    events = [*opened(1), sla(1, "started", T0 + MIN), sla(1, "warning", T0 + 30 * MIN),
              sla(1, "paused", T0 + 31 * MIN), sla(1, "breached", T0 + 60 * MIN), sla(1, "fulfilled", T0 + 61 * MIN)]
    sla_changes = [c for c in changes(events) if c.change is CaseChange.SLA]
    assert [c.reason_code for c in sla_changes] == ["resolution_warning", "resolution_breached"]
    assert [c.at for c in sla_changes] == [T0 + 30 * MIN, T0 + 60 * MIN]


def test_an_escalation_raises_the_priority_where_the_ladder_says_so_and_never_lowers_it():
    raised = [c for c in changes([*opened(1), escalated(1, T0 + MIN, "P1")]) if c.change is CaseChange.ESCALATED]
    assert [(c.priority, c.reason_code) for c in raised] == [(Priority.P1, "level_3")]
    kept = [c for c in changes([*opened(2), escalated(2, T0 + MIN, "P4")]) if c.change is CaseChange.ESCALATED]
    assert [c.priority for c in kept] == [Priority.P3]  # the classified P3 stays: P4 would lower it
    plain = [c for c in changes([*opened(3), escalated(3, T0 + MIN, None, level=1)])
             if c.change is CaseChange.ESCALATED]
    assert [c.priority for c in plain] == [Priority.P3]
