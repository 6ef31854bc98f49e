"""Triage (分类定级): category, risk, repeat link, priority and review flag of one complaint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from complaint_stream.domain.intake import event_id
from complaint_stream.domain.priority import (
    PriorityDecision,
    PriorityRules,
    decide_priority,
)
from complaint_stream.domain.repeats import (
    History,
    PastComplaint,
    find_repeat,
    record_closed,
    record_opened,
)
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    Category,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintResolved,
    Envelope,
    Priority,
    RiskFlag,
    wrap,
)


class ClassificationLike(Protocol):
    """What triage reads from a classification result (``classification.Classification``)."""

    @property
    def category(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def risk_flags(self) -> Sequence[str]: ...
    @property
    def explanation(self) -> Sequence[str]: ...


class ClassifierLike(Protocol):
    def classify(self, text: str, channel: str) -> ClassificationLike: ...


@dataclass(frozen=True)
class TriagePolicy:
    repeat_window: timedelta
    review_confidence: float
    classifier_version: str
    source: str = "/workers/classify"


@dataclass(frozen=True)
class Ranking:
    """Priority and review flag of one classified complaint."""

    priority: PriorityDecision
    needs_review: bool


def rank(result: ClassificationLike, *, channel: str, tier: str, is_repeat: bool, priority_rules: PriorityRules,
         review_confidence: float) -> Ranking:
    """Rank a classification result: priority from the rules, review when confidence is low."""
    decision = decide_priority(priority_rules, category=result.category, channel=channel,
                               risk_flags=result.risk_flags, is_repeat=is_repeat, tier=tier)
    return Ranking(decision, result.confidence < review_confidence)


@dataclass(frozen=True)
class Triaged:
    event: Envelope[ComplaintClassified]
    history: History


def triage(received: ComplaintReceived, history: History, classifier: ClassifierLike,
           priority_rules: PriorityRules, policy: TriagePolicy, now: datetime) -> Triaged:
    """Classify one received complaint against the customer's history; return the event and new history."""
    result = classifier.classify(received.text, received.channel.value)
    repeat = find_repeat(history, received.complaint_id, result.category, received.received_at,
                         policy.repeat_window)
    ranking = rank(result, channel=received.channel.value, tier=received.customer.tier.value,
                   is_repeat=repeat is not None, priority_rules=priority_rules,
                   review_confidence=policy.review_confidence)
    decision = ranking.priority
    priority = Priority(decision.priority)
    reasons = decision.reasons
    if repeat is not None:
        state = "open" if repeat.closed_at is None else f"closed {repeat.closed_at:%Y-%m-%d}"
        reasons = (*reasons, f"repeats {repeat.complaint_id} ({state})")
    classified = ComplaintClassified(
        complaint_id=received.complaint_id,
        customer_key=received.customer_key,
        channel=received.channel,
        region=received.region,
        customer_tier=received.customer.tier,
        received_at=received.received_at,
        category=Category(result.category),
        confidence=round(float(result.confidence), 4),
        explanation=tuple(result.explanation),
        risk_flags=tuple(RiskFlag(f) for f in result.risk_flags),
        repeat_of=None if repeat is None else repeat.complaint_id,
        priority=priority,
        severity=SEVERITY_OF_PRIORITY[priority],
        priority_reasons=reasons,
        needs_review=ranking.needs_review,
        classifier_version=policy.classifier_version,
    )
    event = wrap(classified, source=policy.source, subject=received.complaint_id,
                 event_id=event_id(received.complaint_id, "classified"), time=now)
    new_history = record_opened(
        history, PastComplaint(received.complaint_id, result.category, received.received_at), now,
        policy.repeat_window,
    )
    return Triaged(event, new_history)


def complaint_closed(history: History, resolved: ComplaintResolved, now: datetime, policy: TriagePolicy) -> History:
    """Record that one of the customer's complaints ended."""
    return record_closed(history, resolved.complaint_id, resolved.resolved_at, now, policy.repeat_window)
