"""Triage (分类定级): category, risk, link (repeat or follow-up), priority and review flag of one complaint.

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
    Link,
    PastComplaint,
    find_link,
    record_closed,
    record_opened,
    record_reopened,
)
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    Category,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReopened,
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


#: The earlier complaint a new one of a given category repeats, if any (category -> complaint): how
#: ``complaints classify`` states a repeat it is told of.
RepeatLookup = Callable[[str], PastComplaint | None]
#: How a complaint of a given category relates to an earlier one, if at all (category -> link).
LinkLookup = Callable[[str], Link | None]


def no_repeat(category: str) -> PastComplaint | None:
    """A :data:`RepeatLookup` for a complaint known to repeat nothing."""
    return None


@dataclass(frozen=True)
class Assessment:
    """What classifying one complaint decides: the classification, its link to an earlier complaint (a
    repeat or a follow-up, if any) and its ranking."""

    classification: ClassificationLike
    link: Link | None
    ranking: Ranking

    @property
    def repeat(self) -> Link | None:
        """The link when it is a repeat (重复投诉)."""
        return self.link if self.link is not None and self.link.kind == "repeat" else None

    @property
    def follow_up(self) -> Link | None:
        """The link when it is a follow-up (催单)."""
        return self.link if self.link is not None and self.link.kind == "follow_up" else None

    @property
    def priority_reasons(self) -> tuple[str, ...]:
        """Why the priority is what it is, in the order the rules applied, then the link."""
        reasons = self.ranking.priority.reasons
        return reasons if self.link is None else (*reasons, self.link.reason)


def assess(text: str, *, channel: str, tier: str, classifier: ClassifierLike, priority_rules: PriorityRules,
           review_confidence: float, repeat_of: RepeatLookup = no_repeat, link_of: LinkLookup | None = None
           ) -> Assessment:
    """Classify a complaint's text, find what it is linked to and rank it.

    The text is cleaned first exactly as intake cleans a submission
    (``clean_text``: control and zero-width characters out, blanks folded,
    NFC), so a caller that did not come through intake (``complaints
    classify``) gets the decision the pipeline makes; for a text intake has
    already cleaned this changes nothing.  ``link_of`` (the classify stage:
    :func:`~complaint_stream.domain.repeats.find_link`) or, without it,
    ``repeat_of`` (a repeat stated by the caller) is asked with the category
    decided. Only a repeat ranks as one (``is_repeat``); a follow-up's
    priority is the lifecycle worker's business.
    """
    result = classifier.classify(clean_text(text), channel)
    if link_of is not None:
        link = link_of(result.category)
    else:
        repeated = repeat_of(result.category)
        link = None if repeated is None else Link.to("repeat", repeated)
    ranking = rank(result, channel=channel, tier=tier, is_repeat=link is not None and link.is_repeat,
                   priority_rules=priority_rules, review_confidence=review_confidence)
    return Assessment(result, link, ranking)


@dataclass(frozen=True)
class Triaged:
    event: Envelope[ComplaintClassified]
    history: History


def triage(received: ComplaintReceived, history: History, classifier: ClassifierLike,
           priority_rules: PriorityRules, policy: TriagePolicy, now: datetime) -> Triaged:
    """Classify one received complaint against the customer's history; return the event and new history.

    The link (:func:`~complaint_stream.domain.repeats.find_link`) sets ``repeat_of`` or ``follow_up_of``;
    ``first_contact_at`` is the linked complaint's first contact, or this complaint's receipt."""
    def link_of(category: str) -> Link | None:
        return find_link(history, received.complaint_id, category, received.received_at, policy.repeat_window,
                         refers_to=received.refers_to)

    assessment = assess(received.text, channel=received.channel.value, tier=received.customer.tier.value,
                        classifier=classifier, priority_rules=priority_rules,
                        review_confidence=policy.review_confidence, link_of=link_of)
    result, link, ranking = assessment.classification, assessment.link, assessment.ranking
    repeat, follow_up = assessment.repeat, assessment.follow_up
    first_contact = received.received_at
    if link is not None and link.first_contact_at is not None:
        first_contact = min(link.first_contact_at, received.received_at)
    priority = Priority(ranking.priority.priority)
    classified = ComplaintClassified(
        complaint_id=received.complaint_id,
        customer_key=received.customer_key,
        channel=received.channel,
        region=received.region,
        customer_tier=received.customer.tier,
        language=received.language,
        home_province_code=received.home_province_code,
        received_at=received.received_at,
        category=Category(result.category),
        confidence=round(float(result.confidence), 4),
        explanation=tuple(result.explanation),
        risk_flags=tuple(RiskFlag(f) for f in result.risk_flags),
        repeat_of=None if repeat is None else repeat.complaint_id,
        follow_up_of=None if follow_up is None else follow_up.complaint_id,
        first_contact_at=first_contact,
        priority=priority,
        severity=SEVERITY_OF_PRIORITY[priority],
        priority_reasons=assessment.priority_reasons,
        needs_review=ranking.needs_review,
        classifier_version=policy.classifier_version,
    )
    event = wrap(classified, source=policy.source, subject=received.complaint_id,
                 event_id=event_id(received.complaint_id, "classified"), time=now)
    entry = PastComplaint(received.complaint_id, result.category, received.received_at,
                          first_contact_at=first_contact,
                          follow_up_of=None if follow_up is None else follow_up.complaint_id)
    return Triaged(event, record_opened(history, entry, now, policy.repeat_window))


def complaint_closed(history: History, resolved: ComplaintResolved, now: datetime, policy: TriagePolicy) -> History:
    """Record that one of the customer's complaints was resolved or ended (any status is its closing)."""
    return record_closed(history, resolved.complaint_id, resolved.resolved_at, now, policy.repeat_window)


def complaint_reopened(history: History, reopened: ComplaintReopened, now: datetime,
                       policy: TriagePolicy) -> History:
    """Record that one of the customer's complaints is open again (重新处理)."""
    return record_reopened(history, reopened.complaint_id, reopened.reopened_at, now, policy.repeat_window)
