"""Classification worker (分类定级): received complaints in; classified complaints out.

Received, resolved and reopened complaints (keyed by complaint id) are first re-keyed by
customer key into the internal topic ``CLASSIFY_BY_CUSTOMER``, so the table
``classify-customer-history`` (customer key -> recent complaints) is
co-partitioned with the stream that reads and updates it, and one customer's
complaints, closings and reopens are handled in order by one instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import (
    build_classifier,
    build_priority_rules,
    build_triage_policy,
)
from complaint_stream.domain.stage import Output
from complaint_stream.domain.stages import ClassifyStage
from complaint_stream.schemas import (
    Category,
    ComplaintClassified,
    Envelope,
    Priority,
    RiskFlag,
)
from complaint_stream.settings import Settings
from complaint_stream.topics import CLASSIFY_BY_CUSTOMER, RECEIVED, RESOLVED
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding


def binding(settings: Settings) -> Binding:
    classifier, version = build_classifier(settings)
    stage = ClassifyStage(classifier, build_priority_rules(settings), build_triage_policy(settings, version))
    return Binding(stage, inputs=(RECEIVED, RESOLVED), table="classify-customer-history",
                   repartition=CLASSIFY_BY_CUSTOMER)


class DomainMetrics:
    """What the classifier decided: categories and priorities, risk flags, repeats, follow-ups, reviews."""

    def __init__(self, registry: CollectorRegistry):
        self.classified = Counter(f"{PREFIX}_classified_total", "Complaints classified.",
                                  ["category", "priority"], registry=registry)
        self.risk_flags = Counter(f"{PREFIX}_risk_flags_total", "Risk flags raised by the classifier.",
                                  ["flag"], registry=registry)
        self.repeats = Counter(f"{PREFIX}_repeat_complaints_total", "Complaints marked as a repeat (重复投诉).",
                               registry=registry)
        self.follow_ups = Counter(f"{PREFIX}_follow_ups_detected_total",
                                  "Contacts found to follow up an open complaint (催单).", registry=registry)
        self.needs_review = Counter(f"{PREFIX}_needs_review_total",
                                    "Complaints whose classification confidence is below the review threshold.",
                                    registry=registry)
        for category in Category:
            for priority in Priority:
                self.classified.labels(category.value, priority.value)
        for flag in RiskFlag:
            self.risk_flags.labels(flag.value)

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        for out in outputs:
            c = out.event.data
            if not isinstance(c, ComplaintClassified):
                continue
            self.classified.labels(c.category.value, c.priority.value).inc()
            for flag in c.risk_flags:
                self.risk_flags.labels(flag.value).inc()
            if c.repeat_of:
                self.repeats.inc()
            if c.follow_up_of:
                self.follow_ups.inc()
            if c.needs_review:
                self.needs_review.inc()
