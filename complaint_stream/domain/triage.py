"""Triage (分类定级): category, risk, repeat link, priority and review flag of one complaint.

:func:`assess` is the one decision about a complaint's text: the classify
stage (:func:`triage`) and ``complaints classify`` both call it, so both clean
the text the same way and rank it by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from complaint_stream.schemas.normalise import clean_text


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


#: The earlier complaint a new one of a given category repeats, if any (category -> complaint).
RepeatLookup = Callable[[str], PastComplaint | None]


def no_repeat(category: str) -> PastComplaint | None:
    """A :data:`RepeatLookup` for a complaint known to repeat nothing."""
    return None


@dataclass(frozen=True)
class Assessment:
    """What classifying one complaint decides: the classification, the earlier complaint it
    repeats (if any) and its ranking."""

    classification: ClassificationLike
    repeat: PastComplaint | None
    ranking: Ranking

    @property
    def priority_reasons(self) -> tuple[str, ...]:
        """Why the priority is what it is, in the order the rules applied, then the repeat link."""
        reasons = self.ranking.priority.reasons
        if self.repeat is None:
            return reasons
        state = "open" if self.repeat.closed_at is None else f"closed {self.repeat.closed_at:%Y-%m-%d}"
        return (*reasons, f"repeats {self.repeat.complaint_id} ({state})")


def assess(text: str, *, channel: str, tier: str, classifier: ClassifierLike, priority_rules: PriorityRules,
           review_confidence: float, repeat_of: RepeatLookup = no_repeat) -> Assessment:
    """Classify a complaint's text, find what it repeats and rank it.

    The text is cleaned first exactly as intake cleans a submission
    (``clean_text``: control and zero-width characters out, blanks folded,
    NFC), so a caller that did not come through intake (``complaints
    classify``) gets the decision the pipeline makes; for a text intake has
    already cleaned this changes nothing.  ``repeat_of`` is asked with the
    category decided.
    """
    result = classifier.classify(clean_text(text), channel)
    repeat = repeat_of(result.category)
    ranking = rank(result, channel=channel, tier=tier, is_repeat=repeat is not None,
                   priority_rules=priority_rules, review_confidence=review_confidence)
    return Assessment(result, repeat, ranking)


@dataclass(frozen=True)
class Triaged:
    event: Envelope[ComplaintClassified]
    history: History


def triage(received: ComplaintReceived, history: History, classifier: ClassifierLike,
           priority_rules: PriorityRules, policy: TriagePolicy, now: datetime) -> Triaged:
    """Classify one received complaint against the customer's history; return the event and new history."""
    def repeat_of(category: str) -> PastComplaint | None:
        return find_repeat(history, received.complaint_id, category, received.received_at, policy.repeat_window)

    assessment = assess(received.text, channel=received.channel.value, tier=received.customer.tier.value,
                        classifier=classifier, priority_rules=priority_rules,
                        review_confidence=policy.review_confidence, repeat_of=repeat_of)
    result, repeat, ranking = assessment.classification, assessment.repeat, assessment.ranking
    priority = Priority(ranking.priority.priority)
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
        priority_reasons=assessment.priority_reasons,
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
