"""Repeat complaints (重复投诉): same customer, same category, closed within the window; an open one is
followed up (催单), not repeated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from complaint_stream.domain.repeats import (
    MAX_ENTRIES,
    MAX_OPEN_AGE,
    History,
    PastComplaint,
    find_follow_up,
    find_link,
    find_repeat,
    record_closed,
    record_opened,
)

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)


def past(cid, category="network", days_ago=1.0, closed_days_ago=None):
    closed = None if closed_days_ago is None else NOW - timedelta(days=closed_days_ago)
    return PastComplaint(cid, category, NOW - timedelta(days=days_ago), closed)


def hist(*entries: PastComplaint) -> History:
    return History(complaints=entries, as_of=NOW)


def test_an_open_complaint_of_the_same_category_is_followed_up_not_repeated():
    assert find_repeat(hist(past("A")), "B", "network", NOW, WINDOW) is None
    assert find_follow_up(hist(past("A")), "B", "network", NOW).complaint_id == "A"
    link = find_link(hist(past("A")), "B", "network", NOW, WINDOW)
    assert (link.kind, link.complaint_id) == ("follow_up", "A")


def test_a_different_category_is_not_a_repeat():
    assert find_repeat(hist(past("A", "billing")), "B", "network", NOW, WINDOW) is None


def test_closed_within_the_window_is_a_repeat_and_just_outside_is_not():
    assert find_repeat(hist(past("A", days_ago=40, closed_days_ago=29.9)), "B", "network", NOW, WINDOW)
    assert find_repeat(hist(past("A", days_ago=40, closed_days_ago=30.1)), "B", "network", NOW, WINDOW) is None


def test_the_window_is_configurable():
    old = hist(past("A", days_ago=20, closed_days_ago=10))
    assert find_repeat(old, "B", "network", NOW, timedelta(days=7)) is None
    assert find_repeat(old, "B", "network", NOW, timedelta(days=14))


def test_a_complaint_never_repeats_or_follows_up_itself_when_replayed():
    assert find_link(hist(past("A")), "A", "network", NOW, WINDOW) is None
    assert find_link(hist(past("A", closed_days_ago=0.5)), "A", "network", NOW, WINDOW) is None


def test_the_most_recent_earlier_complaint_is_named():
    history = hist(past("OLD", days_ago=10, closed_days_ago=9), past("NEW", days_ago=2, closed_days_ago=1))
    assert find_repeat(history, "C", "network", NOW, WINDOW).complaint_id == "NEW"
    history = hist(past("OLD", days_ago=10), past("NEW", days_ago=2))
    assert find_follow_up(history, "C", "network", NOW).complaint_id == "NEW"


def test_closing_marks_the_complaint_and_it_is_forgotten_once_a_replay_could_not_reopen_it():
    history = record_opened(History(), past("A", days_ago=3), NOW, WINDOW)
    history = record_closed(history, "A", NOW - timedelta(days=2), NOW, WINDOW)
    assert history.complaints[0].closed_at == NOW - timedelta(days=2)
    later = NOW + timedelta(days=27)
    assert find_repeat(history, "B", "network", later, WINDOW).complaint_id == "A"
    much_later = NOW + timedelta(days=29)
    assert find_repeat(history, "B", "network", much_later, WINDOW) is None
    # kept (no longer a repeat target) while a replay of its receipt could still reopen it
    kept = record_opened(history, PastComplaint("B", "billing", much_later), much_later, WINDOW)
    assert [h.complaint_id for h in kept.complaints] == ["B", "A"]
    gone = NOW - timedelta(days=2) + MAX_OPEN_AGE + timedelta(seconds=1)
    assert [h.complaint_id for h in record_opened(history, PastComplaint("B", "billing", gone), gone,
                                                  WINDOW).complaints] == ["B"]


def test_recording_is_idempotent_and_bounded():
    history = History()
    for i in range(MAX_ENTRIES + 10):
        history = record_opened(history, past(f"C{i}", days_ago=100 - i * 0.1), NOW, WINDOW)
    history = record_opened(history, past("C5", days_ago=1), NOW, WINDOW)
    assert len(history.complaints) == MAX_ENTRIES
    assert [h.complaint_id for h in history.complaints].count("C5") <= 1


def test_open_complaints_older_than_the_open_age_are_forgotten():
    stale = past("A", days_ago=MAX_OPEN_AGE.days + 1)
    assert record_opened(hist(stale), past("B"), NOW, WINDOW).complaints == (past("B"),)


def test_history_round_trips_through_dicts():
    entry = past("A", closed_days_ago=0.5)
    assert PastComplaint.from_dict(entry.to_dict()) == entry
    full = PastComplaint("B", "network", NOW, NOW + timedelta(days=1), NOW + timedelta(days=2),
                         NOW - timedelta(days=9), "A")
    assert PastComplaint.from_dict(full.to_dict()) == full
    old_shape = {"complaint_id": "A", "category": "network", "opened_at": NOW.isoformat(), "closed_at": None}
    assert PastComplaint.from_dict(old_shape) == PastComplaint("A", "network", NOW)
