"""The SLA stage as a state machine: a complaint's clocks from its case events, warnings, breaches, the
escalation ladder and re-escalation — simulated days in milliseconds, time always an argument."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.sla.policy import SlaPolicy
from complaint_stream.domain.sla.stage import SlaCase, SlaStage
from complaint_stream.domain.stage import Output, run_in_event_time
from complaint_stream.schemas import (
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    ComplaintEscalated,
    Envelope,
    Priority,
    SlaEvent,
    TicketStatus,
    wrap,
)

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
POLICY = SlaPolicy.load()


def cst(m: int, d: int, hh: int = 0, mm: int = 0, year: int = 2026) -> datetime:
    return datetime(year, m, d, hh, mm, tzinfo=CHINA_TZ)


T0 = cst(12, 1, 10)  # a Tuesday, 10:00 China time


@dataclass
class Case:
    """A case's events as the lifecycle publishes them: each with the next sequence number."""

    cid: str = "CMP-SLA-1"
    category: Category = Category.BILLING
    channel: Channel = Channel.HOTLINE
    priority: Priority = Priority.P3
    received_at: datetime = T0
    first_contact_at: datetime | None = None
    regulator_reply_by: datetime | None = None
    sequence: int = 0
    first_response_at: datetime | None = None
    status: TicketStatus = TicketStatus.ACKNOWLEDGED
    team: str | None = "billing-back-office"
    sent: list[Envelope[Any]] = field(default_factory=list)

    def event(self, change: str, at: datetime, status: TicketStatus | None = None, **changes: Any) -> Envelope[Any]:
        self.sequence += 1
        if status is not None:
            self.status = status
        for name, value in changes.items():
            setattr(self, name, value)
        data = CaseUpdated(complaint_id=self.cid, change=CaseChange(change), sequence=self.sequence, at=at,
                           status=self.status, category=self.category, priority=self.priority, channel=self.channel,
                           team=self.team, received_at=self.received_at,
                           first_contact_at=self.first_contact_at or self.received_at,
                           first_response_at=self.first_response_at, regulator_reply_by=self.regulator_reply_by)
        env = wrap(data, source="/workers/lifecycle", subject=self.cid, event_id=str(uuid.uuid4()), time=at)
        self.sent.append(env)
        return env


class Driver:
    """Applies events and fires timers as the runtime would, keeping every output."""

    def __init__(self, stage: SlaStage | None = None):
        self.stage = stage or SlaStage(POLICY)
        self.state: SlaCase | None = None
        self.outputs: list[Output] = []

    def apply(self, env: Envelope[Any], now: datetime | None = None) -> list[Output]:
        self.state, out = self.stage.apply(self.state, env, now or env.time)
        self.outputs += out
        return list(out)

    def until(self, end: datetime, step: timedelta = MIN) -> list[Output]:
        """Timers every ``step`` up to ``end``, only when ``next_due`` says so (as the runtime's index)."""
        got: list[Output] = []
        while self.state is not None:
            due = self.stage.next_due(self.state)
            if due is None or due > end:
                break
            self.state, out = self.stage.due(self.state, due)
            got += out
        self.outputs += got
        return got

    def sla(self, outputs: list[Output] | None = None) -> list[SlaEvent]:
        return [o.event.data for o in (self.outputs if outputs is None else outputs) if isinstance(o.event.data, SlaEvent)]

    def escalations(self, outputs: list[Output] | None = None) -> list[ComplaintEscalated]:
        return [o.event.data for o in (self.outputs if outputs is None else outputs)
                if isinstance(o.event.data, ComplaintEscalated)]

    def steps(self, clock: str) -> list[str]:
        return [f"{e.step.value}" + (f"@{e.fraction:g}" if e.step.value == "warning" else "")
                for e in self.sla() if e.clock.value == clock]


def test_a_new_case_starts_first_response_resolution_and_the_regulatory_clock_from_receipt():
    case, d = Case(), Driver()
    out = d.apply(case.event("opened", T0))
    started = {e.clock.value: e for e in d.sla(out)}
    assert set(started) == {"first_response", "resolution", "regulatory"}
    assert started["first_response"].due_at == T0 + 4 * H  # P3: PT4H around the clock
    assert started["regulatory"].due_at == T0 + timedelta(days=15)
    # resolution, P3 billing: 27 working hours (9:00-18:00): Tue 8 h, Wed 9, Thu 9, Fri 1 h -> Fri 10:00
    assert started["resolution"].due_at == cst(12, 4, 10)
    assert all(e.step.value == "started" and e.at == T0 for e in started.values())


def test_a_case_left_alone_warns_breaches_and_escalates_up_the_ladder_in_order():
    case, d = Case(), Driver()
    d.apply(case.event("opened", T0))
    d.until(T0 + timedelta(days=6))
    assert d.steps("first_response") == ["started", "warning@0.5", "warning@0.75", "breached"]
    assert d.steps("resolution") == ["started", "warning@0.5", "warning@0.75", "breached"]
    escalations = d.escalations()
    # the first response stays breached: one rung up every 8 hours (P3) to the top, then no more reminders;
    # the resolution's own rules still escalate when they fall due
    assert [(e.rule, e.level, e.escalated_at) for e in escalations] == [
        ("first-response-breached", 1, T0 + 4 * H), ("re-escalation", 2, T0 + 12 * H),
        ("re-escalation", 3, T0 + 20 * H), ("resolution-at-risk", 2, cst(12, 3, 12, 15)),
        ("resolution-breached", 2, cst(12, 4, 10))]
    assert escalations[0].escalated_to == "team_lead of billing-back-office"
    assert escalations[2].escalated_to == "regional_director of billing-back-office" and escalations[2].repeat == 2
    assert escalations[0].escalated_at == T0 + 4 * H  # the breach's own instant
    ids = [o.event.id for o in d.outputs]
    assert len(ids) == len(set(ids))


def test_a_case_answered_and_resolved_in_time_fulfils_its_clocks_with_no_warning():
    case, d = Case(), Driver()
    d.apply(case.event("opened", T0))
    d.apply(case.event("status", T0 + 20 * MIN, TicketStatus.IN_PROGRESS, first_response_at=T0 + 20 * MIN))
    d.until(T0 + 90 * MIN)
    d.apply(case.event("resolved", T0 + 90 * MIN, TicketStatus.RESOLVED))
    d.until(T0 + 3 * H)
    d.apply(case.event("callback", T0 + 3 * H))
    d.apply(case.event("closed", T0 + 4 * H, TicketStatus.CLOSED))
    d.until(T0 + timedelta(days=20))
    steps = Counter(e.step.value for e in d.sla())
    assert steps["warning"] == 0 and steps["breached"] == 0 and steps["cancelled"] == 0
    fulfilled = {e.clock.value: e for e in d.sla() if e.step.value == "fulfilled"}
    assert set(fulfilled) == {"first_response", "update", "resolution", "regulatory", "callback"}
    assert all(e.on_time for e in fulfilled.values())
    assert fulfilled["first_response"].elapsed_seconds == 20 * 60
    assert d.escalations() == []


def test_a_case_pending_on_the_customer_does_not_breach_while_paused_and_its_deadline_moves():
    case, d = Case(category=Category.NETWORK), Driver()  # fault repair: 48 h around the clock
    d.apply(case.event("opened", T0))
    d.apply(case.event("status", T0 + 1 * H, TicketStatus.IN_PROGRESS, first_response_at=T0 + H))
    d.apply(case.event("status", T0 + 2 * H, TicketStatus.PENDING))
    d.until(T0 + timedelta(days=5))
    resolution = [e for e in d.sla() if e.clock.value == "resolution"]
    assert [e.step.value for e in resolution] == ["started", "paused"]
    out = d.apply(case.event("status", T0 + timedelta(days=5), TicketStatus.IN_PROGRESS))
    resumed = [e for e in d.sla(out) if e.clock.value == "resolution"][-1]
    assert resumed.step.value == "resumed"
    assert resumed.due_at == T0 + timedelta(days=5) + 46 * H  # 2 h counted before the pause
    assert resumed.paused_seconds == (timedelta(days=5) - 2 * H).total_seconds()
    regulatory = [e.step.value for e in d.sla() if e.clock.value == "regulatory"]
    assert "paused" not in regulatory  # the regulator's days do not wait for the customer


def test_a_priority_change_retimes_running_clocks_as_if_it_had_applied_from_the_start():
    case, d = Case(priority=Priority.P4), Driver()
    d.apply(case.event("opened", T0))
    out = d.apply(case.event("priority", T0 + 40 * MIN, priority=Priority.P1))
    retimed = {e.clock.value: e for e in d.sla(out) if e.step.value == "retimed"}
    # P1: PT30M from receipt, already counted: the breach is due now, stamped with the instant it is found
    assert retimed["first_response"].due_at == T0 + 40 * MIN
    assert retimed["resolution"].due_at == T0 + 8 * H - 40 * MIN + 40 * MIN  # P1: 8 working hours from 10:00
    breach = [e for e in d.sla(out) if e.clock.value == "first_response" and e.step.value == "breached"]
    assert breach and breach[0].at == T0 + 40 * MIN and breach[0].elapsed_seconds == 30 * 60
    assert max(e.level for e in d.escalations(out)) == 3
    assert "regulatory" not in retimed


def test_a_reopened_case_counts_its_resolution_on_from_where_it_stopped():
    case, d = Case(category=Category.NETWORK), Driver()
    d.apply(case.event("opened", T0))
    d.apply(case.event("status", T0 + H, TicketStatus.IN_PROGRESS, first_response_at=T0 + H))
    d.apply(case.event("resolved", T0 + 10 * H, TicketStatus.RESOLVED))
    out = d.apply(case.event("reopened", T0 + 30 * H, TicketStatus.IN_PROGRESS))
    steps = {(e.clock.value, e.step.value): e for e in d.sla(out)}
    assert steps[("callback", "cancelled")]
    again = steps[("resolution", "started")]
    assert again.run == 2 and again.due_at == T0 + 30 * H + 38 * H  # 10 of 48 hours counted before
    regulatory = steps[("regulatory", "started")]
    assert regulatory.due_at == T0 + timedelta(days=15)  # calendar days from the first complaint: unmoved
    assert steps[("update", "started")].run == 2


def test_the_regulatory_clock_runs_from_the_first_complaint_about_the_issue_across_a_repeat():
    first = T0 - timedelta(days=11)  # the customer's first complaint (the record carries it across repeats)
    case, d = Case(first_contact_at=first), Driver()
    out = d.apply(case.event("opened", T0))
    reg = [e for e in d.sla(out) if e.clock.value == "regulatory"]
    assert [e.step.value for e in reg] == ["started", "warning"]
    assert reg[0].at == first and reg[1].at == first + timedelta(days=10)
    esc = [e for e in d.escalations(out) if e.clock is not None and e.clock.value == "regulatory"]
    assert esc and esc[0].level == 3 and esc[0].regulatory_risk and esc[0].raise_priority_to is Priority.P1
    d.until(first + timedelta(days=16))
    assert [e.step.value for e in d.sla() if e.clock.value == "regulatory"] == ["started", "warning", "warning",
                                                                                "breached"]
    assert [e.at for e in d.sla() if e.clock.value == "regulatory"][-1] == first + timedelta(days=15)


def test_a_regulator_forwarded_appeal_gets_the_regulators_own_reply_deadline():
    reply_by = T0 + timedelta(days=3)
    case, d = Case(channel=Channel.REGULATOR, regulator_reply_by=reply_by), Driver()
    out = d.apply(case.event("opened", T0))
    reply = [e for e in d.sla(out) if e.clock.value == "regulator_reply"]
    assert reply and reply[0].due_at == reply_by
    d.until(reply_by + H)
    breach = [e for e in d.escalations() if e.clock is not None and e.clock.value == "regulator_reply"
              and e.step is not None and e.step.value == "breached"]
    assert breach and breach[0].escalated_at == reply_by and breach[0].regulatory_risk and breach[0].level == 3


def test_working_time_skips_the_2026_spring_festival_and_counts_its_make_up_days():
    start = cst(2, 13, 10)  # Friday before the Spring Festival (15-23 Feb off; Sat 14 and Sat 28 working)
    case, d = Case(received_at=start), Driver()
    out = d.apply(case.event("opened", start))
    resolution = next(e for e in d.sla(out) if e.clock.value == "resolution")
    # 27 working hours: Fri 13th 8 h, Sat 14th 9 h (make-up day), Tue 24th 9 h, Wed 25th 1 h
    assert resolution.due_at == cst(2, 25, 10)


def test_a_replayed_or_older_case_event_is_a_no_op_and_timers_never_repeat_a_step():
    case, d = Case(), Driver()
    opened = case.event("opened", T0)
    d.apply(opened)
    d.until(T0 + 5 * H)
    before = len(d.outputs)
    assert d.apply(opened) == []
    assert d.until(T0 + 5 * H) == []
    assert not d.stage.due(d.state, T0 + 5 * H)[1]  # type: ignore[arg-type]
    assert len(d.outputs) == before


def test_an_ended_case_cancels_what_runs_and_is_forgotten_after_the_retention():
    case, d = Case(), Driver()
    d.apply(case.event("opened", T0))
    out = d.apply(case.event("cancelled", T0 + H, TicketStatus.CANCELLED))
    assert {e.clock.value for e in d.sla(out) if e.step.value == "cancelled"} == {
        "first_response", "resolution", "regulatory"}
    assert d.stage.next_due(d.state) == T0 + H + timedelta(days=30)  # type: ignore[arg-type]
    state, _ = d.stage.due(d.state, T0 + H + timedelta(days=30))  # type: ignore[arg-type]
    assert state is None


def test_an_escalation_that_raises_the_priority_comes_back_as_a_retime():
    case, d = Case(first_contact_at=T0 - timedelta(days=11), priority=Priority.P4), Driver()
    d.apply(case.event("opened", T0))
    out = d.apply(case.event("escalated", T0 + MIN, priority=Priority.P1))  # the lifecycle applied it
    assert {e.clock.value for e in d.sla(out) if e.step.value == "retimed"} == {"first_response", "resolution"}


def test_the_update_clock_restarts_on_each_contact_and_breaches_when_the_customer_hears_nothing():
    case, d = Case(priority=Priority.P1, category=Category.NETWORK), Driver()
    d.apply(case.event("opened", T0))
    d.apply(case.event("status", T0 + 10 * MIN, TicketStatus.IN_PROGRESS, first_response_at=T0 + 10 * MIN))
    d.apply(case.event("status", T0 + 3 * H, TicketStatus.HELD))  # a contact: the next period starts
    d.until(T0 + 8 * H)
    update = [(e.run, e.step.value) for e in d.sla() if e.clock.value == "update"]
    assert [u for u in update if u[1] in ("started", "fulfilled")][:3] == [(1, "started"), (1, "fulfilled"),
                                                                          (2, "started")]
    assert (2, "breached") in update  # P1: PT4H after 3 h -> 7 h


def test_a_replay_in_event_time_fires_each_step_once_at_the_first_sweep_after_it_falls_due():
    case = Case()
    case.event("opened", T0)
    stage = SlaStage(POLICY)
    outputs = list(run_in_event_time(stage, case.sent, until=T0 + 5 * H))
    breach = [o.event.data for o in outputs if isinstance(o.event.data, SlaEvent)
              and o.event.data.clock.value == "first_response" and o.event.data.step.value == "breached"]
    assert len(breach) == 1 and breach[0].at == T0 + 4 * H
    assert timedelta(0) <= breach[0].observed_at - breach[0].at <= timedelta(seconds=stage.timer_interval or 0)


@pytest.mark.parametrize("status", [TicketStatus.CLOSED, TicketStatus.CANCELLED])
def test_a_case_first_seen_ended_starts_no_clock(status):
    case, d = Case(), Driver()
    assert d.apply(case.event("closed", T0, status)) == []
    assert d.state is not None and d.state.clocks == () and d.stage.next_due(d.state) is not None


def test_a_follow_up_on_the_open_case_leaves_the_regulatory_clock_where_it_started():
    case, d = Case(), Driver()
    d.apply(case.event("opened", T0))
    out = d.apply(case.event("follow_up", T0 + timedelta(days=2)))  # 催单: the same case, the same first contact
    assert not [e for e in d.sla(out) if e.clock.value == "regulatory"]
    d.until(T0 + timedelta(days=10, minutes=1))
    warning = [e for e in d.sla() if e.clock.value == "regulatory" and e.step.value == "warning"]
    assert warning and warning[0].at == T0 + timedelta(days=10)


CHANGES = ["status", "status", "resolved", "reopened", "callback", "priority", "follow_up", "escalated", "closed",
           "cancelled", "note"]
STATUS_OF = {"resolved": TicketStatus.RESOLVED, "reopened": TicketStatus.IN_PROGRESS, "closed": TicketStatus.CLOSED,
             "cancelled": TicketStatus.CANCELLED}


@given(st.lists(st.tuples(st.sampled_from(CHANGES), st.sampled_from(list(TicketStatus)),
                          st.sampled_from(list(Priority)), st.integers(-600, 3000), st.booleans(),
                          st.integers(0, 4000)), max_size=14),
       st.sampled_from(list(Category)), st.sampled_from([Channel.APP, Channel.REGULATOR]))
@settings(max_examples=150, deadline=None)
def test_any_sequence_of_case_events_at_any_times_gives_valid_steps_each_once(events, category, channel):
    """Late and out-of-order times (an update claiming a time before the last one), any status order: the
    stage never raises, every step it emits is a valid event (no negative duration), and no event id or
    step repeats."""
    reply_by = T0 + 3 * H if channel is Channel.REGULATOR else None
    case, d = Case(category=category, channel=channel, regulator_reply_by=reply_by), Driver()
    d.apply(case.event("opened", T0))
    clock_at = T0
    for change, status, priority, minutes, answered, sweep in events:
        at = T0 + minutes * MIN
        d.apply(case.event(change, at, STATUS_OF.get(change, status), priority=priority,
                           first_response_at=case.first_response_at or (at if answered else None)),
                now=max(at, clock_at))
        clock_at = max(clock_at, at) + sweep * MIN
        if d.state is not None:
            d.state, out = d.stage.due(d.state, clock_at)
            d.outputs += out
    ids = [o.event.id for o in d.outputs]
    assert len(ids) == len(set(ids))
    assert all(e.elapsed_seconds >= 0 and e.paused_seconds >= 0 for e in d.sla())
