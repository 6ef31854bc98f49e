"""The recorded assignment scenario (``tests/data/assign_scenario.jsonl``): how it was made.

``python -m tests.support.assign_scenario > tests/data/assign_scenario.jsonl`` writes it again; the
expected assignments (``tests/data/assign_scenario.expected.json``) were written by hand from the story
below and the packaged roster (``complaint_stream/domain/assignment/roster.json``), not from the
workers' output. ``complaints replay assign`` replays it through the router and the teams' dispatcher.

The events are what the assign and dispatch workers read: ``ComplaintClassified`` (classified topic),
``CaseUpdated`` (the lifecycle's topic), supervisors' ``ReturnComplaint`` / ``ReassignComplaint``
(commands topic) and ``AgentPresenceChanged`` (``complaints.agents.v1``, keyed by team).

Story (Tuesday 1 December 2026, China time; every complaint in Chinese):

* 07:50 and 07:51: at 深圳西部网络运维中心 (net-sz-west: the network team of 南山, 宝安 and 光明) only
  net-szw-03 (capacity 8) is on; net-szw-01 and net-szw-02 are offline until the day shift.
* 08:00-08:28: eight network complaints in 深圳南山 (C1, C2, C4-C6, C8-C10) go to net-sz-west and all to
  net-szw-03, which is then full.
* 08:10: C3, the classifier not sure of it (needs review), goes to the manual triage desk: triage-01
  (triage-01 and -02 equally free, 15 each: the first in turn).
* 08:20: C7, a billing complaint (roaming charges) from a customer travelling in 湖南长沙 whose number is
  from 广东 (home province 440000): billing goes by the number's home province, to the billing back office,
  which opens at 09:00: it waits, first in the queue.
* 08:30: C11, a regulator-channel complaint (工信部 转办, network, P2): the appeals desk, appeals-01.
* 08:40: C12 (P3, 南山 network) waits at net-sz-west, first; 08:45: C13 (P2) waits too, first in the
  queue, ahead of C12 (most urgent first).
* 08:50: the lifecycle reports C1 resolved: net-szw-03 has room, and takes the first waiting, C13.
* 09:00: the billing back office opens: C7 goes to billing-01. net-szw-01 comes on and takes C12;
  09:05 net-szw-02 comes on (nothing waits).
* 09:10: C14, network in 深圳福田, goes to the city's team net-sz (net-sz-01). 09:25: net-sz returns it
  (退单: the site is in 东莞); routed again without net-sz, to the provincial team net-gd, net-gd-01.
* 09:15: C15 repeats a complaint resolved last week (repeat_of): the senior desk, senior-01.
* 09:30: a supervisor moves C2 from net-szw-03 to net-szw-02 (VIP customer); 09:40 the triage desk's
  supervisor moves C3 to the device desk, to device-02 (a handset fault).
* 10:00: net-szw-01, the team's only English speaker, goes away; 10:10: C16, in English (南山 network),
  waits although net-szw-02 and -03 have room; 10:30: net-szw-01 is back and takes it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from complaint_stream.domain.intake import event_id
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    AgentPresenceChanged,
    CaseChange,
    CaseUpdated,
    Category,
    Channel,
    ComplaintClassified,
    Envelope,
    Priority,
    ReassignComplaint,
    Region,
    ReturnComplaint,
    TicketStatus,
    wrap,
)

CST = timedelta(hours=8)
#: The complaint this scenario's repeat (C15) repeats: resolved on 24 November, not in the scenario.
REPEATED = "CMP20261124-000000000042"

NANSHAN = Region(province="广东", city="深圳", district="南山")
FUTIAN = Region(province="广东", city="深圳", district="福田")
CHANGSHA = Region(province="湖南", city="长沙", district="岳麓")


def at(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 12, 1, h, m, tzinfo=UTC) - CST


def cid(n: int) -> str:
    return f"CMP20261201-{n:012d}"


def _wrap(payload: Any, when: datetime, source: str, subject: str, material: str) -> Envelope[Any]:
    return wrap(payload, source=source, subject=subject, event_id=event_id(subject, material), time=when)


def classified(n: int, hhmm: str, *, category: str = "network", channel: str = "app", priority: str = "P3",
               where: Region = NANSHAN, language: str = "zh", needs_review: bool = False,
               repeat_of: str | None = None, home_province_code: str | None = None) -> Envelope[Any]:
    p = Priority(priority)
    when = at(hhmm)
    data = ComplaintClassified(
        complaint_id=cid(n), customer_key=f"{n:02x}" * 16, channel=Channel(channel), region=where,
        customer_tier="standard", language=language, home_province_code=home_province_code, received_at=when,
        category=Category(category), confidence=0.55 if needs_review else 0.9, priority=p,
        severity=SEVERITY_OF_PRIORITY[p], needs_review=needs_review, repeat_of=repeat_of, first_contact_at=when)
    return _wrap(data, when, "/workers/classify", cid(n), "classified")


def resolved(n: int, hhmm: str, handler: str, *, category: str = "network") -> Envelope[Any]:
    when = at(hhmm)
    data = CaseUpdated(complaint_id=cid(n), change=CaseChange.RESOLVED, sequence=4, at=when, actor=handler,
                       status=TicketStatus.RESOLVED, previous_status=TicketStatus.IN_PROGRESS,
                       category=Category(category), priority=Priority.P3, channel=Channel.APP, handler=handler,
                       received_at=when - timedelta(minutes=50), first_contact_at=when - timedelta(minutes=50))
    return _wrap(data, when, "/workers/lifecycle", cid(n), "case:4")


def returned(n: int, hhmm: str, team: str, code: str, reason: str) -> Envelope[Any]:
    data = ReturnComplaint(complaint_id=cid(n), team=team, reason_code=code, requested_by=f"{team}-lead",
                           reason=reason)
    return _wrap(data, at(hhmm), "/supervisors", cid(n), f"return:{hhmm}")


def reassign(n: int, hhmm: str, team: str, agent: str, by: str, reason: str) -> Envelope[Any]:
    data = ReassignComplaint(complaint_id=cid(n), team=team, agent_id=agent, requested_by=by, reason=reason)
    return _wrap(data, at(hhmm), "/supervisors", cid(n), f"reassign:{hhmm}")


def presence(team: str, agent: str, value: str, hhmm: str) -> Envelope[Any]:
    data = AgentPresenceChanged(team=team, agent_id=agent, presence=value, at=at(hhmm))
    return _wrap(data, at(hhmm), "/agents/desktop", agent, f"presence:{value}:{hhmm}")


def events() -> list[Envelope[Any]]:
    west = "net-sz-west"
    return [
        presence(west, "net-szw-01", "offline", "07:50"),
        presence(west, "net-szw-02", "offline", "07:51"),
        classified(1, "08:00"),
        classified(2, "08:05", channel="hotline"),
        classified(3, "08:10", category="other", needs_review=True),
        classified(4, "08:12"),
        classified(5, "08:15", channel="hotline"),
        classified(6, "08:18"),
        classified(7, "08:20", category="billing", where=CHANGSHA, home_province_code="440000"),
        classified(8, "08:22"),
        classified(9, "08:25", channel="web"),
        classified(10, "08:28"),
        classified(11, "08:30", channel="regulator", priority="P2"),
        classified(12, "08:40"),
        classified(13, "08:45", priority="P2"),
        resolved(1, "08:50", "net-szw-03"),
        presence(west, "net-szw-01", "available", "09:00"),
        presence(west, "net-szw-02", "available", "09:05"),
        classified(14, "09:10", where=FUTIAN),
        classified(15, "09:15", repeat_of=REPEATED),
        returned(14, "09:25", "net-sz", "not_our_remit", "基站在东莞"),
        reassign(2, "09:30", west, "net-szw-02", "sup-west", "VIP客户"),
        reassign(3, "09:40", "device", "device-02", "sup-triage", "手机终端故障"),
        presence(west, "net-szw-01", "away", "10:00"),
        classified(16, "10:10", language="en"),
        presence(west, "net-szw-01", "available", "10:30"),
    ]


if __name__ == "__main__":
    for env in sorted(events(), key=lambda e: e.time):
        sys.stdout.write(env.model_dump_json() + "\n")
