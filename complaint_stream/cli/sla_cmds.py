"""``complaints sla show ID``: one complaint's SLA clocks, as the SLA worker holds them."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TextIO

from complaint_stream.bootstrap import build_sla_stage
from complaint_stream.cli.case_cmds import WORKER_TIMEOUT_SECONDS, complaint_id, worker_view_url
from complaint_stream.cli.commands import CommandError
from complaint_stream.cli.queues_cmd import humanise
from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.sla.stage import SlaCase
from complaint_stream.domain.sla.view import ClockView, describe
from complaint_stream.settings import Settings
from complaint_stream.workers.wiring import StateCodec


def fetch(settings: Settings, cid: str, timeout: float = WORKER_TIMEOUT_SECONDS) -> SlaCase:
    url = worker_view_url(settings, "sla", "/sla/", cid)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise CommandError(f"the SLA worker at {url} holds no clocks for {cid} (unknown, not opened yet, or"
                               " ended and forgotten; with several instances, ask the one of its partition)") from None
        raise CommandError(f"the SLA worker at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CommandError(f"the SLA worker is not reachable at {url}: {getattr(exc, 'reason', exc)}") from None
    return StateCodec(SlaCase).loads(body)


def _duration(d: timedelta) -> str:
    """As the queues command writes a wait (``42m``, ``1h05m``, ``2d03h``), negative when over."""
    return ("-" if d < timedelta(0) else "") + humanise(abs(d))


def render(case: SlaCase, views: list[ClockView], now: datetime, out: TextIO) -> None:
    local = now.astimezone(CHINA_TZ)
    print(f"{case.complaint_id}  status {case.status.value}  priority {case.priority.value}  category"
          f" {case.category.value}  channel {case.channel.value}  escalation level {case.level or '-'}"
          f"  (as of {local:%Y-%m-%d %H:%M} China time)", file=out)
    header = f"{'clock':16} {'run':>3} {'state':18} {'calendar':8} {'target':>9} {'elapsed':>9} {'paused':>9}" \
             f" {'remaining':>10}  next"
    print(header, file=out)
    for v in views:
        state = v.state + (" (breached)" if v.breached and v.state in ("running", "paused") else "")
        print(f"{v.clock:16} {v.run:>3} {state:18} {v.calendar:8} {_duration(v.target):>9} {_duration(v.elapsed):>9}"
              f" {_duration(v.paused):>9} {_duration(v.remaining):>10}  {v.next_step}", file=out)


def show(settings: Settings, raw_id: str, *, as_json: bool = False, now: datetime | None = None,
         out: TextIO = sys.stdout) -> int:
    cid = complaint_id(raw_id)
    case = fetch(settings, cid)
    when = now or datetime.now(UTC)
    views = describe(case, build_sla_stage(settings), when)
    if as_json:
        print(json.dumps({"complaint_id": case.complaint_id, "status": case.status.value,
                          "priority": case.priority.value, "level": case.level, "as_of": when.isoformat(),
                          "clocks": [{"clock": v.clock, "run": v.run, "state": v.state, "calendar": v.calendar,
                                      "rule": v.rule, "target_seconds": v.target.total_seconds(),
                                      "elapsed_seconds": v.elapsed.total_seconds(),
                                      "paused_seconds": v.paused.total_seconds(),
                                      "remaining_seconds": v.remaining.total_seconds(), "breached": v.breached,
                                      "due_at": v.due_at.isoformat() if v.due_at else None,
                                      "next_step": v.next_step} for v in views]}, ensure_ascii=False), file=out)
    else:
        render(case, views, when, out)
    return 0
