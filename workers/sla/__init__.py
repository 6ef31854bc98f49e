"""SLA worker (时限管理与升级): every open complaint's clocks, warnings, breaches and escalations.

Reads the lifecycle's case events (keyed by complaint id) and keeps, in the table ``sla-clocks`` (RocksDB:
a million open complaints are not rebuilt from the changelog on every restart), each complaint's clocks;
publishes every step of a clock to the SLA topic and the escalations to the escalations topic. Its timers
fire from the runtime's index of deadlines.
Serves ``GET /sla/{id}`` (one complaint's clocks, for ``complaints sla show``) on its metrics port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import build_sla_stage
from complaint_stream.domain.sla.stage import INPUT_TOPICS
from complaint_stream.domain.stage import Output
from complaint_stream.schemas import ComplaintEscalated, Envelope, Priority, SlaClock, SlaEvent, SlaStep
from complaint_stream.settings import Settings
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding


def binding(settings: Settings) -> Binding:
    return Binding(build_sla_stage(settings), inputs=INPUT_TOPICS, table="sla-clocks", http_prefix="/sla/",
                   store="rocksdb")


class DomainMetrics:
    """Clock steps by clock, step and priority; escalations by level and priority."""

    def __init__(self, registry: CollectorRegistry):
        self.steps = Counter(f"{PREFIX}_sla_steps_total",
                             "SLA clock steps published (started, warning, breached, fulfilled ...), by clock,"
                             " step and the case's priority.", ["clock", "step", "priority"], registry=registry)
        self.late = Counter(f"{PREFIX}_sla_fulfilled_late_total",
                            "Clocks fulfilled after their target (a breach that was then met), by clock.",
                            ["clock"], registry=registry)
        self.escalations = Counter(f"{PREFIX}_sla_escalations_total",
                                   "Escalations up the ladder, by level and the case's priority.",
                                   ["level", "priority"], registry=registry)
        for clock in SlaClock:
            self.late.labels(clock.value)
            for step in SlaStep:
                for priority in Priority:
                    self.steps.labels(clock.value, step.value, priority.value)
        for level in range(1, 6):
            for priority in Priority:
                self.escalations.labels(str(level), priority.value)

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        for out in outputs:
            data = out.event.data
            if isinstance(data, SlaEvent):
                self.steps.labels(data.clock.value, data.step.value, data.priority.value).inc()
                if data.step is SlaStep.FULFILLED and data.on_time is False:
                    self.late.labels(data.clock.value).inc()
            elif isinstance(data, ComplaintEscalated):
                self.escalations.labels(str(data.level), data.priority.value).inc()
