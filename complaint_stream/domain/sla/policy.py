"""The SLA policy file (时限策略) operators edit: each clock's targets by priority, channel and category, the
calendar it counts on, the warnings, and the regulator's clock. Data, not code; loaded strictly.

The packaged ``policy.json`` is a provincial operator's policy, stated as such; where a regulation gives a
figure, the file cites it beside the value. Durations are ISO 8601 (``PT4H``, ``P15D``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from importlib import resources
from typing import Literal

from pydantic import Field, model_validator

from complaint_stream.domain.policy_files import PolicyFileError, PolicyModel, Readable, load_policy_file
from complaint_stream.domain.sla.calendar import AroundTheClock, Calendar, WorkingCalendar, WorkingHoursSpec
from complaint_stream.domain.sla.clock import warnings_problem
from complaint_stream.schemas import CaseChange, Category, Channel, Priority

__all__ = ["CLOCKS", "ClockName", "ClockPolicy", "EscalationPolicy", "EscalationRule", "Rung", "SlaPolicy",
           "SlaPolicyError", "SlaPolicyFile", "TargetRule"]

ClockName = Literal["first_response", "update", "resolution", "callback"]
#: The clocks every complaint has, in the order they start.
CLOCKS: tuple[ClockName, ...] = ("first_response", "update", "resolution", "callback")
CalendarName = Literal["24x7", "working"]
DEFAULT_POLICY = "policy.json"


class SlaPolicyError(PolicyFileError):
    """An SLA policy file that cannot be used; one line per problem."""


class Match(PolicyModel):
    """Which complaints a rule is for: every listed dimension must match (an empty list: any)."""

    categories: tuple[Category, ...] = ()
    channels: tuple[Channel, ...] = ()
    priorities: tuple[Priority, ...] = ()

    def matches(self, category: Category, channel: Channel, priority: Priority) -> bool:
        return ((not self.categories or category in self.categories)
                and (not self.channels or channel in self.channels)
                and (not self.priorities or priority in self.priorities))


class TargetRule(PolicyModel):
    """Targets for the complaints a rule matches (the first matching rule wins; then the clock's own)."""

    comment: str = Field(default="", alias="_comment")
    name: str = Field(min_length=1, max_length=64)
    match: Match
    targets: dict[Priority, timedelta]
    calendar: CalendarName | None = None


class ClockPolicy(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    calendar: CalendarName
    targets: dict[Priority, timedelta]
    rules: tuple[TargetRule, ...] = ()
    warnings: tuple[float, ...] | None = None
    #: Whether the clock stops counting while the case is pending on the customer (待客户反馈).
    pauses_when_pending: bool = True
    #: A reopened case: this clock counts on from where it stopped (``resume``) or anew (``restart``).
    on_reopen: Literal["resume", "restart"] = "resume"

    @model_validator(mode="after")
    def _complete(self) -> ClockPolicy:
        missing = [p.value for p in Priority if p not in self.targets]
        if missing:
            raise ValueError(f"targets: no target for {', '.join(missing)}")
        for rule in self.rules:
            for p, target in rule.targets.items():
                if target <= timedelta(0):
                    raise ValueError(f"rule {rule.name}: the target for {p.value} must be positive")
        if any(t <= timedelta(0) for t in self.targets.values()):
            raise ValueError("targets: every target must be positive")
        return self


class RegulatoryPolicy(PolicyModel):
    """The regulator's clock: calendar days from the customer's first complaint about the issue."""

    comment: str = Field(default="", alias="_comment")
    limit: timedelta
    #: Warnings when this much calendar time has passed (P10D, P13D: 5 and 2 days before a 15-day limit).
    warn_at: tuple[timedelta, ...] = ()

    @model_validator(mode="after")
    def _warnings_inside(self) -> RegulatoryPolicy:
        if list(self.warn_at) != sorted(set(self.warn_at)) or any(not timedelta(0) < w < self.limit
                                                                 for w in self.warn_at):
            raise ValueError("warn_at: increasing times between the start and the limit")
        return self

    @property
    def warnings(self) -> tuple[float, ...]:
        """The warnings as fractions of the limit (what a clock takes)."""
        return tuple(w / self.limit for w in self.warn_at)


StepName = Literal["warning", "breached"]
#: Every clock a rule of the ladder may name: the policy's four and the regulator's two.
LadderClock = Literal["first_response", "update", "resolution", "callback", "regulatory", "regulator_reply"]


class Rung(PolicyModel):
    """One rung of the escalation ladder: who acts at this level."""

    comment: str = Field(default="", alias="_comment")
    level: int = Field(ge=1, le=5)
    role: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(default="", max_length=200)


class EscalationRule(PolicyModel):
    """A step that escalates: the clock (any, when left out) and the step; for a warning, the fraction
    (any warning, when left out). Of the rules a step matches, the highest level wins."""

    comment: str = Field(default="", alias="_comment")
    name: str = Field(min_length=1, max_length=64)
    clock: LadderClock | None = None
    step: StepName
    fraction: float | None = Field(default=None, gt=0, lt=1)
    match: Match = Match()
    level: int = Field(ge=1, le=5)
    regulatory_risk: bool = False
    raise_priority_to: Priority | None = None

    def matches(self, clock: str, step: str, fraction: float, category: Category, channel: Channel,
                priority: Priority) -> bool:
        return ((self.clock is None or self.clock == clock) and self.step == step
                and (self.fraction is None or abs(self.fraction - fraction) < 1e-9)
                and self.match.matches(category, channel, priority))


class EscalationPolicy(PolicyModel):
    """The ladder (升级): its rungs, the rules that escalate, and how often a case that stays breached goes
    one rung up (by priority), up to the top rung."""

    comment: str = Field(default="", alias="_comment")
    ladder: tuple[Rung, ...]
    rules: tuple[EscalationRule, ...]
    re_escalate_after: dict[Priority, timedelta]

    @model_validator(mode="after")
    def _consistent(self) -> EscalationPolicy:
        levels = [r.level for r in self.ladder]
        if levels != list(range(1, len(levels) + 1)):
            raise ValueError(f"ladder: levels 1, 2, ... in order, got {levels}")
        for rule in self.rules:
            if rule.level not in levels:
                raise ValueError(f"rule {rule.name}: level {rule.level} is not on the ladder")
        missing = [p.value for p in Priority if p not in self.re_escalate_after]
        if missing:
            raise ValueError(f"re_escalate_after: no interval for {', '.join(missing)}")
        if any(t <= timedelta(0) for t in self.re_escalate_after.values()):
            raise ValueError("re_escalate_after: every interval must be positive")
        return self

    def rung(self, level: int) -> Rung:
        return self.ladder[min(level, len(self.ladder)) - 1]

    @property
    def top(self) -> int:
        return len(self.ladder)


class SlaPolicyFile(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    working_hours: WorkingHoursSpec
    warnings: tuple[float, ...] = (0.5, 0.75)
    clocks: dict[ClockName, ClockPolicy]
    regulatory: RegulatoryPolicy
    escalation: EscalationPolicy
    #: Changes published on the case (CaseUpdated.change) that tell the customer something: each restarts
    #: the update clock (the customer hears from us at least every N hours).
    contact_changes: tuple[CaseChange, ...] = (CaseChange.STATUS, CaseChange.CALLBACK)
    #: An ended case's clocks are forgotten this long after it ended (replays of its events stay no-ops).
    retention: timedelta = timedelta(days=30)

    @model_validator(mode="after")
    def _every_clock(self) -> SlaPolicyFile:
        missing = [c for c in CLOCKS if c not in self.clocks]
        if missing:
            raise ValueError(f"clocks: missing {', '.join(missing)}")
        for name, warnings in [("warnings", self.warnings),
                               *((f"clocks.{c}.warnings", p.warnings) for c, p in self.clocks.items())]:
            problem = None if warnings is None else warnings_problem(warnings)
            if problem:
                raise ValueError(f"{name}: {problem}")
        return self


class SlaPolicy:
    """A checked policy: the target, calendar and warnings of each clock for a complaint."""

    def __init__(self, file: SlaPolicyFile, source: str = "<policy>", *,
                 working: WorkingCalendar | None = None):
        self.file = file
        self.source = source
        hours = file.working_hours
        self.calendars: Mapping[str, Calendar] = {
            "24x7": AroundTheClock(),
            "working": working or WorkingCalendar.from_file_hours(hours),
        }

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Readable | None = None,
             working: WorkingCalendar | None = None) -> SlaPolicy:
        """Read and check a policy file (default: the packaged ``policy.json``); :class:`SlaPolicyError` with
        one line per problem. ``working``: an operator's working calendar instead of the official one with
        the file's working hours."""
        src = source if source is not None else resources.files("complaint_stream.domain.sla") / DEFAULT_POLICY
        name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else str(src)
        return cls(load_policy_file(src, SlaPolicyFile, error=SlaPolicyError), name, working=working)

    def target(self, clock: ClockName, *, category: Category, channel: Channel,
               priority: Priority) -> tuple[timedelta, Calendar, str]:
        """The target and calendar of ``clock`` for such a complaint, and the rule that set them
        (``default``: the clock's own targets)."""
        target, calendar, rule = self.target_by_name(clock, category=category, channel=channel, priority=priority)
        return target, self.calendars[calendar], rule

    def target_by_name(self, clock: ClockName, *, category: Category, channel: Channel,
                       priority: Priority) -> tuple[timedelta, CalendarName, str]:
        """:meth:`target` with the calendar's name in this policy (``24x7`` or ``working``), as a clock's
        state keeps it."""
        policy = self.file.clocks[clock]
        for rule in policy.rules:
            if rule.match.matches(category, channel, priority) and priority in rule.targets:
                return rule.targets[priority], rule.calendar or policy.calendar, rule.name
        return policy.targets[priority], policy.calendar, "default"

    def warnings(self, clock: ClockName) -> tuple[float, ...]:
        own = self.file.clocks[clock].warnings
        return self.file.warnings if own is None else own
