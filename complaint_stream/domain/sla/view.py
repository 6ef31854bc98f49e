"""One complaint's clocks as an operator reads them (``complaints sla show``): elapsed, paused, remaining,
and the next step — computed for an instant given as an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from complaint_stream.domain.sla import clock as clocks
from complaint_stream.domain.sla.stage import SlaCase, SlaStage

__all__ = ["ClockView", "describe"]


@dataclass(frozen=True, slots=True)
class ClockView:
    clock: str
    run: int
    state: str              # running, paused, fulfilled, breached_fulfilled, cancelled
    calendar: str
    rule: str
    target: timedelta
    elapsed: timedelta      # counted time by ``now`` on the clock's calendar
    paused: timedelta       # calendar time spent paused
    remaining: timedelta    # target minus elapsed (negative: over)
    breached: bool
    due_at: datetime | None  # the breach, if it keeps running
    next_step: str          # "warning at 75% at <time>", "breach at <time>", "none"


def describe(case: SlaCase, stage: SlaStage, now: datetime) -> list[ClockView]:
    """Every clock of ``case`` as of ``now``."""
    views = []
    for t in case.clocks:
        c, calendar = t.clock, stage.policy.calendars[t.calendar]
        elapsed = clocks.counted(c, max(now, c.since), calendar)
        paused = c.paused_total + (max(now - c.paused_at, timedelta(0)) if c.state == "paused" and c.paused_at
                                   else timedelta(0))
        nxt = clocks.next_due(c, calendar)
        if nxt is None:
            step = "none" if c.state != "paused" else "none while paused"
        else:
            fraction = c.thresholds[c.fired]
            step = (f"breach at {nxt.isoformat()}" if fraction == 1.0
                    else f"warning at {fraction:.0%} at {nxt.isoformat()}")
        views.append(ClockView(clock=t.name.value, run=t.run, state=c.state, calendar=t.calendar, rule=t.rule,
                               target=c.target, elapsed=elapsed, paused=paused, remaining=c.target - elapsed,
                               breached=c.breached, due_at=clocks.deadline(c, calendar), next_step=step))
    return views
