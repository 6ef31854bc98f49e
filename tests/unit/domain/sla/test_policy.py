"""The SLA policy file: the packaged one loads and says what an operator expects, every clock has a target
for every priority, the fault-repair rule of the Telecommunications Regulations applies to network faults,
and a malformed file is refused with the problem named."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from complaint_stream.domain.sla.calendar import AroundTheClock, WorkingCalendar
from complaint_stream.domain.sla.policy import CLOCKS, SlaPolicy, SlaPolicyError
from complaint_stream.schemas import Category, Channel, Priority

POLICY = SlaPolicy.load()
H = timedelta(hours=1)


def test_the_packaged_policy_has_every_clock_for_every_priority_on_a_calendar():
    for clock in CLOCKS:
        for p in Priority:
            target, calendar, rule = POLICY.target(clock, category=Category.BILLING, channel=Channel.APP, priority=p)
            assert target > timedelta(0) and rule == "default"
            assert isinstance(calendar, (AroundTheClock, WorkingCalendar))
    # more urgent, never longer
    for clock in CLOCKS:
        targets = [POLICY.target(clock, category=Category.BILLING, channel=Channel.APP, priority=p)[0]
                   for p in Priority]
        assert targets == sorted(targets), clock


def test_network_faults_are_repaired_within_48_hours_around_the_clock():
    target, calendar, rule = POLICY.target("resolution", category=Category.NETWORK, channel=Channel.HOTLINE,
                                           priority=Priority.P3)
    assert (target, rule) == (48 * H, "fault-repair") and isinstance(calendar, AroundTheClock)
    billing, working, _ = POLICY.target("resolution", category=Category.BILLING, channel=Channel.HOTLINE,
                                        priority=Priority.P3)
    assert isinstance(working, WorkingCalendar) and billing == 27 * H  # three working days of 9 h


def test_the_regulatory_clock_is_fifteen_calendar_days_with_two_warnings():
    reg = POLICY.file.regulatory
    assert reg.limit == timedelta(days=15)
    assert reg.warn_at == (timedelta(days=10), timedelta(days=13))
    assert reg.warnings == pytest.approx((10 / 15, 13 / 15))
    assert POLICY.warnings("resolution") == (0.5, 0.75)


def _packaged() -> dict:
    return json.loads((POLICY.source and open(POLICY.source, encoding="utf-8").read()) or "{}")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["clocks"]["resolution"]["targets"].pop("P4"), "no target for P4"),
    (lambda d: d["clocks"].pop("callback"), "missing callback"),
    (lambda d: d["clocks"]["update"]["targets"].update(P1="4 hours"), "duration"),
    (lambda d: d["clocks"]["update"].update(calendar="weekdays"), "24x7"),
    (lambda d: d.update(warnings=[0.75, 0.5]), "increasing fractions"),
    (lambda d: d["regulatory"].update(warn_at=["P16D"]), "between the start and the limit"),
    (lambda d: d["clocks"]["first_response"]["targets"].update(P1="PT0S"), "positive"),
    (lambda d: d["clocks"]["resolution"]["rules"][0]["match"].update(categories=["wifi"]), "categories"),
])
def test_a_malformed_policy_is_refused_with_the_problem_named(tmp_path, change, expected):
    data = _packaged()
    change(data)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SlaPolicyError) as err:
        SlaPolicy.load(path)
    assert expected in str(err.value) and str(path) in str(err.value)
