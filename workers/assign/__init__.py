"""Assign worker (派单): routes every classified complaint to a team, handles returns (退单) and
supervisors' moves, and tells the team's dispatcher when a complaint ends.

Reads the complaint-keyed classified, commands and lifecycle topics and its own links topic (a repeat
asking who handled the complaint it repeats; all co-partitioned: one agent reads them together; the
table ``assign-routes`` holds what each complaint's later decisions need) and writes the internal work
topic keyed by team, which the dispatch worker reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import build_assign_stage
from complaint_stream.domain.stage import Output
from complaint_stream.schemas import Envelope, TeamWork
from complaint_stream.settings import Settings
from complaint_stream.topics import ASSIGN_LINKS, CASES, CLASSIFIED, COMMANDS
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding

KINDS = ("offer", "withdraw", "release", "reassign", "reprioritise")


def binding(settings: Settings) -> Binding:
    return Binding(build_assign_stage(settings), inputs=(CLASSIFIED, COMMANDS, CASES, ASSIGN_LINKS), table="assign-routes")


class DomainMetrics:
    """Work sent to teams, by kind; offers by cause and the roster rule that matched (misroute returns
    per rule are how operators fix the roster)."""

    def __init__(self, registry: CollectorRegistry):
        self.work = Counter(f"{PREFIX}_team_work_total", "Work sent to teams' dispatchers, by kind.", ["kind"],
                            registry=registry)
        self.offers = Counter(f"{PREFIX}_routes_total", "Complaints offered to a team, by cause and rule.",
                              ["cause", "rule"], registry=registry)
        for kind in KINDS:
            self.work.labels(kind)

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        for out in outputs:
            data = out.event.data
            if isinstance(data, TeamWork):
                self.work.labels(data.kind).inc()
                if data.kind == "offer":  # rule: a name from the roster file, or no_match / max_returns / reassigned
                    self.offers.labels(data.cause, data.rule or "none").inc()

