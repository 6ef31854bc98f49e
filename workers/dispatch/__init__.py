"""Dispatch worker (坐席分配): each team's agents, their load and presence, and the team's queue.

Reads the internal work topic the assign worker writes and the agents' presence topic, both keyed by
team id with the same partition count: one team's state (table ``dispatch-teams``: agents, the
complaints each holds, the queue) is held by one instance, so capacity holds and the queue is served in
order. Writes ``ComplaintAssigned`` keyed by complaint id. Serves ``GET /teams/{team}`` (the team's
state) on its metrics port; ``complaints queues`` reads it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from complaint_stream.bootstrap import build_dispatch_stage
from complaint_stream.domain.assignment.team import TeamState
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
    """Assignments to agents and to a team's queue, by cause; and per team (ids from the roster file: a
    bounded set), from the team's state as it is stored: queue length, oldest wait (computed when
    scraped), open complaints held by agents, agents available."""

    def __init__(self, registry: CollectorRegistry):
        self.assignments = Counter(f"{PREFIX}_assignments_total",
                                   "Complaints given to an agent (to=agent) or queued at a team (to=queue).",
                                   ["cause", "to"], registry=registry)
        for cause in CAUSES:
            for to in ("agent", "queue"):
                self.assignments.labels(cause, to)
        self.queue_length = Gauge(f"{PREFIX}_team_queue_length", "Complaints waiting in a team's queue.", ["team"],
                                  registry=registry)
        self.oldest_wait = Gauge(f"{PREFIX}_team_queue_oldest_wait_seconds",
                                 "How long the longest-waiting complaint of a team's queue has waited (0: none).",
                                 ["team"], registry=registry)
        self.load = Gauge(f"{PREFIX}_team_open_complaints", "Complaints held by a team's agents.", ["team"],
                          registry=registry)
        self.available = Gauge(f"{PREFIX}_team_agents_available", "Agents of a team who are available.", ["team"],
                               registry=registry)
        self._oldest: dict[str, datetime | None] = {}

    def observe_state(self, team: str, state: TeamState | None) -> None:
        if team not in self._oldest:
            self.oldest_wait.labels(team).set_function(functools.partial(self._wait, team))
        waiting = [] if state is None else [w.enqueued_at for w in state.queue if w.enqueued_at is not None]
        self._oldest[team] = min(waiting, default=None)
        self.queue_length.labels(team).set(0 if state is None else len(state.queue))
        self.load.labels(team).set(0 if state is None else sum(a.load for a in state.agents))
        self.available.labels(team).set(0 if state is None else sum(a.presence == "available" for a in state.agents))

    def _wait(self, team: str) -> float:
        oldest = self._oldest.get(team)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        for out in outputs:
            data = out.event.data
            if isinstance(data, ComplaintAssigned):
                self.assignments.labels(data.cause, "agent" if data.agent_id else "queue").inc()
