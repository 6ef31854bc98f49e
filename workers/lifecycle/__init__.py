"""Lifecycle worker (工单全流程): one case record per complaint, from receipt to closing.

Reads every complaint-keyed topic (received, classified, assigned, status, commands, SLA events,
escalations) and its own internal links topic, all keyed by complaint id with the same partition
count, so one agent reads them together and the table ``lifecycle-cases`` (complaint id -> case
record) is co-partitioned with all of them. Serves ``GET /complaints/{id}`` on its metrics port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import build_lifecycle_stage
from complaint_stream.domain.lifecycle.stage import INPUT_TOPICS
from complaint_stream.domain.stage import Output
from complaint_stream.schemas import (
    CaseChange,
    CaseUpdated,
    CommunicationRequested,
    ComplaintResolved,
    Envelope,
    Priority,
    TicketStatus,
)
from complaint_stream.settings import Settings
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding

OUTCOMES = (TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.REJECTED)


def binding(settings: Settings) -> Binding:
    return Binding(build_lifecycle_stage(settings), inputs=INPUT_TOPICS, table="lifecycle-cases",
                   http_prefix="/complaints/")


class DomainMetrics:
    """Case changes by kind, follow-ups, outcomes, messages requested."""

    def __init__(self, registry: CollectorRegistry):
        self.changes = Counter(f"{PREFIX}_case_changes_total", "Changes applied to case records, by kind.",
                               ["change"], registry=registry)
        self.follow_ups = Counter(f"{PREFIX}_follow_ups_total",
                                  "Contacts attached to an open case as a follow-up (催单), by the case's priority.",
                                  ["priority"], registry=registry)
        self.outcomes = Counter(f"{PREFIX}_case_outcomes_total", "Resolved, closed, cancelled and rejected cases.",
                                ["status"], registry=registry)
        self.messages = Counter(f"{PREFIX}_customer_messages_total", "Messages requested for customers.",
                                ["channel"], registry=registry)
        for change in CaseChange:
            self.changes.labels(change.value)
        for priority in Priority:
            self.follow_ups.labels(priority.value)
        for status in OUTCOMES:
            self.outcomes.labels(status.value)
        for channel in ("sms", "email", "wechat", "app"):
            self.messages.labels(channel)

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        for out in outputs:
            data = out.event.data
            if isinstance(data, CaseUpdated):
                self.changes.labels(data.change.value).inc()
                if data.change is CaseChange.FOLLOW_UP:
                    self.follow_ups.labels(data.priority.value).inc()
            elif isinstance(data, ComplaintResolved):
                self.outcomes.labels(data.status.value).inc()
            elif isinstance(data, CommunicationRequested):
                self.messages.labels(data.channel).inc()
