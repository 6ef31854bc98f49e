"""The intake (受理) and classification (分类定级) stages as pure state machines.

Each is a thin adapter from the stage shape (:mod:`complaint_stream.domain.stage`)
to the decisions in :mod:`~complaint_stream.domain.intake` and
:mod:`~complaint_stream.domain.triage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from complaint_stream.domain.intake import (
    Accepted,
    IntakePolicy,
    SeenSubmission,
    SubmissionLimits,
    accept_submission,
    expired,
)
from complaint_stream.domain.priority import PriorityRules
from complaint_stream.domain.repeats import History, StoredHistory, as_history
from complaint_stream.domain.stage import Output, StageBase
from complaint_stream.domain.triage import (
    ClassifierLike,
    TriagePolicy,
    complaint_closed,
    complaint_reopened,
    triage,
)
from complaint_stream.schemas import (
    ChannelSubmission,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    Envelope,
    Payload,
)
from complaint_stream.topics import CLASSIFIED, RECEIVED, TopicSpec


class IntakeStage(StageBase[SeenSubmission]):
    """Submission in; a received complaint out, unless it is a retry of one accepted within the window.

    State per ``<channel>:<channel_ref>``: the complaint id it became and when.
    """

    name = "intake"
    consumes: tuple[type[Payload], ...] = (ChannelSubmission,)
    produces: tuple[TopicSpec, ...] = (RECEIVED,)
    state_type: Any = SeenSubmission
    timer_interval: float | None = 3600.0

    def __init__(self, policy: IntakePolicy, limits: SubmissionLimits):
        self.policy = policy
        self.limits = limits  # the publisher validates with the same (channel_api.validate_submission)

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.dedup_key)

    def decode_context(self, now: datetime) -> dict[str, Any]:
        return self.limits.context(now)

    def apply(self, state: SeenSubmission | None, event: Envelope[Any],
              now: datetime) -> tuple[SeenSubmission | None, Sequence[Output]]:
        decision = accept_submission(event, state, now, self.policy)
        if isinstance(decision, Accepted):
            return decision.seen, (Output(RECEIVED, decision.seen.complaint_id, decision.event),)
        return state, ()

    def due(self, state: SeenSubmission, now: datetime) -> tuple[SeenSubmission | None, Sequence[Output]]:
        """Forget a channel reference once it is outside the de-duplication window."""
        return (None if expired(state, now, self.policy) else state), ()


class ClassifyStage(StageBase[History]):
    """Received complaint in; classified complaint out. Closings and reopens update the history.

    State per customer key: the customer's recent complaints, open or closed, and closings and reopens
    that came before their complaint (what makes a new one a follow-up of an open one, 催单, or a repeat
    of one closed within the window, 重复投诉). Decisions use the events' own times, not ``now`` (see
    :mod:`~complaint_stream.domain.repeats`); a state stored in a former shape (a bare tuple of
    complaints, or a history from before reopens) is read and upgraded.
    """

    name = "classify"
    consumes: tuple[type[Payload], ...] = (ComplaintReceived, ComplaintResolved, ComplaintReopened)
    produces: tuple[TopicSpec, ...] = (CLASSIFIED,)
    state_type: Any = StoredHistory

    def __init__(self, classifier: ClassifierLike, priority_rules: PriorityRules, policy: TriagePolicy):
        self.classifier = classifier
        self.priority_rules = priority_rules
        self.policy = policy
        self._batch = _BatchClassifier(classifier)

    def prepare(self, events: Sequence[Envelope[Any]]) -> None:
        """Classify the batch's complaints at once (the n-gram model costs far less per text in a batch)."""
        self._batch.load([(e.data.text, e.data.channel.value) for e in events
                          if isinstance(e.data, ComplaintReceived)])

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.customer_key)

    def apply(self, state: StoredHistory | None, event: Envelope[Any],
              now: datetime) -> tuple[History | None, Sequence[Output]]:
        data = event.data
        history = as_history(state)
        if isinstance(data, ComplaintReceived):
            result = triage(data, history, self._batch, self.priority_rules, self.policy, now)
            return result.history, (Output(CLASSIFIED, data.complaint_id, result.event),)
        if isinstance(data, ComplaintReopened):
            updated = complaint_reopened(history, data, now, self.policy)
        else:
            updated = complaint_closed(history, data, now, self.policy)
        return (None if updated.is_empty else updated), ()


class _BatchClassifier:
    """Answers ``classify`` from the results of the last ``classify_many`` batch, or asks the classifier.

    Classification is a pure function of (text, channel), so where the answer comes from changes
    nothing but the cost."""

    def __init__(self, classifier: ClassifierLike):
        self.classifier = classifier
        self._ready: dict[tuple[str, str], Any] = {}

    def load(self, items: list[tuple[str, str]]) -> None:
        many = getattr(self.classifier, "classify_many", None)
        self._ready = dict(zip(items, many(items), strict=True)) if many is not None and items else {}

    def classify(self, text: str, channel: str) -> Any:
        found = self._ready.pop((text, channel), None)
        return found if found is not None else self.classifier.classify(text, channel)
