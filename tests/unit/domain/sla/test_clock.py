"""One SLA clock as a value: counting on a calendar, pauses, re-timing, reopening, and each warning and the
breach emitted once, in order — simulated weeks, no sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.sla.calendar import AroundTheClock, WorkingCalendar
from complaint_stream.domain.sla.clock import (
    counted,
    deadline,
    due_steps,
    next_due,
    pause,
    reopen,
    resume,
    retime,
    start,
    stop,
)

H = timedelta(hours=1)
ALWAYS = AroundTheClock()
OFFICE = WorkingCalendar()


def cst(m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=CHINA_TZ)


def test_a_clock_left_alone_warns_at_half_and_three_quarters_then_breaches_each_once():
    clock = start("resolution", 8 * H, cst(12, 1, 9))
    assert next_due(clock, ALWAYS) == cst(12, 1, 13)
    clock, steps = due_steps(clock, cst(12, 1, 12, 59), ALWAYS)
    assert steps == ()
    clock, steps = due_steps(clock, cst(12, 1, 15), ALWAYS)
    assert [(s.kind, s.fraction, s.due_at) for s in steps] == [("warning", 0.5, cst(12, 1, 13)),
                                                                ("warning", 0.75, cst(12, 1, 15))]
    clock, again = due_steps(clock, cst(12, 1, 16), ALWAYS)
    assert again == () and next_due(clock, ALWAYS) == cst(12, 1, 17)
    clock, (breach,) = due_steps(clock, cst(12, 2), ALWAYS)
    assert (breach.kind, breach.due_at, breach.counted) == ("breached", cst(12, 1, 17), 8 * H)
    assert clock.breached and next_due(clock, ALWAYS) is None
    assert due_steps(clock, cst(12, 9), ALWAYS) == (clock, ())


def test_a_late_look_emits_every_missed_step_in_order_with_its_own_due_time():
    clock = start("first_response", 2 * H, cst(12, 1, 9), warnings=(0.5,))
    _, steps = due_steps(clock, cst(12, 3), ALWAYS)
    assert [(s.kind, s.due_at) for s in steps] == [("warning", cst(12, 1, 10)), ("breached", cst(12, 1, 11))]


def test_working_time_clock_stops_counting_overnight_and_over_the_spring_festival():
    clock = start("resolution", 16 * H, cst(2, 13, 9))  # Friday 13 Feb 2026, 09:00-18:00 working days
    # 9 h on the 13th, 7 h on the make-up Saturday the 14th: due 14 Feb 16:00
    assert deadline(clock, OFFICE) == cst(2, 14, 16)
    assert counted(clock, cst(2, 20, 12), OFFICE) == 18 * H  # 9 h on each of the two days, nothing in the holiday
    clock = start("resolution", 19 * H, cst(2, 13, 9))  # 18 h on the two days, the 19th after the holiday
    assert deadline(clock, OFFICE) == cst(2, 24, 10)


def test_a_paused_clock_does_not_breach_and_resumes_where_it_stopped():
    clock = start("resolution", 4 * H, cst(12, 1, 9))
    clock, early = due_steps(clock, cst(12, 1, 11), ALWAYS)  # the steps due first, with their own times
    assert [(s.fraction, s.due_at) for s in early] == [(0.5, cst(12, 1, 11))]
    clock = pause(clock, cst(12, 1, 11), ALWAYS)  # pending on the customer after 2 h
    assert clock.state == "paused" and clock.counted == 2 * H and next_due(clock, ALWAYS) is None
    assert due_steps(clock, cst(12, 5), ALWAYS) == (clock, ())  # days pass: nothing
    clock = resume(clock, cst(12, 2, 9))
    assert clock.paused_total == 22 * H and deadline(clock, ALWAYS) == cst(12, 2, 11)
    clock, steps = due_steps(clock, cst(12, 2, 11), ALWAYS)
    assert [(s.kind, s.due_at) for s in steps] == [("warning", cst(12, 2, 10)), ("breached", cst(12, 2, 11))]


def test_a_priority_change_retimes_as_if_the_new_target_had_applied_from_the_start():
    clock = start("resolution", 24 * H, cst(12, 1, 0))
    clock, _ = due_steps(clock, cst(12, 1, 6), ALWAYS)
    clock = retime(clock, 8 * H, cst(12, 1, 6), ALWAYS)  # P3 -> P1 after 6 h: 75 % of 8 h already passed
    assert clock.counted == 6 * H and deadline(clock, ALWAYS) == cst(12, 1, 8)
    clock, steps = due_steps(clock, cst(12, 1, 6), ALWAYS)
    assert [(s.kind, s.fraction) for s in steps] == [("warning", 0.5), ("warning", 0.75)]
    clock = retime(clock, 48 * H, cst(12, 1, 7), ALWAYS)  # lowered again: the warnings are not repeated
    assert deadline(clock, ALWAYS) == cst(12, 3, 0) and next_due(clock, ALWAYS) == cst(12, 3, 0)


def test_stopping_fulfils_or_cancels_and_a_reopen_counts_on_or_anew():
    clock = start("resolution", 10 * H, cst(12, 1, 0))
    done = stop(clock, cst(12, 1, 4), ALWAYS, met=True)
    assert (done.state, done.counted) == ("fulfilled", 4 * H) and next_due(done, ALWAYS) is None
    again = reopen(done, cst(12, 3, 0))
    assert again.running and deadline(again, ALWAYS) == cst(12, 3, 6)  # 6 h left of 10
    fresh = reopen(done, cst(12, 3, 0), restart=True)
    assert fresh.counted == timedelta(0) and deadline(fresh, ALWAYS) == cst(12, 3, 10)
    late, _ = due_steps(clock, cst(12, 2), ALWAYS)
    assert stop(late, cst(12, 2), ALWAYS, met=True).state == "breached_fulfilled"
    assert stop(clock, cst(12, 1, 1), ALWAYS, met=False).state == "cancelled"


@given(st.lists(st.tuples(st.sampled_from(["pause", "resume", "look"]), st.integers(1, 600)), max_size=30))
def test_every_step_is_emitted_exactly_once_in_order_whatever_the_pauses_and_looks(ops):
    at = cst(12, 1, 9)
    clock = start("resolution", 10 * H, at)
    emitted = []
    for op, minutes in ops:
        at += timedelta(minutes=minutes)
        if op == "pause":
            clock = pause(clock, at, OFFICE)
        elif op == "resume":
            clock = resume(clock, at)
        clock, steps = due_steps(clock, at, OFFICE)
        assert all(s.due_at <= at for s in steps)
        emitted += [s.fraction for s in steps]
    clock = resume(clock, at)
    clock, steps = due_steps(clock, at + 400 * 24 * H, OFFICE)
    emitted += [s.fraction for s in steps]
    assert emitted == [0.5, 0.75, 1.0]
