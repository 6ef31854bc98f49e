"""Repeat complaints (重复投诉): the same customer, the same category, an earlier complaint still
open or closed within the window. State is one customer's recent complaints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

#: Open complaints older than this are assumed lost (no closing event seen) and forgotten.
MAX_OPEN_AGE = timedelta(days=180)
MAX_ENTRIES = 50


@dataclass(frozen=True)
class PastComplaint:
    """One earlier complaint of a customer."""

    complaint_id: str
    category: str
    opened_at: datetime
    closed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"complaint_id": self.complaint_id, "category": self.category,
                "opened_at": self.opened_at.isoformat(),
                "closed_at": None if self.closed_at is None else self.closed_at.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PastComplaint:
        closed = d.get("closed_at")
        return cls(d["complaint_id"], d["category"], datetime.fromisoformat(d["opened_at"]),
                   None if closed is None else datetime.fromisoformat(closed))


History = tuple[PastComplaint, ...]


def find_repeat(history: Sequence[PastComplaint], complaint_id: str, category: str, at: datetime,
                window: timedelta) -> PastComplaint | None:
    """The most recent earlier complaint this one repeats, if any."""
    candidates = [
        h for h in history
        if h.complaint_id != complaint_id
        and h.category == category
        and h.opened_at <= at
        and (h.closed_at is None or at - h.closed_at <= window)
    ]
    return max(candidates, key=lambda h: h.opened_at, default=None)


def prune(history: Sequence[PastComplaint], now: datetime, window: timedelta) -> History:
    """Forget what can no longer make a repeat; keep at most MAX_ENTRIES, newest first."""
    keep = [
        h for h in history
        if (h.closed_at is not None and now - h.closed_at <= window)
        or (h.closed_at is None and now - h.opened_at <= MAX_OPEN_AGE)
    ]
    keep.sort(key=lambda h: h.opened_at, reverse=True)
    return tuple(keep[:MAX_ENTRIES])


def record_opened(history: Sequence[PastComplaint], entry: PastComplaint, now: datetime,
                  window: timedelta) -> History:
    """Add a complaint (idempotent: a replay of the same complaint id replaces it)."""
    rest = [h for h in history if h.complaint_id != entry.complaint_id]
    return prune([entry, *rest], now, window)


def record_closed(history: Sequence[PastComplaint], complaint_id: str, closed_at: datetime,
                  now: datetime, window: timedelta) -> History:
    """Mark a complaint closed; unknown ids change nothing."""
    updated = [replace(h, closed_at=closed_at) if h.complaint_id == complaint_id and h.closed_at is None else h
               for h in history]
    return prune(updated, now, window)
