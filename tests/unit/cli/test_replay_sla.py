"""`complaints replay sla EVENTS --policy FILE --calendar FILE`: the what-if of a policy change — the same case
events under two policies or calendars give the clock steps and escalations each would have produced."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from importlib import resources

import pytest

from complaint_stream.cli.replay_cmd import ReplayError, run_replay
from complaint_stream.domain import sla
from complaint_stream.schemas import ComplaintEscalated, SlaEvent, TicketStatus, decode
from tests.unit.domain.sla.test_stage import Case, cst

START = cst(9, 30, 10)  # Wednesday 30 September 2026, before the National Day holiday (1-7 Oct; 10 Oct works)


def _lines() -> list[bytes]:
    case = Case(received_at=START)
    case.event("opened", START)
    case.event("status", START + timedelta(minutes=30), TicketStatus.IN_PROGRESS,
               first_response_at=START + timedelta(minutes=30))
    return [e.model_dump_json().encode() + b"\n" for e in case.sent]


def replay(settings, *, policy: list[str] | None = None, calendar: str | None = None,
           until: str = "2026-10-20T00:00:00+08:00") -> tuple[int, list, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_replay("sla", _lines(), settings, until=until, policy_files=policy or [], calendar=calendar)
    return code, [decode(line.encode(), [SlaEvent, ComplaintEscalated]).data for line in out.getvalue().splitlines()], \
        err.getvalue()


def breach(events, clock: str):
    return next(e for e in events if isinstance(e, SlaEvent) and e.clock.value == clock and e.step.value == "breached")


def test_the_packaged_policy_counts_working_time_across_the_national_day_holiday(base_settings):
    code, events, err = replay(base_settings)
    assert code == 0, err
    # 27 working hours: Wed 30 Sep 8 h, then 1-7 Oct off, Thu 8 Oct 9 h, Fri 9 Oct 9 h, Sat 10 Oct (make-up) 1 h
    assert breach(events, "resolution").at == cst(10, 10, 10)
    assert "replay sla:" in err


def test_a_stricter_policy_file_shows_what_would_have_breached_and_escalated(base_settings, tmp_path):
    raw = json.loads((resources.files(sla) / "policy.json").read_text(encoding="utf-8"))
    raw["clocks"]["resolution"]["targets"]["P3"] = "PT9H"
    path = tmp_path / "stricter.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    _code, before, _err = replay(base_settings)
    code, after, err = replay(base_settings, policy=[str(path)])
    assert code == 0, err
    assert breach(after, "resolution").at == cst(10, 8, 10) < breach(before, "resolution").at
    assert [e.rule for e in after if isinstance(e, ComplaintEscalated)][:1] == ["resolution-at-risk"]


def test_an_operators_calendar_file_adds_a_day_off(base_settings, tmp_path):
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"name": "guangdong", "hours": {"start": "09:00", "end": "18:00"},
                                "days": {"2026-10-08": "holiday"}}), encoding="utf-8")
    code, events, err = replay(base_settings, calendar=str(path))
    assert code == 0, err
    assert breach(events, "resolution").at == cst(10, 12, 10)  # a day later; Sun 11 Oct is off


@pytest.mark.parametrize(("stage", "policy", "calendar", "message"), [
    ("lifecycle", ["x.json"], None, "the sla stage's"),
    ("sla", ["a.json", "b.json"], None, "one SLA policy file"),
])
def test_policy_and_calendar_options_are_checked(base_settings, stage, policy, calendar, message):
    with pytest.raises(ReplayError, match=message):
        run_replay(stage, [], base_settings, until=None, policy_files=policy, calendar=calendar)


def test_a_malformed_policy_file_is_one_clear_error(base_settings, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"clocks": {}}), encoding="utf-8")
    with pytest.raises(ReplayError, match="--policy/--calendar"):
        replay(base_settings, policy=[str(path)])
