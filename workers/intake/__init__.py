"""Intake worker (受理): submissions in; received complaints and dead letters out.

State ``intake-seen``: ``<channel>:<channel_ref>`` -> the complaint id it became and
when, co-partitioned with the submissions topic (same key, same partition count).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from complaint_stream.bootstrap import build_intake_policy
from complaint_stream.domain.intake import SubmissionLimits
from complaint_stream.domain.stage import Output
from complaint_stream.domain.stages import IntakeStage
from complaint_stream.schemas import Channel, Envelope
from complaint_stream.settings import Settings
from complaint_stream.topics import SUBMISSIONS
from complaint_stream.workers.metrics import PREFIX
from complaint_stream.workers.wiring import Binding


def binding(settings: Settings) -> Binding:
    stage = IntakeStage(build_intake_policy(settings), SubmissionLimits.from_settings(settings))
    return Binding(stage, inputs=(SUBMISSIONS,), table="intake-seen")


class DomainMetrics:
    """Accepted complaints and recognised retries, by channel."""

    def __init__(self, registry: CollectorRegistry):
        self.accepted = Counter(f"{PREFIX}_intake_accepted_total", "New complaints accepted at intake.",
                                ["channel"], registry=registry)
        self.duplicates = Counter(f"{PREFIX}_intake_duplicates_total",
                                  "Submissions recognised as a retry of an earlier one (same channel + reference).",
                                  ["channel"], registry=registry)
        for channel in Channel:
            self.accepted.labels(channel.value)
            self.duplicates.labels(channel.value)

    def observe(self, event: Envelope[Any] | None, outputs: Sequence[Output]) -> None:
        if event is not None:  # the intake's timers only forget channel references
            (self.accepted if outputs else self.duplicates).labels(event.data.channel.value).inc()
