"""Follow-ups (催单) and repeat complaints (重复投诉): how a new contact relates to a customer's earlier
complaints. State is one customer's recent complaints.

**The two links.** The classifier decides the link (:func:`find_link`, called by ``triage``); the
lifecycle worker acts on it.

* A **follow-up** (催单, ``ComplaintClassified.follow_up_of``): the customer contacts us again about a
  complaint that is still *open*, of the same category (the most recent such one). It opens no case: the
  lifecycle worker attaches it to the open case (and checks that the case is the same customer's and
  still open; otherwise it opens a case of its own).
* A **repeat** (重复投诉, ``ComplaintClassified.repeat_of``): an earlier complaint of the same category
  was *resolved or closed* (any ``ComplaintResolved`` is its closing: resolved, closed, rejected or
  cancelled) no longer than the repeat window before the new one was received. The new one is a new
  case, linked to the earlier one and ranked as a repeat.
* When the channel says which complaint the contact is about (``refers_to``), that complaint decides,
  whatever the category: open, a follow-up of it; closed within the window, a repeat of it; closed
  longer ago, neither. One this history does not know is taken as a follow-up of it (the lifecycle
  worker checks it).

A complaint is *open* when it has no closing, or was reopened (``ComplaintReopened``) after its last
closing. A contact also finds a complaint open whose closing happened after the contact was made (it was
open when the customer called; the lifecycle worker makes it a case of its own if the case has ended by
the time the follow-up reaches it). An open complaint not heard of for :data:`MAX_OPEN_AGE` is assumed
lost and followed up by nothing. A contact recorded as a follow-up is never itself the target of a link
(links go to the case it was attached to), unless a closing or reopen of its own shows that the lifecycle
worker made it a case after all. ``first_contact_at`` carries the start of the issue across links: a
repeat or follow-up inherits the first contact of the complaint it is linked to; otherwise it is the
complaint's own receipt.

**Event time.** Every decision here uses the events' own times: a complaint's ``received_at``
(when intake accepted it), a closing's ``resolved_at`` and a reopen's ``reopened_at``, never the time a
worker happens to process them. A repeat compares the new complaint's ``received_at`` with the earlier
one's ``resolved_at``, so forgetting must be measured on the same clock: the history keeps ``as_of``,
the latest event time it has applied (its watermark), and prunes against that. Processing a
closing late (a worker catching up after days down) therefore forgets nothing a later complaint
could still repeat. The payload times are used rather than the CloudEvent ``time`` because they are
what the decision compares, and a re-published or replayed event carries a new envelope time.
The processing time only bounds how far the watermark may advance (an event time ahead of it is
not trusted), so a single far-future timestamp cannot make the customer's whole history forgotten.

**Order and repetition.** The received and resolved streams are read independently, so a closing or a
reopen may come before its complaint; it is kept as an :class:`EarlyClosing` or :class:`EarlyReopen` and
applied when the complaint arrives. Closings and reopens keep the latest of each (``closed_at``,
``reopened_at``), so they commute with each other and a second copy changes nothing. A complaint recorded
again (an at-least-once replay) keeps its first record, closing and reopen included. Applying an event
twice therefore equals applying it once, and the *facts* of the history (which complaints, their
categories, receipts, closings and reopens, and the watermark) depend only on the set of events, not on
how the streams interleaved or how late each was applied, provided every event about a complaint is
applied before the customer's watermark is more than :data:`MAX_OPEN_AGE` past that complaint's first
event (beyond that an open complaint is assumed lost and forgotten, so what happens to it later cannot be
known) and the customer stays under :data:`MAX_ENTRIES`. What a complaint was decided to be when it was
classified (a follow-up of which complaint, its first contact) is recorded with it and depends on what
had been applied before it: a closing processed after a later complaint (though it happened before it)
may change that complaint's link, as it would its ``ComplaintClassified``. Applied in event time, every
decision, and so the whole history, is the same however late each event was processed.

**Memory.** A complaint is forgotten once nothing has happened to it for ``MAX_OPEN_AGE`` (or
the repeat window, if longer) before the watermark: open, it is assumed lost; closed, a replay of
its receipt arriving later would be forgotten at once anyway, so it can no longer be reopened by
one. Early closings and reopens are kept as long, and each list holds at most :data:`MAX_ENTRIES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

#: Open complaints not heard of for this long are assumed lost (no closing event seen) and forgotten;
#: closed ones and early closings and reopens are kept this long after their last event, so a replay
#: cannot reopen them.
MAX_OPEN_AGE = timedelta(days=180)
#: Complaints (and, separately, early closings and early reopens) kept per customer at most.
MAX_ENTRIES = 50


@dataclass(frozen=True)
class PastComplaint:
    """One earlier complaint (or contact) of a customer.

    ``closed_at`` and ``reopened_at`` are the latest closing and reopen seen; ``first_contact_at`` when
    the customer first complained about the issue (absent in states stored before it: ``opened_at``);
    ``follow_up_of`` the complaint this contact was attached to as a follow-up, when it was one."""

    complaint_id: str
    category: str
    opened_at: datetime
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    first_contact_at: datetime | None = None
    follow_up_of: str | None = None

    @property
    def is_open(self) -> bool:
        """No closing, or reopened after its last closing."""
        return self.closed_at is None or (self.reopened_at is not None and self.reopened_at > self.closed_at)

    @property
    def open_since(self) -> datetime:
        """When it was last opened: reopened (if open because of a reopen), or received."""
        if self.closed_at is not None and self.reopened_at is not None and self.reopened_at > self.closed_at:
            return self.reopened_at
        return self.opened_at

    @property
    def first_contact(self) -> datetime:
        return self.opened_at if self.first_contact_at is None else self.first_contact_at

    @property
    def attached(self) -> bool:
        """A follow-up attached to another complaint (not a case): no closing or reopen of its own."""
        return self.follow_up_of is not None and self.closed_at is None and self.reopened_at is None

    @property
    def last_event_at(self) -> datetime:
        """When the last thing known about it happened: its receipt, closing or reopen."""
        return max(t for t in (self.opened_at, self.closed_at, self.reopened_at) if t is not None)

    def open_for(self, at: datetime) -> bool:
        """Whether a contact made at ``at`` finds it open: open now, or closed only after ``at``."""
        return self.is_open or (self.closed_at is not None and self.closed_at > at)

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {"complaint_id": self.complaint_id, "category": self.category,
                "opened_at": self.opened_at.isoformat(), "closed_at": iso(self.closed_at),
                "reopened_at": iso(self.reopened_at), "first_contact_at": iso(self.first_contact_at),
                "follow_up_of": self.follow_up_of}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PastComplaint:
        def when(key: str) -> datetime | None:
            value = d.get(key)
            return None if value is None else datetime.fromisoformat(value)

        return cls(d["complaint_id"], d["category"], datetime.fromisoformat(d["opened_at"]), when("closed_at"),
                   when("reopened_at"), when("first_contact_at"), d.get("follow_up_of"))


@dataclass(frozen=True)
class EarlyClosing:
    """A closing whose complaint has not been seen yet (the received and resolved topics are read
    independently, so on catch-up a closing may be applied first)."""

    complaint_id: str
    closed_at: datetime


@dataclass(frozen=True)
class EarlyReopen:
    """A reopen whose complaint has not been seen yet (like :class:`EarlyClosing`)."""

    complaint_id: str
    reopened_at: datetime


@dataclass(frozen=True)
class History:
    """One customer's recent complaints (newest first), the closings and reopens that came before
    their complaint, and ``as_of``, the latest event time applied, which pruning is measured against.
    (``early_reopens`` comes last so a state stored before reopens still reads.)"""

    complaints: tuple[PastComplaint, ...] = ()
    early_closings: tuple[EarlyClosing, ...] = ()
    as_of: datetime | None = None
    early_reopens: tuple[EarlyReopen, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.complaints and not self.early_closings and not self.early_reopens

    def get(self, complaint_id: str) -> PastComplaint | None:
        return next((h for h in self.complaints if h.complaint_id == complaint_id), None)


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


# -- the links ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    """How a new contact relates to an earlier complaint: a follow-up of it (open) or a repeat of it
    (closed within the window). ``first_contact_at``: the linked complaint's first contact, when the
    history knows it; ``closed_at``: a repeated complaint's closing."""

    kind: Literal["follow_up", "repeat"]
    complaint_id: str
    first_contact_at: datetime | None = None
    closed_at: datetime | None = None

    @classmethod
    def to(cls, kind: Literal["follow_up", "repeat"], h: PastComplaint) -> Link:
        return cls(kind, h.complaint_id, h.first_contact, h.closed_at if kind == "repeat" else None)

    @property
    def is_repeat(self) -> bool:
        return self.kind == "repeat"

    @property
    def reason(self) -> str:
        """The link as a priority reason."""
        if self.kind == "follow_up":
            return f"follows up {self.complaint_id} (open)"
        if self.closed_at is None:
            return f"repeats {self.complaint_id}"
        return f"repeats {self.complaint_id} (closed {self.closed_at:%Y-%m-%d})"


def can_follow_up(h: PastComplaint, at: datetime) -> bool:
    """Whether a contact at ``at`` may follow ``h`` up: ``h`` a case (not an attached follow-up) open for
    it (:meth:`PastComplaint.open_for`) and not so long unheard of that it is assumed lost."""
    return not h.attached and h.open_for(at) and at - h.open_since <= MAX_OPEN_AGE


def can_repeat(h: PastComplaint, at: datetime, window: timedelta) -> bool:
    """Whether a complaint received at ``at`` may repeat ``h``: ``h`` a case closed (and not reopened) at
    or before ``at``, no longer than ``window`` before it."""
    return not h.attached and not h.open_for(at) and h.closed_at is not None and at - h.closed_at <= window


def find_follow_up(history: History, complaint_id: str, category: str, at: datetime) -> PastComplaint | None:
    """The most recent earlier open complaint of the category that a contact at ``at`` follows up."""
    return _most_recent(h for h in _earlier(history, complaint_id, category, at) if can_follow_up(h, at))


def find_repeat(history: History, complaint_id: str, category: str, at: datetime,
                window: timedelta) -> PastComplaint | None:
    """The most recent earlier complaint of the category, closed within the window, that one received at
    ``at`` repeats (whether or not an open one is followed up first: see :func:`find_link`)."""
    return _most_recent(h for h in _earlier(history, complaint_id, category, at) if can_repeat(h, at, window))


def find_link(history: History, complaint_id: str, category: str, at: datetime, window: timedelta,
              refers_to: str | None = None) -> Link | None:
    """What a complaint received at ``at`` is, against the customer's history: a follow-up of the most
    recent open complaint of its category, else a repeat of the most recent one closed within the
    window, else neither. A ``refers_to`` (the channel's word) decides instead, whatever the category."""
    if refers_to is not None and refers_to != complaint_id:
        return _referred(history, refers_to, at, window)
    follow_up = find_follow_up(history, complaint_id, category, at)
    if follow_up is not None:
        return Link.to("follow_up", follow_up)
    repeat = find_repeat(history, complaint_id, category, at, window)
    return None if repeat is None else Link.to("repeat", repeat)


def _referred(history: History, refers_to: str, at: datetime, window: timedelta) -> Link | None:
    """The link to the complaint the channel named; through a follow-up to the case it was attached to."""
    h = history.get(refers_to)
    if h is None:
        return Link("follow_up", refers_to)
    seen = {h.complaint_id}
    while h.attached and h.follow_up_of is not None:
        target = history.get(h.follow_up_of)
        if target is None or target.complaint_id in seen:
            return Link("follow_up", h.follow_up_of, h.first_contact)
        seen.add(target.complaint_id)
        h = target
    if h.open_for(at):
        return Link.to("follow_up", h)
    if h.closed_at is not None and at - h.closed_at <= window:
        return Link.to("repeat", h)
    return None


def _earlier(history: History, complaint_id: str, category: str, at: datetime) -> list[PastComplaint]:
    return [h for h in history.complaints
            if h.complaint_id != complaint_id and h.category == category and h.opened_at <= at]


def _most_recent(complaints: Iterable[PastComplaint]) -> PastComplaint | None:
    return max(complaints, key=lambda h: (h.opened_at, h.complaint_id), default=None)


# -- recording ---------------------------------------------------------------------------------------

def prune(history: History, window: timedelta) -> History:
    """Forget what can no longer matter at the watermark (see the module docstring), keep at most
    ``MAX_ENTRIES`` of each list (complaints that can still be linked to first, then the most recent),
    and put the lists in their canonical order, newest first."""
    as_of = history.as_of
    if as_of is None:
        return history
    memory = max(MAX_OPEN_AGE, window)
    complaints = [h for h in history.complaints if as_of - h.last_event_at <= (MAX_OPEN_AGE if h.is_open else memory)]
    if len(complaints) > MAX_ENTRIES:
        def keep_first(h: PastComplaint) -> tuple[bool, datetime, str]:
            linkable = can_follow_up(h, as_of) or can_repeat(h, as_of, window)
            return linkable, h.last_event_at, h.complaint_id

        complaints = sorted(complaints, key=keep_first, reverse=True)[:MAX_ENTRIES]
    closings = sorted((e for e in history.early_closings if as_of - e.closed_at <= memory),
                      key=lambda e: (e.closed_at, e.complaint_id), reverse=True)[:MAX_ENTRIES]
    reopens = sorted((e for e in history.early_reopens if as_of - e.reopened_at <= memory),
                     key=lambda e: (e.reopened_at, e.complaint_id), reverse=True)[:MAX_ENTRIES]
    return History(_newest_first(complaints), tuple(closings), as_of, tuple(reopens))


def record_opened(history: History, entry: PastComplaint, now: datetime, window: timedelta) -> History:
    """Add a complaint received at ``entry.opened_at``.

    A complaint already recorded keeps its record (an at-least-once replay must not reopen a closed
    one); closings and reopens that came before it are applied now. ``now`` (the processing time) only
    bounds how far the watermark may advance."""
    as_of = _advance(history.as_of, entry.opened_at, now)
    if history.get(entry.complaint_id) is not None:
        return prune(replace(history, as_of=as_of), window)
    cid = entry.complaint_id
    closings = [e.closed_at for e in history.early_closings if e.complaint_id == cid]
    reopens = [e.reopened_at for e in history.early_reopens if e.complaint_id == cid]
    if closings:
        entry = replace(entry, closed_at=_latest(entry.closed_at, *closings))
    if reopens:
        entry = replace(entry, reopened_at=_latest(entry.reopened_at, *reopens))
    return prune(History((entry, *history.complaints),
                         tuple(e for e in history.early_closings if e.complaint_id != cid), as_of,
                         tuple(e for e in history.early_reopens if e.complaint_id != cid)), window)


def record_closed(history: History, complaint_id: str, closed_at: datetime, now: datetime,
                  window: timedelta) -> History:
    """Mark a complaint closed at ``closed_at``; one not seen yet is remembered as an early closing.

    Closed twice, the later closing counts (the same closing again changes nothing). ``now`` (the
    processing time) only bounds how far the watermark may advance."""
    as_of = _advance(history.as_of, closed_at, now)
    if history.get(complaint_id) is not None:
        complaints = tuple(replace(h, closed_at=_latest(h.closed_at, closed_at)) if h.complaint_id == complaint_id
                           else h for h in history.complaints)
        return prune(replace(history, complaints=complaints, as_of=as_of), window)
    earlier = [e.closed_at for e in history.early_closings if e.complaint_id == complaint_id]
    rest = tuple(e for e in history.early_closings if e.complaint_id != complaint_id)
    early = EarlyClosing(complaint_id, _latest(closed_at, *earlier))
    return prune(replace(history, early_closings=(early, *rest), as_of=as_of), window)


def record_reopened(history: History, complaint_id: str, reopened_at: datetime, now: datetime,
                    window: timedelta) -> History:
    """Mark a complaint reopened at ``reopened_at``: open again unless a closing came after it. One not
    seen yet is remembered as an early reopen. Reopened twice, the later reopen counts (the same reopen
    again changes nothing); with closings, the order they are applied in does not matter."""
    as_of = _advance(history.as_of, reopened_at, now)
    if history.get(complaint_id) is not None:
        complaints = tuple(replace(h, reopened_at=_latest(h.reopened_at, reopened_at))
                           if h.complaint_id == complaint_id else h for h in history.complaints)
        return prune(replace(history, complaints=complaints, as_of=as_of), window)
    earlier = [e.reopened_at for e in history.early_reopens if e.complaint_id == complaint_id]
    rest = tuple(e for e in history.early_reopens if e.complaint_id != complaint_id)
    early = EarlyReopen(complaint_id, _latest(reopened_at, *earlier))
    return prune(replace(history, early_reopens=(early, *rest), as_of=as_of), window)


def _advance(as_of: datetime | None, event_at: datetime, now: datetime) -> datetime:
    at = min(event_at, now)
    return at if as_of is None else max(as_of, at)


def _latest(first: datetime | None, *others: datetime) -> datetime:
    times = [t for t in (first, *others) if t is not None]
    return max(times)


def _newest_first(complaints: Iterable[PastComplaint]) -> tuple[PastComplaint, ...]:
    return tuple(sorted(complaints, key=lambda h: (h.opened_at, h.complaint_id), reverse=True))
