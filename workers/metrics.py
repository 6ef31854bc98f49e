"""Every Prometheus metric of the product, declared once, prefix ``complaints_``.

Label values come from closed sets (channel, category, stage, error kind,
priority) and are set up in advance so dashboards see zeros, not gaps. No
label ever carries a phone number, customer key or complaint id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

# `_created` series double the exposition size and no dashboard of ours reads them.
disable_created_metrics()

from complaint_stream.domain.normalise import CHANNELS

PREFIX = "complaints"
CATEGORIES = ("network", "broadband", "billing", "vas_subscription", "marketing", "service_quality",
              "business_handling", "number_portability", "device", "security_fraud", "other")
PRIORITIES = ("P1", "P2", "P3", "P4")
RISK_FLAGS = ("regulator", "consumer_association", "media", "legal")
DEAD_LETTER_KINDS = ("empty_record", "invalid_encoding", "invalid_json", "schema_violation",
                     "unexpected_event_type", "processing_error")
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The metric objects of one worker process, bound to one registry (tests pass their own)."""

    def __init__(self, worker: str, registry: CollectorRegistry | None = None):
        from prometheus_client import REGISTRY

        self.worker = worker
        self.registry = registry if registry is not None else REGISTRY
        r = self.registry
        self.records_in = Counter(f"{PREFIX}_records_consumed_total", "Records read from Kafka.",
                                  ["worker", "topic"], registry=r)
        self.records_out = Counter(f"{PREFIX}_records_produced_total", "Records written to Kafka.",
                                   ["worker", "topic"], registry=r)
        self.dead_letters = Counter(f"{PREFIX}_dead_letters_total", "Records sent to the dead-letter topic.",
                                    ["stage", "kind"], registry=r)
        self.accepted = Counter(f"{PREFIX}_intake_accepted_total", "New complaints accepted at intake.",
                                ["channel"], registry=r)
        self.duplicates = Counter(f"{PREFIX}_intake_duplicates_total",
                                  "Submissions recognised as a retry of an earlier one (same channel + reference).",
                                  ["channel"], registry=r)
        self.classified = Counter(f"{PREFIX}_classified_total", "Complaints classified.",
                                  ["category", "priority"], registry=r)
        self.risk_flags = Counter(f"{PREFIX}_risk_flags_total", "Risk flags raised by the classifier.",
                                  ["flag"], registry=r)
        self.repeats = Counter(f"{PREFIX}_repeat_complaints_total", "Complaints marked as a repeat (重复投诉).",
                               registry=r)
        self.needs_review = Counter(f"{PREFIX}_needs_review_total",
                                    "Complaints whose classification confidence is below the review threshold.",
                                    registry=r)
        self.processing = Histogram(f"{PREFIX}_processing_seconds", "Time to handle one record in a worker.",
                                    ["worker"], buckets=STAGE_BUCKETS, registry=r)
        self.table_entries = Gauge(f"{PREFIX}_state_entries", "Entries in a worker's state table (this instance).",
                                   ["worker", "table"], registry=r)
        self._prepare()

    def _prepare(self) -> None:
        self.processing.labels(self.worker)
        for kind in DEAD_LETTER_KINDS:
            self.dead_letters.labels(self.worker, kind)
        for channel in CHANNELS:
            self.accepted.labels(channel)
            self.duplicates.labels(channel)
        for category in CATEGORIES:
            for priority in PRIORITIES:
                self.classified.labels(category, priority)
        for flag in RISK_FLAGS:
            self.risk_flags.labels(flag)


def serve(metrics: Metrics, host: str, port: int):
    """Expose ``/metrics`` over HTTP; returns the server so callers can shut it down."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
