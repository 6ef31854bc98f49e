"""Repeat complaints (重复投诉): the same customer, the same category, an earlier complaint still
open or closed within the window. State is one customer's recent complaints.

**Event time.** Every decision here uses the events' own times: a complaint's ``received_at``
(when intake accepted it) and a closing's ``resolved_at``, never the time a worker happens to
process them. A repeat compares the new complaint's ``received_at`` with the earlier one's
``resolved_at``, so forgetting must be measured on the same clock: the history keeps ``as_of``,
the latest event time it has applied (its watermark), and prunes against that. Processing a
closing late (a worker catching up after days down) therefore forgets nothing a later complaint
could still repeat. The payload times are used rather than the CloudEvent ``time`` because they are
what the decision compares, and a re-published or replayed event carries a new envelope time.
The processing time only bounds how far the watermark may advance (an event time ahead of it is
not trusted), so a single far-future timestamp cannot make the customer's whole history forgotten.

**Order and repetition.** The received and resolved streams are read independently, so a closing
may come before its complaint; it is kept as an :class:`EarlyClosing` and applied when the
complaint arrives. A complaint recorded again (an at-least-once replay) keeps its first record,
closing included. Applying an event twice therefore equals applying it once, and the history
after a set of events depends only on the set, not on how the two streams interleaved or how late
each was applied, provided every event about a complaint is applied before the customer's watermark
is more than :data:`MAX_OPEN_AGE` past that complaint's first event (beyond that an open complaint
is assumed lost and forgotten, so what happens to it later cannot be known) and the customer stays
under :data:`MAX_ENTRIES`.

**Memory.** A complaint is forgotten once nothing has happened to it for ``MAX_OPEN_AGE`` (or
the repeat window, if longer) before the watermark: open, it is assumed lost; closed, a replay of
its receipt arriving later would be forgotten at once anyway, so it can no longer be reopened by
one. Early closings are kept as long, and each list holds at most :data:`MAX_ENTRIES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

#: Open complaints older than this are assumed lost (no closing event seen) and forgotten; closed ones
#: and early closings are kept this long after their last event, so a replay cannot reopen them.
MAX_OPEN_AGE = timedelta(days=180)
#: Complaints (and, separately, early closings) kept per customer at most.
MAX_ENTRIES = 50


@dataclass(frozen=True)
class PastComplaint:
    """One earlier complaint of a customer."""

    complaint_id: str
    category: str
    opened_at: datetime
    closed_at: datetime | None = None

    @property
    def last_event_at(self) -> datetime:
        """When the last thing known about it happened: its receipt or its closing."""
        return self.opened_at if self.closed_at is None else max(self.opened_at, self.closed_at)

    def to_dict(self) -> dict[str, Any]:
        return {"complaint_id": self.complaint_id, "category": self.category,
                "opened_at": self.opened_at.isoformat(),
                "closed_at": None if self.closed_at is None else self.closed_at.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PastComplaint:
        closed = d.get("closed_at")
        return cls(d["complaint_id"], d["category"], datetime.fromisoformat(d["opened_at"]),
                   None if closed is None else datetime.fromisoformat(closed))


@dataclass(frozen=True)
class EarlyClosing:
    """A closing whose complaint has not been seen yet (the received and resolved topics are read
    independently, so on catch-up a closing may be applied first)."""

    complaint_id: str
    closed_at: datetime


@dataclass(frozen=True)
class History:
    """One customer's recent complaints (newest first), the closings that came before their
    complaint, and ``as_of``, the latest event time applied, which pruning is measured against."""

    complaints: tuple[PastComplaint, ...] = ()
    early_closings: tuple[EarlyClosing, ...] = ()
    as_of: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not self.complaints and not self.early_closings


#: What the classify table held before early closings and the watermark: a bare tuple of complaints.
LegacyHistory = tuple[PastComplaint, ...]
#: What a stored state decodes to (the table codec's type): the current shape or the legacy one.
StoredHistory = History | LegacyHistory


def as_history(state: StoredHistory | None) -> History:
    """The state as a :class:`History`: an empty one for no state, a legacy tuple upgraded (its
    watermark is the latest time it holds)."""
    if state is None:
        return History()
    if isinstance(state, History):
        return state
    return History(_newest_first(state), (), max((h.last_event_at for h in state), default=None))


def can_repeat(h: PastComplaint, at: datetime, window: timedelta) -> bool:
    """Whether a complaint received at ``at`` may repeat ``h``: ``h`` open then (and not so old that it
    is assumed lost), or closed within the window. A closing after ``at`` means ``h`` was open at ``at``."""
    if h.closed_at is None:
        return at - h.opened_at <= MAX_OPEN_AGE
    return at - h.closed_at <= window


def find_repeat(history: History, complaint_id: str, category: str, at: datetime,
                window: timedelta) -> PastComplaint | None:
    """The most recent earlier complaint this one repeats, if any."""
    candidates = [
        h for h in history.complaints
        if h.complaint_id != complaint_id
        and h.category == category
        and h.opened_at <= at
        and can_repeat(h, at, window)
    ]
    return max(candidates, key=lambda h: (h.opened_at, h.complaint_id), default=None)


def prune(history: History, window: timedelta) -> History:
    """Forget what can no longer matter at the watermark (see the module docstring), keep at most
    ``MAX_ENTRIES`` of each list (complaints that can still be repeated first, then the most recent),
    and put both lists in their canonical order, newest first."""
    as_of = history.as_of
    if as_of is None:
        return history
    memory = max(MAX_OPEN_AGE, window)
    complaints = [
        h for h in history.complaints
        if (h.closed_at is None and as_of - h.opened_at <= MAX_OPEN_AGE)
        or (h.closed_at is not None and as_of - h.last_event_at <= memory)
    ]
    if len(complaints) > MAX_ENTRIES:
        complaints.sort(key=lambda h: (can_repeat(h, as_of, window), h.last_event_at, h.complaint_id), reverse=True)
        complaints = complaints[:MAX_ENTRIES]
    early = sorted((e for e in history.early_closings if as_of - e.closed_at <= memory),
                   key=lambda e: (e.closed_at, e.complaint_id), reverse=True)[:MAX_ENTRIES]
    return History(_newest_first(complaints), tuple(early), as_of)


def record_opened(history: History, entry: PastComplaint, now: datetime, window: timedelta) -> History:
    """Add a complaint received at ``entry.opened_at``.

    A complaint already recorded keeps its record (an at-least-once replay must not reopen a closed
    one); a closing that came before it is applied now. ``now`` (the processing time) only bounds how
    far the watermark may advance."""
    as_of = _advance(history.as_of, entry.opened_at, now)
    if any(h.complaint_id == entry.complaint_id for h in history.complaints):
        return prune(replace(history, as_of=as_of), window)
    early = [e for e in history.early_closings if e.complaint_id == entry.complaint_id]
    if early:
        entry = replace(entry, closed_at=_latest(entry.closed_at, *(e.closed_at for e in early)))
    rest = tuple(e for e in history.early_closings if e.complaint_id != entry.complaint_id)
    return prune(History((entry, *history.complaints), rest, as_of), window)


def record_closed(history: History, complaint_id: str, closed_at: datetime, now: datetime,
                  window: timedelta) -> History:
    """Mark a complaint closed at ``closed_at``; one not seen yet is remembered as an early closing.

    Closed twice, the later closing counts (the same closing again changes nothing). ``now`` (the
    processing time) only bounds how far the watermark may advance."""
    as_of = _advance(history.as_of, closed_at, now)
    if any(h.complaint_id == complaint_id for h in history.complaints):
        complaints = tuple(replace(h, closed_at=_latest(h.closed_at, closed_at)) if h.complaint_id == complaint_id
                           else h for h in history.complaints)
        return prune(History(complaints, history.early_closings, as_of), window)
    earlier = [e.closed_at for e in history.early_closings if e.complaint_id == complaint_id]
    rest = tuple(e for e in history.early_closings if e.complaint_id != complaint_id)
    early = EarlyClosing(complaint_id, _latest(closed_at, *earlier))
    return prune(History(history.complaints, (early, *rest), as_of), window)


def _advance(as_of: datetime | None, event_at: datetime, now: datetime) -> datetime:
    at = min(event_at, now)
    return at if as_of is None else max(as_of, at)


def _latest(first: datetime | None, *others: datetime) -> datetime:
    times = [t for t in (first, *others) if t is not None]
    return max(times)


def _newest_first(complaints: Iterable[PastComplaint]) -> tuple[PastComplaint, ...]:
    return tuple(sorted(complaints, key=lambda h: (h.opened_at, h.complaint_id), reverse=True))
