"""One SLA clock (时限): counted time against a target, on a calendar, with pauses, warnings and a breach.

A clock is a value (:class:`Clock`); every change is a function of the clock and the time it happens at,
returning the new clock — nothing reads a wall clock, so a test runs simulated weeks in milliseconds.

* :func:`start` a clock at an instant with a target (``timedelta`` of counted time) and warning fractions
  (0.5 and 0.75 by default: 50 % and 75 % of the target counted);
* :func:`pause` while the case waits on the customer, :func:`resume` after (the counted time before the
  pause is kept; the time paused is recorded, in calendar time);
* :func:`retime` to a new target as if it had applied from the start (a priority change: ServiceNow's
  retroactive start) — the counted time stays, the deadline moves;
* :func:`stop` when the clock's goal is met (``fulfilled``) or the case ends without it (``cancelled``),
  :func:`reopen` when a resolved case is reopened (counting on from where it stopped, or anew);
* :func:`due_steps` the warnings and the breach that have fallen due by an instant, in order, each once:
  the caller (the SLA stage's timer) emits them and keeps the returned clock, so a step is never emitted
  twice, and :func:`next_due` says when to look again.

Call :func:`due_steps` at an event's instant before applying it (:func:`pause`, :func:`retime`,
:func:`stop`): the steps that fell due before it are then emitted with the instant each fell due; one
found only after the count changed is given the instant it is found.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from complaint_stream.domain.sla.calendar import Calendar

__all__ = ["Clock", "ClockState", "Step", "counted", "deadline", "due_steps", "next_due", "pause", "reopen",
           "resume", "retime", "start", "stop", "warnings_problem"]

ClockState = Literal["running", "paused", "fulfilled", "breached_fulfilled", "cancelled"]
DEFAULT_WARNINGS = (0.5, 0.75)


@dataclass(frozen=True, slots=True)
class Clock:
    """A clock's state. ``counted``: time counted up to ``since`` (the last start, resume or re-time);
    while running, the time counted after ``since`` is added on the calendar. ``fired``: how many of the
    steps (each warning, then the breach) have been emitted."""

    name: str
    target: timedelta
    started_at: datetime
    since: datetime
    counted: timedelta = timedelta(0)
    state: ClockState = "running"
    paused_at: datetime | None = None
    paused_total: timedelta = timedelta(0)
    warnings: tuple[float, ...] = DEFAULT_WARNINGS
    fired: int = 0
    breached: bool = False
    stopped_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The fractions of the target at which steps fall due: the warnings, then 1.0 (the breach)."""
        return (*self.warnings, 1.0)


@dataclass(frozen=True, slots=True)
class Step:
    """A step that fell due: a warning at ``fraction`` of the target, or the breach (``fraction`` 1.0)."""

    kind: Literal["warning", "breached"]
    fraction: float
    due_at: datetime
    counted: timedelta


def warnings_problem(warnings: tuple[float, ...]) -> str | None:
    """Why ``warnings`` cannot be a clock's warnings (increasing fractions between 0 and 1), or ``None``."""
    if list(warnings) != sorted(set(warnings)) or any(not 0 < w < 1 for w in warnings):
        return f"increasing fractions between 0 and 1, got {list(warnings)}"
    return None


def start(name: str, target: timedelta, at: datetime, *, warnings: tuple[float, ...] = DEFAULT_WARNINGS) -> Clock:
    if target <= timedelta(0):
        raise ValueError(f"clock {name}: the target must be positive, got {target}")
    problem = warnings_problem(warnings)
    if problem:
        raise ValueError(f"clock {name}: warnings must be {problem}")
    return Clock(name=name, target=target, started_at=at, since=at, warnings=tuple(warnings))


def counted(clock: Clock, at: datetime, calendar: Calendar) -> timedelta:
    """Counted time by ``at``: up to ``since``, plus, while running, the calendar's time since then."""
    if not clock.running:
        return clock.counted
    return clock.counted + calendar.elapsed(clock.since, at)


def deadline(clock: Clock, calendar: Calendar, fraction: float = 1.0) -> datetime | None:
    """When ``fraction`` of the target will have been counted, if the clock keeps running (``None`` while
    paused or stopped). A threshold already passed gives the instant it was passed, as counted now."""
    if not clock.running:
        return None
    left = clock.target * fraction - clock.counted
    if left <= timedelta(0):
        return clock.since
    return calendar.add(clock.since, left)


def pause(clock: Clock, at: datetime, calendar: Calendar) -> Clock:
    """The case waits on the customer: counting stops at ``at`` (a paused or stopped clock: unchanged)."""
    if not clock.running:
        return clock
    at = max(at, clock.since)
    return replace(clock, counted=counted(clock, at, calendar), since=at, state="paused", paused_at=at)


def resume(clock: Clock, at: datetime) -> Clock:
    """Counting starts again at ``at``; the time paused is added to ``paused_total``."""
    if clock.state != "paused" or clock.paused_at is None:
        return clock
    at = max(at, clock.paused_at)
    return replace(clock, state="running", since=at, paused_at=None,
                   paused_total=clock.paused_total + (at - clock.paused_at))


def retime(clock: Clock, target: timedelta, at: datetime, calendar: Calendar) -> Clock:
    """A new target as if it had applied from the start: the counted time stays, the steps fall due by the
    new target (those already emitted are not emitted again; a breach now due is due at once)."""
    if target <= timedelta(0):
        raise ValueError(f"clock {clock.name}: the target must be positive, got {target}")
    if clock.state in ("fulfilled", "breached_fulfilled", "cancelled"):
        return clock
    at = max(at, clock.since)  # a change never goes back before the clock's last one (late events)
    now = counted(clock, at, calendar)
    since = at if clock.running else clock.since
    return replace(clock, target=target, counted=now, since=since)


def stop(clock: Clock, at: datetime, calendar: Calendar, *, met: bool) -> Clock:
    """The goal is met (``met``: fulfilled, noting whether it had breached first) or the case ended
    without it (cancelled). A stopped clock stays stopped."""
    if clock.state in ("fulfilled", "breached_fulfilled", "cancelled"):
        return clock
    at = max(at, clock.since, clock.paused_at or clock.since)  # never before the clock's last change
    final = counted(clock, at, calendar) if clock.running else clock.counted
    state: ClockState = ("breached_fulfilled" if clock.breached else "fulfilled") if met else "cancelled"
    return replace(clock, counted=final, since=at, state=state, paused_at=None, stopped_at=at,
                   paused_total=clock.paused_total + (at - clock.paused_at if clock.paused_at else timedelta(0)))


def reopen(clock: Clock, at: datetime, *, restart: bool = False, count_gap: bool = False) -> Clock:
    """A stopped clock counts again from ``at``: on from the time it had counted (default), or from zero
    with its steps to emit again (``restart``); ``count_gap``: the time it was stopped counts too (a clock
    of calendar days from a fixed start, such as the regulator's). A running or paused clock: unchanged."""
    if clock.state not in ("fulfilled", "breached_fulfilled", "cancelled"):
        return clock
    if restart:
        return replace(start(clock.name, clock.target, at, warnings=clock.warnings), paused_total=clock.paused_total)
    since = (clock.stopped_at or clock.since) if count_gap else max(at, clock.since)
    return replace(clock, state="running", since=since, stopped_at=None)


def due_steps(clock: Clock, at: datetime, calendar: Calendar) -> tuple[Clock, tuple[Step, ...]]:
    """The steps due by ``at`` and not emitted yet, in order, and the clock that remembers them."""
    if not clock.running:
        return clock, ()
    steps = []
    fired = clock.fired
    for fraction in clock.thresholds[clock.fired:]:
        due = deadline(clock, calendar, fraction)
        assert due is not None
        if due > at:
            break
        fired += 1
        steps.append(Step("breached" if fraction == 1.0 else "warning", fraction, due, clock.target * fraction))
    if not steps:
        return clock, ()
    return replace(clock, fired=fired, breached=clock.breached or steps[-1].kind == "breached"), tuple(steps)


def next_due(clock: Clock, calendar: Calendar) -> datetime | None:
    """When the next step falls due (``None``: paused, stopped, or every step emitted)."""
    if not clock.running or clock.fired >= len(clock.thresholds):
        return None
    return deadline(clock, calendar, clock.thresholds[clock.fired])
