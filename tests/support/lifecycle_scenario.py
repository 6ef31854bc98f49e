"""The recorded lifecycle scenario (``tests/data/lifecycle_scenario.jsonl``): how it was made.

``python -m tests.support.lifecycle_scenario > tests/data/lifecycle_scenario.jsonl`` writes it again;
the expected timeline (``tests/data/lifecycle_scenario.expected.json``) was written by hand from the
story below, not from the worker's output.

Story (times in China Standard Time, 30 Nov - 1 Dec 2026):

* C1 (customer A, app, network): assigned to agent-7, taken, a follow-up by phone (C2, 催单), pending on the
  customer, resumed, resolved (technical fix); the callback finds A dissatisfied, so it reopens; resolved
  again with 5.00 yuan compensation; the second callback is satisfied and closes it.
* C3 (customer B, web, billing): an agent resolves it before anyone handled it (refused), then handles and
  resolves it with a 15.00 yuan refund; three callbacks do not reach B, so it closes unreached.
* C4 and C5 (customers C and D, network, same outage): an update the CRM sends late (at 11:05 it says C4
  went pending at 10:20, older than its last change from the CRM, 10:50) is refused as stale; a supervisor
  merges C5 into C4.
* C6 (customer E, regulator appeal GD-2026-1130-0042): received at 21:30, so its acknowledgement waits for
  08:00 (quiet hours).
* An update about a complaint never received (C9) is dead-lettered after the grace period.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from complaint_stream.schemas import RegulatorAppeal
from tests.support import cases as c

CST = timedelta(hours=8)


def at(day: int, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 30, h, m, tzinfo=UTC) - CST + timedelta(days=day)


def events() -> list:
    A, B, C, D, E = 101, 102, 103, 104, 105
    return [
        *c.opened(1, at(0, "10:00"), customer=A, channel="app"),
        c.assigned(1, at(0, "10:05"), agent="agent-7"),
        c.status(1, "inProgress", at(0, "10:10"), actor="agent-7"),
        *c.opened(3, at(0, "10:30"), customer=B, channel="web", category="billing",
                  text="本月话费多扣了15元，要求退还"),
        c.resolve(3, at(0, "10:40"), code="explanation", actor="agent-3"),
        c.status(3, "inProgress", at(0, "10:45"), actor="agent-3"),
        *c.opened(4, at(0, "10:40"), customer=C),
        *c.opened(5, at(0, "10:42"), customer=D),
        c.status(4, "inProgress", at(0, "10:50"), actor="agent-9"),
        c.status(4, "pending", at(0, "10:20"), actor="agent-9", sent=at(0, "11:05")),  # late: stale
        c.resolve(3, at(0, "11:00"), code="refund", refund_fen=1500, actor="agent-3"),
        c.merge(4, 5, at(0, "11:30")),
        *c.opened(2, at(0, "12:00"), customer=A, channel="hotline", follow_up_of=c.cid(1),
                  text="上午投诉的信号问题还没人处理，催一下"),
        c.status(1, "pending", at(0, "13:00"), actor="agent-7", note="等待客户提供故障时间"),
        c.callback(3, at(0, "13:10"), outcome="unreached"),
        c.status(9, "inProgress", at(0, "14:00"), actor="agent-1"),
        c.status(1, "inProgress", at(0, "15:00"), actor="agent-7"),
        c.resolve(1, at(0, "16:00"), code="technical_fix", actor="agent-7"),
        c.callback(3, at(0, "17:10"), outcome="unreached"),
        c.callback(1, at(0, "18:30"), answer="不满意"),
        *c.opened(6, at(0, "21:30"), customer=E, channel="regulator", priority="P2",
                  regulator=RegulatorAppeal(case_no="GD-2026-1130-0042", reply_by=at(10, "17:00"))),
        c.callback(3, at(0, "21:10"), outcome="unreached"),
        c.status(1, "resolved", at(1, "11:00"), actor="agent-7",
                 resolution=c.Resolution(code="compensation", compensation_fen=500, root_cause="base_station_fault",
                                         responsible_department="network", note="补偿5元")),
        c.callback(1, at(1, "14:00"), answer="satisfied"),
    ]


if __name__ == "__main__":
    for env in sorted(events(), key=lambda e: e.time):
        sys.stdout.write(env.model_dump_json() + "\n")
