"""Working calendars for SLA clocks (工作日历): which time a clock counts.

A clock counts either around the clock (:class:`AroundTheClock`) or in working time
(:class:`WorkingCalendar`): working days, and on each of them the working hours. Which days are working
days comes from ``chinese-calendar`` (the State Council's yearly arrangement of public holidays and
make-up working days, 调休: in 2026 e.g. Spring Festival 15–23 February off with Saturday 14 and
Saturday 28 February working), never from a hand-typed list; an operator's calendar file
(:class:`CalendarFile`) may add or override days (a provincial holiday, a day the call centre works).

A year the package does not know yet (the arrangement is published each November; a deadline in
January may need the next year's) counts Monday to Friday as working days by default
(``unknown_years: "weekdays"``, and :meth:`WorkingCalendar.estimated` says so for a day), or is refused
(``"error"``): upgrade ``chinese-calendar`` or list that year's days in the calendar file.

Every function takes the time as an argument: nothing here reads a clock. Times are timezone-aware;
working hours are in China time (UTC+8), as the schemas read a naive time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol

import chinese_calendar
from pydantic import Field, model_validator

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.policy_files import PolicyFileError, PolicyModel, Readable, load_policy_file

__all__ = ["AroundTheClock", "Calendar", "CalendarError", "CalendarFile", "OutsideCalendarData", "WorkingCalendar",
           "WorkingHoursSpec", "official_workday", "official_year"]

Clock = str  # "HH:MM", checked by the pattern below
_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
DayKind = Literal["workday", "holiday"]
UnknownYears = Literal["weekdays", "error"]


class CalendarError(PolicyFileError):
    """A calendar file that cannot be used; one line per problem."""


class OutsideCalendarData(LookupError):
    """A day outside the years ``chinese-calendar`` knows (the State Council publishes each year's
    arrangement in the November before): update the package, or list the days in the calendar file."""


class Calendar(Protocol):
    """What a clock needs of a calendar: the deadline ``duration`` of counted time after ``start``, and the
    counted time between two instants."""

    @property
    def name(self) -> str: ...

    def add(self, start: datetime, duration: timedelta) -> datetime: ...

    def elapsed(self, start: datetime, end: datetime) -> timedelta: ...


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone (a clock counts instants)")
    return at


@dataclass(frozen=True)
class AroundTheClock:
    """Every second counts (24×7): the regulator's calendar days, a P1 network outage."""

    name: str = "24x7"

    def add(self, start: datetime, duration: timedelta) -> datetime:
        if duration < timedelta(0):
            raise ValueError(f"a negative duration ({duration}) has no deadline")
        return _aware(start) + duration

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        return max(timedelta(0), _aware(end) - _aware(start))


@functools.lru_cache(maxsize=64)
def official_year(year: int) -> bool:
    """Whether ``chinese-calendar`` has the State Council's arrangement for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@functools.lru_cache(maxsize=4096)
def official_workday(day: date) -> bool:
    """Whether ``day`` is a working day by the State Council's arrangement (weekends, public holidays and
    make-up working days), from ``chinese-calendar``; :class:`OutsideCalendarData` beyond its years."""
    if not official_year(day.year):
        raise OutsideCalendarData(f"{day.isoformat()}: chinese-calendar {_package_version()} has no data for"
                                  f" {day.year}; update it or list the days in the calendar file")
    return bool(chinese_calendar.is_workday(day))


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chinese-calendar")
    except PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "?"


class WorkingHoursSpec(PolicyModel):
    start: Clock = Field(pattern=_CLOCK)
    end: Clock = Field(pattern=_CLOCK)

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHoursSpec:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start} (working hours within one day)")
        return self


class CalendarFile(PolicyModel):
    """An operator's working calendar (JSON or TOML). ``days`` overrides the official arrangement for the
    dates it lists (``"2026-10-09": "holiday"``, ``"2026-02-15": "workday"``)."""

    comment: str = Field(default="", alias="_comment")
    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    hours: WorkingHoursSpec
    days: dict[str, DayKind] = Field(default_factory=dict)
    unknown_years: UnknownYears = "weekdays"

    @model_validator(mode="after")
    def _dates(self) -> CalendarFile:
        bad = []
        for text in self.days:
            try:
                date.fromisoformat(text)
            except ValueError:
                bad.append(text)
        if bad:
            raise ValueError(f"days: not dates (YYYY-MM-DD): {', '.join(sorted(bad))}")
        return self


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working time: on working days, from ``start`` to ``end`` China time. ``overrides`` maps a date to
    whether it is a working day, before the official arrangement (``workday``) is asked."""

    name: str = "working-hours"
    start: time = time(9, 0)
    end: time = time(18, 0)
    overrides: Mapping[date, bool] = field(default_factory=dict)
    workday: Callable[[date], bool] = official_workday
    unknown_years: UnknownYears = "weekdays"

    def __post_init__(self) -> None:
        if self.day_length <= timedelta(0):
            raise ValueError(f"working hours {self.start}-{self.end} are empty")

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Readable) -> WorkingCalendar:
        """A calendar file (:class:`CalendarFile`); :class:`CalendarError` when it is malformed."""
        file = load_policy_file(source, CalendarFile, error=CalendarError)
        return cls.from_file(file)

    @classmethod
    def from_file(cls, file: CalendarFile) -> WorkingCalendar:
        return replace(cls.from_file_hours(file.hours, file.name),
                       overrides={date.fromisoformat(d): kind == "workday" for d, kind in file.days.items()},
                       unknown_years=file.unknown_years)

    @classmethod
    def from_file_hours(cls, hours: WorkingHoursSpec, name: str = "working-hours") -> WorkingCalendar:
        """The official working days with these working hours."""
        end = hours.end
        return cls(name=name, start=time.fromisoformat(hours.start),
                   end=time.max if end == "24:00" else time.fromisoformat(end))

    @property
    def day_length(self) -> timedelta:
        return _on(date(2000, 1, 1), self.end) - _on(date(2000, 1, 1), self.start)

    def is_working_day(self, day: date) -> bool:
        found = self.overrides.get(day)
        if found is not None:
            return found
        if self.unknown_years == "weekdays" and self.workday is official_workday and not official_year(day.year):
            return day.weekday() < 5  # (the common case of the fallback, without an exception per day)
        try:
            return self.workday(day)
        except OutsideCalendarData:
            if self.unknown_years == "error":
                raise
            return day.weekday() < 5

    def estimated(self, day: date) -> bool:
        """Whether ``day``'s kind is a guess (Monday to Friday): neither listed nor known officially."""
        if day in self.overrides:
            return False
        if self.workday is official_workday:
            return not official_year(day.year)
        try:
            self.workday(day)
        except OutsideCalendarData:
            return True
        return False

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if not self.is_working_day(day):
            return None
        return _on(day, self.start), _on(day, self.end)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant by which ``duration`` of working time has passed since ``start``. Zero: ``start``
        itself (a clock started outside working hours is due at once only when its target is zero)."""
        if duration < timedelta(0):
            raise ValueError(f"a negative duration ({duration}) has no deadline")
        if not duration:
            return _aware(start)
        at = _aware(start).astimezone(CHINA_TZ)
        left = duration
        day = at.date()
        for _ in range(_MAX_DAYS):
            window = self._window(day)
            if window is not None:
                begin, finish = max(window[0], at), window[1]
                if begin < finish:
                    if left <= finish - begin:
                        return (begin + left).astimezone(start.tzinfo)
                    left -= finish - begin
            day += timedelta(days=1)
        raise OutsideCalendarData(f"no {duration} of working time within {_MAX_DAYS} days after {start.isoformat()}")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """The working time between ``start`` and ``end`` (zero when ``end`` is not after ``start``)."""
        a, b = _aware(start).astimezone(CHINA_TZ), _aware(end).astimezone(CHINA_TZ)
        total = timedelta(0)
        day = a.date()
        while a < b and day <= b.date():
            window = self._window(day)
            if window is not None:
                begin, finish = max(window[0], a), min(window[1], b)
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total


#: How far a deadline is looked for: a year of days (a target longer than that is a policy mistake).
_MAX_DAYS = 400


def _on(day: date, clock: time) -> datetime:
    if clock == time.max:  # "24:00": the end of the day
        return datetime.combine(day + timedelta(days=1), time(0), CHINA_TZ)
    return datetime.combine(day, clock, CHINA_TZ)
