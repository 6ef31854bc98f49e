"""Dispatch worker (坐席分配): each team's agents, their load and presence, and the team's queue.

Reads the internal work topic the assign worker writes and the agents' presence topic, both keyed by
team id with the same partition count: one team's state (table ``dispatch-teams``: agents, the
complaints each holds, the queue) is held by one instance, so capacity holds and the queue is served in
order. Writes ``ComplaintAssigned`` keyed by complaint id. Serves ``GET /teams/{team}`` (the team's
state) on its metrics port; ``complaints queues`` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import build_dispatch_stage
from complaint_stream.domain.stage import Output
from complaint_stream.schemas import ComplaintAssigned, Envelope
from complaint_stream.settings import Settings
from complaint_stream.topics import AGENTS, ASSIGN_WORK
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding

CAUSES = ("routed", "returned", "reassigned", "reopened", "dequeued")


def binding(settings: Settings) -> Binding:
    return Binding(build_dispatch_stage(settings), inputs=(ASSIGN_WORK, AGENTS), table="dispatch-teams",
                   http_prefix="/teams/")


class DomainMetrics:
    """Assignments to agents and to a team's queue, by cause."""

    def __init__(self, registry: CollectorRegistry):
        self.assignments = Counter(f"{PREFIX}_assignments_total",
                                   "Complaints given to an agent (to=agent) or queued at a team (to=queue).",
                                   ["cause", "to"], registry=registry)
        for cause in CAUSES:
            for to in ("agent", "queue"):
                self.assignments.labels(cause, to)

    def observe(self, event: Envelope[Any], outputs: Sequence[Output]) -> None:
        for out in outputs:
            data = out.event.data
            if isinstance(data, ComplaintAssigned):
                self.assignments.labels(data.cause, "agent" if data.agent_id else "queue").inc()
