"""Working-time arithmetic for SLA clocks: weekends, the 2026 national holidays and make-up working days
(State Council notice of 2025-11-04, through chinese-calendar), an operator's own days, around the clock."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.sla.calendar import (
    AroundTheClock,
    CalendarError,
    OutsideCalendarData,
    WorkingCalendar,
    official_workday,
)

H = timedelta(hours=1)
OFFICE = WorkingCalendar()  # 09:00-18:00 China time on official working days


def cst(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CHINA_TZ)


@pytest.mark.parametrize(("day", "working"), [
    ("2026-02-13", True),   # Friday before the Spring Festival
    ("2026-02-14", True),   # Saturday, a make-up working day (调休)
    ("2026-02-15", False), ("2026-02-17", False), ("2026-02-23", False),  # Spring Festival 15-23 Feb
    ("2026-02-24", True),
    ("2026-02-28", True),   # Saturday, a make-up working day
    ("2026-03-01", False),  # an ordinary Sunday
    ("2026-09-20", True),   # Sunday, a make-up working day
    ("2026-10-01", False), ("2026-10-07", False),  # National Day 1-7 Oct
    ("2026-10-08", True),
    ("2026-10-10", True),   # Saturday, a make-up working day
])
def test_the_2026_national_arrangement_comes_out_right(day, working):
    assert official_workday(date.fromisoformat(day)) is working
    assert OFFICE.is_working_day(date.fromisoformat(day)) is working


def test_a_deadline_runs_into_a_make_up_saturday_and_over_the_spring_festival():
    # Friday 13 Feb 17:00 + 8 working hours: 1 h that Friday, 7 h on the make-up Saturday 14 Feb
    assert OFFICE.add(cst(2026, 2, 13, 17), 8 * H) == cst(2026, 2, 14, 16)
    # Saturday 14 Feb 17:00 + 2 h: 1 h that day, then nothing until Tuesday 24 Feb 09:00
    assert OFFICE.add(cst(2026, 2, 14, 17), 2 * H) == cst(2026, 2, 24, 10)
    # a complaint in the middle of the holiday starts counting on the first working morning
    assert OFFICE.add(cst(2026, 2, 18, 11), 3 * H) == cst(2026, 2, 24, 12)


def test_national_day_and_the_make_up_days_around_it():
    # Friday 18 Sep 16:00 + 4 h: 2 h Friday, Sunday 20 Sep is a working day
    assert OFFICE.add(cst(2026, 9, 18, 16), 4 * H) == cst(2026, 9, 20, 11)
    # Wednesday 30 Sep 17:00 + 2 h: 1 h, then Thursday 8 Oct
    assert OFFICE.add(cst(2026, 9, 30, 17), 2 * H) == cst(2026, 10, 8, 10)
    # working time across the whole holiday: 30 Sep 09:00 to 8 Oct 18:00 is two working days
    assert OFFICE.elapsed(cst(2026, 9, 30, 9), cst(2026, 10, 8, 18)) == 18 * H


def test_the_end_of_the_working_day_is_a_deadline_and_a_start_after_hours_waits_for_the_morning():
    assert OFFICE.add(cst(2026, 12, 1, 9), 9 * H) == cst(2026, 12, 1, 18)  # exactly the day's hours
    assert OFFICE.add(cst(2026, 12, 1, 20), H) == cst(2026, 12, 2, 10)
    assert OFFICE.add(cst(2026, 12, 1, 7), timedelta(0)) == cst(2026, 12, 1, 7)  # nothing to count: now
    assert OFFICE.elapsed(cst(2026, 12, 1, 18, 30), cst(2026, 12, 2, 8)) == timedelta(0)


def test_times_in_any_zone_are_counted_in_china_time_and_keep_their_zone():
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 17:00 China time
    due = OFFICE.add(start, 2 * H)
    assert due.tzinfo is UTC and due == cst(2026, 12, 2, 10)
    with pytest.raises(ValueError, match="no time zone"):
        OFFICE.add(datetime(2026, 12, 1, 9), H)


def test_an_operators_calendar_file_overrides_the_official_days(tmp_path):
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"name": "gd-callcentre", "hours": {"start": "08:00", "end": "22:00"},
                                "days": {"2026-10-09": "holiday", "2026-10-03": "workday"}}), encoding="utf-8")
    cal = WorkingCalendar.load(path)
    assert (cal.name, cal.start, cal.end, cal.day_length) == ("gd-callcentre", time(8), time(22), 14 * H)
    assert cal.is_working_day(date(2026, 10, 3)) and not cal.is_working_day(date(2026, 10, 9))
    # Friday 2 Oct is a holiday, Saturday 3 Oct works here: 21:00 on 30 Sep + 3 h -> 3 Oct 10:00
    assert cal.add(cst(2026, 9, 30, 21), 3 * H) == cst(2026, 10, 3, 10)


@pytest.mark.parametrize(("data", "expected"), [
    ({"name": "x", "hours": {"start": "18:00", "end": "09:00"}}, "must be after start"),
    ({"name": "x", "hours": {"start": "9:00", "end": "18:00"}}, "pattern"),
    ({"name": "x", "hours": {"start": "09:00", "end": "18:00"}, "days": {"2026-13-01": "holiday"}}, "not dates"),
    ({"name": "x", "hours": {"start": "09:00", "end": "18:00"}, "days": {"2026-10-01": "off"}}, "workday"),
    ({"name": "x", "hours": {"start": "09:00", "end": "18:00"}, "weekends": True}, "weekends"),
])
def test_a_malformed_calendar_file_is_refused_with_the_problem_named(tmp_path, data, expected):
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CalendarError) as err:
        WorkingCalendar.load(path)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_a_year_the_package_does_not_know_counts_weekdays_as_an_estimate_or_is_refused_when_strict():
    # Friday 6 Mar 2099 17:00 + 2 h: Monday to Friday assumed, flagged as an estimate
    assert OFFICE.add(cst(2099, 3, 6, 17), 2 * H) == cst(2099, 3, 9, 10)
    assert OFFICE.estimated(date(2099, 3, 6)) and not OFFICE.estimated(date(2026, 3, 6))
    strict = WorkingCalendar(unknown_years="error")
    with pytest.raises(OutsideCalendarData, match="chinese-calendar .* has no data for 2099"):
        strict.add(cst(2099, 3, 2, 9), H)
    listed = WorkingCalendar(overrides={date(2099, 3, 2): True}, unknown_years="error")
    assert listed.add(cst(2099, 3, 2, 9), H) == cst(2099, 3, 2, 10) and not listed.estimated(date(2099, 3, 2))


def test_around_the_clock_counts_every_second():
    clock = AroundTheClock()
    assert clock.add(cst(2026, 2, 15, 23), 15 * 24 * H) == cst(2026, 3, 2, 23)  # the regulator's 15 days
    assert clock.elapsed(cst(2026, 2, 15), cst(2026, 2, 16, 6)) == 30 * H
    assert clock.elapsed(cst(2026, 2, 16), cst(2026, 2, 15)) == timedelta(0)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(CHINA_TZ))
durations = st.integers(min_value=0, max_value=200 * 60).map(lambda m: timedelta(minutes=m))


@given(instants, durations)
def test_the_time_counted_up_to_a_deadline_is_the_duration_asked(start, duration):
    due = OFFICE.add(start, duration)
    assert due >= start
    assert OFFICE.elapsed(start, due) == duration
    if duration:  # and the deadline is the first such instant: a minute earlier, less has been counted
        assert OFFICE.elapsed(start, due - timedelta(minutes=1)) < duration


@given(instants, instants, instants)
def test_counted_time_adds_up_over_consecutive_intervals(a, b, c):
    a, b, c = sorted((a, b, c))
    assert OFFICE.elapsed(a, c) == OFFICE.elapsed(a, b) + OFFICE.elapsed(b, c)
