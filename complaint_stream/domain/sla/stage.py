"""The SLA stage (时限管理与升级): every open complaint's clocks, driven by the lifecycle's case events.

State per complaint id (:class:`SlaCase`): its clocks (:mod:`~complaint_stream.domain.sla.clock`), what the
case was at its last change (status, priority, category, channel, team) and how far up the escalation
ladder it went. Input: :class:`~complaint_stream.schemas.CaseUpdated` (the lifecycle's topic: every change
of a case, with the case after it), in the order of the case's ``sequence``; a replayed or older one is a
no-op. Output: :class:`~complaint_stream.schemas.SlaEvent` for every step of a clock and
:class:`~complaint_stream.schemas.ComplaintEscalated` when the policy's ladder says someone must act.

What starts, pauses and stops which clock (the policy file sets targets, calendars and the ladder):

=================  ==========================================================================================
first_response     from receipt; fulfilled when a person first answers (``first_response_at``) or the case
                   is resolved
update             from the first response; each change in the policy's ``contact_changes`` (a status update
                   from an agent, a callback) fulfils the period and starts the next; stops at resolution
resolution         from receipt; fulfilled at resolution; a reopen counts on (or restarts: ``on_reopen``)
callback           from resolution; fulfilled by the callback (回访); a reopen cancels it
regulatory         15 calendar days from the customer's first complaint about the issue (across channels,
                   follow-ups and repeats: ``first_contact_at``); fulfilled at resolution, never paused
regulator_reply    a regulator-forwarded appeal's own reply deadline (``regulator_reply_by``)
=================  ==========================================================================================

While the case is pending on the customer the clocks with ``pauses_when_pending`` stop counting. A
priority or category change re-times the policy's clocks as if the new target had applied from the start.
Closing, cancelling or rejecting the case cancels what still runs; the ended case's state is kept for the
policy's ``retention`` (replays of its events stay no-ops), then forgotten.

Warnings and breaches fall due in :meth:`SlaStage.due` (the runtime's timer) and, for a step that fell
due before an event's own time, when that event is applied; each is emitted once, with the instant it
fell due. Event ids derive from complaint, clock, run and step: a restart repeats no step under a new id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from complaint_stream.domain.intake import event_id
from complaint_stream.domain.sla import clock as clocks
from complaint_stream.domain.sla.calendar import Calendar
from complaint_stream.domain.sla.clock import Clock, Step
from complaint_stream.domain.sla.policy import EscalationRule, SlaPolicy
from complaint_stream.domain.stage import Output, StageBase
from complaint_stream.schemas import (
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    ComplaintEscalated,
    Envelope,
    Payload,
    Priority,
    SlaClock,
    SlaEvent,
    SlaStep,
    TicketStatus,
    wrap,
)
from complaint_stream.topics import CASES, ESCALATIONS, SLA_EVENTS, TopicSpec

__all__ = ["SlaCase", "SlaStage", "Tracked"]

POLICY_CLOCKS = (SlaClock.FIRST_RESPONSE, SlaClock.UPDATE, SlaClock.RESOLUTION, SlaClock.CALLBACK)
ENDED = (TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.REJECTED)
#: A case's clocks are kept in the order of the enum (what ``complaints sla show`` lists).
CLOCK_ORDER = {c.value: i for i, c in enumerate(SlaClock)}


@dataclass(frozen=True, slots=True)
class Tracked:
    """One clock of a case, with what the events about it need: its calendar, the policy rule that set its
    target, its run (a reopen or the update clock's next period counts on) and how often it paused and was
    re-timed (the steps' ids)."""

    clock: Clock
    calendar: str
    rule: str = "default"
    run: int = 1
    pauses: int = 0
    retimes: int = 0

    @property
    def name(self) -> SlaClock:
        return SlaClock(self.clock.name)

    @property
    def stopped(self) -> bool:
        return self.clock.state in ("fulfilled", "breached_fulfilled", "cancelled")


@dataclass(frozen=True, slots=True)
class SlaCase:
    """A complaint's clocks and what its last change said about it."""

    complaint_id: str
    sequence: int
    status: TicketStatus
    priority: Priority
    category: Category
    channel: Channel
    team: str | None = None
    clocks: tuple[Tracked, ...] = ()
    #: The highest rung of the ladder reached, how many re-escalations were sent, and when the last
    #: escalation was (a case that stays breached goes up again after the policy's interval).
    level: int = 0
    repeats: int = 0
    last_escalated_at: datetime | None = None
    ended_at: datetime | None = None

    def get(self, name: SlaClock) -> Tracked | None:
        for t in self.clocks:
            if t.clock.name == name.value:
                return t
        return None


class _Run:
    """One apply or due call: the case as it changes, and the outputs in order."""

    def __init__(self, case: SlaCase, now: datetime):
        self.case = case
        self.now = now
        self.outputs: list[Output] = []

    def put(self, tracked: Tracked) -> None:
        others = tuple(t for t in self.case.clocks if t.clock.name != tracked.clock.name)
        self.case = replace(self.case, clocks=tuple(sorted((*others, tracked), key=lambda t: CLOCK_ORDER[t.clock.name])))


class SlaStage(StageBase[SlaCase]):
    """Case events in; clock steps and escalations out. See the module's docstring."""

    name = "sla"
    consumes: tuple[type[Payload], ...] = (CaseUpdated,)
    produces: tuple[TopicSpec, ...] = (SLA_EVENTS, ESCALATIONS)
    state_type: Any = SlaCase
    #: Half a second: a breach is published within about a second of its instant (the runtime's index of
    #: deadlines makes a sweep cost what falls due, not what is open).
    timer_interval: float | None = 0.5

    def __init__(self, policy: SlaPolicy, source: str = "/workers/sla"):
        self.policy = policy
        self.source = source

    # -- the stage shape ------------------------------------------------------------------------

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.complaint_id)

    def apply(self, state: SlaCase | None, event: Envelope[Any],
              now: datetime) -> tuple[SlaCase | None, Sequence[Output]]:
        data: CaseUpdated = event.data
        if state is not None and data.sequence <= state.sequence:
            return state, ()  # a replay, a duplicate or an older change: applied already
        at = data.at
        if state is None:
            # as a new case: the first change (usually ``opened``) moves it to its status
            case = SlaCase(complaint_id=str(data.complaint_id), sequence=0, status=TicketStatus.ACKNOWLEDGED,
                           priority=data.priority, category=data.category, channel=data.channel, team=data.team)
            if data.status in ENDED:  # first seen ended (the worker started after it): nothing to count
                return replace(case, sequence=data.sequence, ended_at=at), ()
            run = _Run(case, now)
            self._open(run, data)
        else:
            run = _Run(state, now)
            if not state.clocks and data.status not in ENDED:  # first seen ended, now open again
                run.case = replace(state, ended_at=None)
                self._open(run, data)
        self._fire(run, at)
        self._change(run, data)
        self._fire(run, at)  # what a re-time made due at once
        run.case = replace(run.case, sequence=data.sequence, status=data.status, priority=data.priority,
                           category=data.category, channel=data.channel, team=data.team or run.case.team)
        if data.status in ENDED and run.case.ended_at is None:
            run.case = replace(run.case, ended_at=at)
        return run.case, run.outputs

    def due(self, state: SlaCase, now: datetime) -> tuple[SlaCase | None, Sequence[Output]]:
        if state.ended_at is not None and now >= state.ended_at + self.policy.file.retention:
            return None, ()
        run = _Run(state, now)
        self._fire(run, now)
        self._re_escalate(run, now)
        return run.case, run.outputs

    def next_due(self, state: SlaCase) -> datetime | None:
        times = []
        for t in state.clocks:
            due = clocks.next_due(t.clock, self._calendar(t))
            if due is not None:
                times.append(due)
        again = self._next_re_escalation(state)
        if again is not None:
            times.append(again)
        if state.ended_at is not None:
            times.append(state.ended_at + self.policy.file.retention)
        return min(times, default=None)

    # -- starting, changing and stopping clocks --------------------------------------------------

    def _calendar(self, tracked: Tracked) -> Calendar:
        return self.policy.calendars[tracked.calendar]

    def _target(self, name: SlaClock, case: SlaCase) -> tuple[timedelta, str, str]:
        return self.policy.target_by_name(name.value, category=case.category,  # type: ignore[arg-type]
                                          channel=case.channel, priority=case.priority)

    def _start(self, run: _Run, name: SlaClock, at: datetime, *, run_number: int = 1) -> None:
        target, calendar, rule = self._target(name, run.case)
        clock = clocks.start(name.value, target, at, warnings=self.policy.warnings(name.value))  # type: ignore[arg-type]
        tracked = Tracked(clock=clock, calendar=calendar, rule=rule, run=run_number)
        run.put(tracked)
        self._emit(run, tracked, SlaStep.STARTED, at)

    def _open(self, run: _Run, data: CaseUpdated) -> None:
        """A case seen for the first time: its clocks from receipt (and the regulator's from the first
        complaint about the issue), as if the worker had seen it from the start."""
        self._start(run, SlaClock.FIRST_RESPONSE, data.received_at)
        self._start(run, SlaClock.RESOLUTION, data.received_at)
        reg = self.policy.file.regulatory
        self._start_fixed(run, SlaClock.REGULATORY, data.first_contact_at, reg.limit, reg.warnings, "regulatory")
        if data.regulator_reply_by is not None:
            target = max(data.regulator_reply_by - data.received_at, timedelta(seconds=1))
            self._start_fixed(run, SlaClock.REGULATOR_REPLY, data.received_at, target,
                              self.policy.file.warnings, "regulator-deadline")

    def _start_fixed(self, run: _Run, name: SlaClock, at: datetime, target: timedelta,
                     warnings: tuple[float, ...], rule: str) -> None:
        tracked = Tracked(clock=clocks.start(name.value, target, at, warnings=warnings), calendar="24x7", rule=rule)
        run.put(tracked)
        self._emit(run, tracked, SlaStep.STARTED, at)

    def _change(self, run: _Run, data: CaseUpdated) -> None:
        at, case = data.at, run.case
        if (data.priority, data.category) != (case.priority, case.category):
            self._retime(run, data)
        fr = run.case.get(SlaClock.FIRST_RESPONSE)
        answered = data.first_response_at or (at if data.status is TicketStatus.RESOLVED else None)
        if fr is not None and not fr.stopped and answered is not None:
            self._stop(run, fr, max(answered, fr.clock.since), met=True)
            if data.status not in (TicketStatus.RESOLVED, *ENDED):
                self._start(run, SlaClock.UPDATE, max(answered, fr.clock.since))
        elif data.change in self.policy.file.contact_changes and data.status not in (TicketStatus.RESOLVED, *ENDED):
            update = run.case.get(SlaClock.UPDATE)
            if update is not None and not update.stopped:
                self._stop(run, update, at, met=True)
                self._start(run, SlaClock.UPDATE, at, run_number=update.run + 1)
        previous = case.status
        if data.change is CaseChange.REOPENED or (previous is TicketStatus.RESOLVED
                                                   and data.status not in (TicketStatus.RESOLVED, *ENDED)):
            self._reopen(run, at)
        if data.status is TicketStatus.PENDING and previous is not TicketStatus.PENDING:
            for t in run.case.clocks:
                if not t.stopped and t.clock.running and self._pauses(t.name):
                    paused = replace(t, clock=clocks.pause(t.clock, at, self._calendar(t)), pauses=t.pauses + 1)
                    run.put(paused)
                    self._emit(run, paused, SlaStep.PAUSED, at, suffix=f":{paused.pauses}")
        elif previous is TicketStatus.PENDING and data.status is not TicketStatus.PENDING:
            for t in run.case.clocks:
                if t.clock.state == "paused":
                    resumed = replace(t, clock=clocks.resume(t.clock, at))
                    run.put(resumed)
                    self._emit(run, resumed, SlaStep.RESUMED, at, suffix=f":{resumed.pauses}")
        if data.status is TicketStatus.RESOLVED and previous is not TicketStatus.RESOLVED:
            for name in (SlaClock.UPDATE, SlaClock.RESOLUTION, SlaClock.REGULATORY, SlaClock.REGULATOR_REPLY):
                running = run.case.get(name)
                if running is not None and not running.stopped:
                    self._stop(run, running, at, met=True)
            cb = run.case.get(SlaClock.CALLBACK)
            self._start(run, SlaClock.CALLBACK, at, run_number=1 if cb is None else cb.run + 1)
        if data.change is CaseChange.CALLBACK:
            cb = run.case.get(SlaClock.CALLBACK)
            if cb is not None and not cb.stopped:
                self._stop(run, cb, at, met=True)
        if data.status in ENDED:
            for t in run.case.clocks:
                if not t.stopped:
                    self._stop(run, t, at, met=False)

    def _pauses(self, name: SlaClock) -> bool:
        if name not in POLICY_CLOCKS:
            return False  # the regulator's calendar days do not wait for the customer
        return self.policy.file.clocks[name.value].pauses_when_pending  # type: ignore[index]

    def _retime(self, run: _Run, data: CaseUpdated) -> None:
        """The new priority or category's targets for the policy's clocks, as if they had applied from the
        start (ServiceNow's retroactive start): the counted time stays, the deadline moves."""
        probe = replace(run.case, priority=data.priority, category=data.category)
        for t in run.case.clocks:
            if t.name not in POLICY_CLOCKS or t.stopped:
                continue
            target, calendar, rule = self._target(t.name, probe)
            if target == t.clock.target:
                continue
            changed = replace(t, clock=clocks.retime(t.clock, target, data.at, self._calendar(t)),
                              rule=rule, retimes=t.retimes + 1)
            run.put(changed)
            self._emit(run, changed, SlaStep.RETIMED, data.at, suffix=f":{changed.retimes}")
        run.case = replace(run.case, priority=data.priority, category=data.category)

    def _reopen(self, run: _Run, at: datetime) -> None:
        cb = run.case.get(SlaClock.CALLBACK)
        if cb is not None and not cb.stopped:
            self._stop(run, cb, at, met=False)
        for name in (SlaClock.RESOLUTION, SlaClock.REGULATORY, SlaClock.REGULATOR_REPLY):
            t = run.case.get(name)
            if t is None or not t.stopped:
                continue
            if name is SlaClock.RESOLUTION:
                restart = self.policy.file.clocks["resolution"].on_reopen == "restart"
                clock = clocks.reopen(t.clock, at, restart=restart)
            else:
                clock = clocks.reopen(t.clock, at, count_gap=True)
            reopened = replace(t, clock=clock, run=t.run + 1)
            run.put(reopened)
            self._emit(run, reopened, SlaStep.STARTED, at)
        update = run.case.get(SlaClock.UPDATE)
        if update is not None and update.stopped:
            self._start(run, SlaClock.UPDATE, at, run_number=update.run + 1)

    def _stop(self, run: _Run, t: Tracked, at: datetime, *, met: bool) -> None:
        self._fire(run, at, only=t.name)  # the steps that fell due before it stopped
        current = run.case.get(t.name) or t
        stopped = replace(current, clock=clocks.stop(current.clock, at, self._calendar(current), met=met))
        run.put(stopped)
        if met:
            on_time = stopped.clock.counted <= stopped.clock.target
            self._emit(run, stopped, SlaStep.FULFILLED, at, on_time=on_time)
        else:
            self._emit(run, stopped, SlaStep.CANCELLED, at)

    # -- warnings, breaches and the escalation ladder --------------------------------------------

    def _fire(self, run: _Run, at: datetime, only: SlaClock | None = None) -> None:
        """Emit the warnings and breaches due by ``at`` (each with its own instant), and escalate."""
        for t in run.case.clocks:
            if only is not None and t.name is not only:
                continue
            clock, steps = clocks.due_steps(t.clock, at, self._calendar(t))
            if not steps:
                continue
            fired = replace(t, clock=clock)
            run.put(fired)
            for step in steps:
                kind = SlaStep.BREACHED if step.kind == "breached" else SlaStep.WARNING
                suffix = "" if kind is SlaStep.BREACHED else f":{step.fraction:g}"
                self._emit(run, fired, kind, step.due_at, fraction=step.fraction, counted=step.counted,
                           suffix=suffix)
                self._escalate_step(run, fired, kind, step, suffix)

    def _escalate_step(self, run: _Run, t: Tracked, kind: SlaStep, step: Step, suffix: str) -> None:
        case = run.case
        rules = [r for r in self.policy.file.escalation.rules
                 if r.matches(t.name.value, kind.value, step.fraction, case.category, case.channel, case.priority)]
        if not rules:
            return
        rule: EscalationRule = max(rules, key=lambda r: r.level)  # the first of the highest level
        what = f"{t.name.value} {'breached' if kind is SlaStep.BREACHED else f'at {step.fraction:.0%}'}"
        self._send_escalation(run, rule.level, step.due_at, f"esc:{t.name.value}:{t.run}:{kind.value}{suffix}",
                              reason=f"{what} ({rule.name})", clock=t.name, step=kind, rule=rule.name,
                              regulatory_risk=rule.regulatory_risk, raise_priority_to=rule.raise_priority_to)

    def _breached_running(self, case: SlaCase) -> list[Tracked]:
        return [t for t in case.clocks if t.clock.running and t.clock.breached]

    def _next_re_escalation(self, case: SlaCase) -> datetime | None:
        """A case with a clock that stays breached goes one rung up per interval, up to the top (the top
        rung has it; a new breach or warning rule still escalates on its own)."""
        if (case.last_escalated_at is None or case.level >= self.policy.file.escalation.top
                or not self._breached_running(case)):
            return None
        return case.last_escalated_at + self.policy.file.escalation.re_escalate_after[case.priority]

    def _re_escalate(self, run: _Run, now: datetime) -> None:
        ladder = self.policy.file.escalation
        for _ in range(ladder.top):
            again = self._next_re_escalation(run.case)
            if again is None or again > now:
                return
            case = run.case
            breached = ", ".join(t.name.value for t in self._breached_running(case))
            level = min(case.level + 1, ladder.top)
            repeat = case.repeats + 1
            run.case = replace(case, repeats=repeat)
            self._send_escalation(run, level, again, f"esc:re:{repeat}", reason=f"{breached} still breached"
                                  f" {ladder.re_escalate_after[case.priority]} after the last escalation",
                                  clock=self._breached_running(case)[0].name, step=SlaStep.BREACHED,
                                  rule="re-escalation", repeat=repeat, regulatory_risk=level >= ladder.top)

    def _send_escalation(self, run: _Run, level: int, at: datetime, material: str, *, reason: str,
                         clock: SlaClock, step: SlaStep, rule: str, repeat: int = 0, regulatory_risk: bool = False,
                         raise_priority_to: Priority | None = None) -> None:
        case = run.case
        rung = self.policy.file.escalation.rung(level)
        who = rung.role + (f" of {case.team}" if case.team else "")
        payload = ComplaintEscalated(complaint_id=case.complaint_id, level=level, reason=reason[:500],
                                     escalated_to=who, escalated_at=at, priority=case.priority, clock=clock,
                                     step=step, rule=rule, repeat=repeat, regulatory_risk=regulatory_risk,
                                     raise_priority_to=raise_priority_to, team=case.team)
        run.outputs.append(Output(ESCALATIONS, case.complaint_id, self._wrap(payload, material, at)))
        run.case = replace(case, level=max(case.level, level), last_escalated_at=at)

    # -- events ----------------------------------------------------------------------------------

    def _emit(self, run: _Run, t: Tracked, step: SlaStep, at: datetime, *, fraction: float | None = None,
              counted: timedelta | None = None, on_time: bool | None = None, suffix: str = "") -> None:
        case, clock, calendar = run.case, t.clock, self._calendar(t)
        elapsed = counted if counted is not None else clocks.counted(clock, max(at, clock.since), calendar)
        payload = SlaEvent(
            complaint_id=case.complaint_id, clock=t.name, step=step, run=t.run, at=at, observed_at=max(run.now, at),
            due_at=clocks.deadline(clock, calendar), target_seconds=clock.target.total_seconds(),
            elapsed_seconds=elapsed.total_seconds(), paused_seconds=clock.paused_total.total_seconds(),
            fraction=fraction, on_time=on_time, calendar="24x7" if t.calendar == "24x7" else "working",
            rule=t.rule[:64], priority=case.priority, category=case.category, channel=case.channel)
        material = f"sla:{t.name.value}:{t.run}:{step.value}{suffix}"
        run.outputs.append(Output(SLA_EVENTS, case.complaint_id, self._wrap(payload, material, at)))

    def _wrap(self, payload: Any, material: str, at: datetime) -> Envelope[Any]:
        cid = str(payload.complaint_id)
        return wrap(payload, source=self.source, subject=cid, event_id=event_id(cid, material), time=at)


#: What the SLA stage reads (the lifecycle's case events), for the worker's binding.
INPUT_TOPICS: tuple[TopicSpec, ...] = (CASES,)
