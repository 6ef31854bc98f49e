"""Follow-up (催单), repeat (重复投诉) or new: one definition (``repeats.find_link``) decided by the classify
stage. Open -> follow-up; resolved or closed within the window -> repeat; otherwise new. The complaint
the channel names (``refers_to``) decides over the category; reopens make a complaint open again;
closings and reopens commute and a second copy changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from complaint_stream.domain.priority import load_priority_rules
from complaint_stream.domain.repeats import EarlyReopen, History, PastComplaint, find_link
from complaint_stream.domain.stages import ClassifyStage
from complaint_stream.domain.triage import TriagePolicy
from complaint_stream.schemas import (
    Channel,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    Customer,
    Envelope,
    Region,
    Resolution,
    TicketStatus,
    wrap,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOW = timedelta(days=30)
KEY = "f" * 32


@dataclass(frozen=True)
class FakeClassification:
    category: str
    confidence: float = 0.9
    risk_flags: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ("fake",)


class TextIsTheCategory:
    def classify(self, text: str, channel: str) -> FakeClassification:
        return FakeClassification(text)


STAGE = ClassifyStage(TextIsTheCategory(), load_priority_rules(),
                      TriagePolicy(repeat_window=WINDOW, review_confidence=0.55, classifier_version="fake"))


def received(cid: str, at: datetime, category: str = "network", refers_to: str | None = None
             ) -> Envelope[ComplaintReceived]:
    data = ComplaintReceived(complaint_id=cid, channel=Channel.APP, channel_ref=f"REF-{cid}", text=category,
                             customer=Customer(msisdn="13812345678"), customer_key=KEY,
                             region=Region(province="广东", city="深圳"), occurred_at=at, received_at=at,
                             refers_to=refers_to)
    return wrap(data, source="/workers/intake", subject=cid, event_id=f"{cid}-received", time=at)


def resolved(cid: str, at: datetime, status: TicketStatus = TicketStatus.CLOSED) -> Envelope[ComplaintResolved]:
    data = ComplaintResolved(complaint_id=cid, customer_key=KEY, status=status, category="network",
                             resolution=Resolution(code="technical_fix"), resolved_at=at)
    return wrap(data, source="/workers/lifecycle", subject=cid, event_id=f"{cid}-{status.value}-{at:%j%H}", time=at)


def reopened(cid: str, at: datetime, count: int = 1) -> Envelope[ComplaintReopened]:
    data = ComplaintReopened(complaint_id=cid, customer_key=KEY, reopened_at=at, reason_code="customer_rejected",
                             actor="customer", reopen_count=count)
    return wrap(data, source="/workers/lifecycle", subject=cid, event_id=f"{cid}-reopened-{count}", time=at)


def run(events, state=None) -> tuple[History | None, list[ComplaintClassified]]:
    """Apply the events in order, each at its own time."""
    out: list[ComplaintClassified] = []
    for e in events:
        state, outputs = STAGE.apply(state, e, e.time)
        out.extend(o.event.data for o in outputs)
    return state, out


def last(events) -> ComplaintClassified:
    return run(events)[1][-1]


# -- follow-up, repeat or new --------------------------------------------------------------------

def test_a_contact_about_an_open_complaint_of_the_same_category_is_a_follow_up():
    a, b = run([received("CMP-A", T0), received("CMP-B", T0 + 2 * DAY)])[1]
    assert b.follow_up_of == "CMP-A" and b.repeat_of is None
    assert b.priority_reasons[-1] == "follows up CMP-A (open)"
    assert b.priority == a.priority  # not ranked as a repeat: the lifecycle raises it by its own policy
    assert b.first_contact_at == T0 and a.first_contact_at == T0


def test_a_complaint_after_one_resolved_within_the_window_is_a_repeat():
    for status in TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.CANCELLED, TicketStatus.REJECTED:
        _, [first, b] = run([received("CMP-A", T0), resolved("CMP-A", T0 + DAY, status), received("CMP-B", T0 + 20 * DAY)])
        assert b.repeat_of == "CMP-A" and b.follow_up_of is None, status
        assert b.priority_reasons[-1] == "repeats CMP-A (closed 2026-01-02)"
        assert "repeat complaint +1 -> P2" in b.priority_reasons and b.priority.value == "P2"
        assert b.first_contact_at == T0 and first.first_contact_at == T0


def test_a_complaint_closed_longer_ago_than_the_window_or_of_another_category_is_new():
    b = last([received("CMP-A", T0), resolved("CMP-A", T0 + DAY), received("CMP-B", T0 + 31 * DAY + timedelta(seconds=1))])
    assert b.repeat_of is None and b.follow_up_of is None and b.first_contact_at == b.received_at
    c = last([received("CMP-A", T0, "billing"), received("CMP-C", T0 + DAY)])
    assert c.repeat_of is None and c.follow_up_of is None and c.first_contact_at == T0 + DAY
    assert not any(r.startswith(("repeats", "follows up")) for r in c.priority_reasons)


def test_the_most_recent_open_complaint_is_followed_up_before_any_closed_one_is_repeated():
    d = last([received("CMP-A", T0), resolved("CMP-A", T0 + DAY), received("CMP-B", T0 + 2 * DAY, "billing"),
              received("CMP-C", T0 + 3 * DAY), received("CMP-D", T0 + 4 * DAY)])
    assert d.follow_up_of == "CMP-C" and d.repeat_of is None  # C (open, a repeat of A) rather than A
    assert d.first_contact_at == T0  # C repeated A: the issue started with A


def test_the_first_contact_is_carried_along_a_chain_of_repeats():
    c = last([received("CMP-A", T0), resolved("CMP-A", T0 + DAY),
              received("CMP-B", T0 + 10 * DAY), resolved("CMP-B", T0 + 11 * DAY),
              received("CMP-C", T0 + 30 * DAY)])
    assert c.repeat_of == "CMP-B" and c.first_contact_at == T0


def test_a_follow_up_is_never_itself_followed_up_or_repeated():
    state, [_, b, c] = run([received("CMP-A", T0), received("CMP-B", T0 + DAY), received("CMP-C", T0 + 2 * DAY)])
    assert b.follow_up_of == c.follow_up_of == "CMP-A"
    assert state is not None and state.get("CMP-B") == PastComplaint("CMP-B", "network", T0 + DAY, first_contact_at=T0,
                                                                 follow_up_of="CMP-A")
    _, [d] = run([resolved("CMP-A", T0 + 3 * DAY), received("CMP-D", T0 + 4 * DAY)], state)
    assert d.repeat_of == "CMP-A" and d.follow_up_of is None  # not a follow-up of B or C, which stay "open"


def test_a_follow_up_that_gets_a_closing_of_its_own_was_made_a_case_and_counts_as_one():
    state, _ = run([received("CMP-A", T0), received("CMP-B", T0 + DAY), resolved("CMP-A", T0 + 2 * DAY),
                    resolved("CMP-B", T0 + 3 * DAY)])  # the lifecycle refused to attach B and opened it
    _, [c] = run([received("CMP-C", T0 + 4 * DAY)], state)
    assert c.repeat_of == "CMP-B" and c.first_contact_at == T0


def test_a_closing_after_the_contact_was_made_still_finds_the_complaint_open_for_it():
    # processed late: A's closing (day 5) is applied before B's receipt (day 3)
    state, _ = run([received("CMP-A", T0), resolved("CMP-A", T0 + 5 * DAY)])
    _, [b] = run([received("CMP-B", T0 + 3 * DAY)], state)
    assert b.follow_up_of == "CMP-A" and b.repeat_of is None


# -- refers_to: the channel names the complaint ----------------------------------------------------

def test_a_contact_naming_an_open_complaint_follows_it_up_whatever_the_category():
    b = last([received("CMP-A", T0, "billing"), received("CMP-X", T0 + DAY),
              received("CMP-B", T0 + 2 * DAY, refers_to="CMP-A")])
    assert b.follow_up_of == "CMP-A" and b.repeat_of is None and b.first_contact_at == T0


def test_a_contact_naming_a_complaint_closed_within_the_window_repeats_it():
    b = last([received("CMP-A", T0, "billing"), resolved("CMP-A", T0 + DAY),
              received("CMP-B", T0 + 5 * DAY, refers_to="CMP-A")])
    assert b.repeat_of == "CMP-A" and b.follow_up_of is None and b.first_contact_at == T0


def test_a_contact_naming_a_complaint_closed_longer_ago_is_new_even_with_another_one_open():
    b = last([received("CMP-A", T0), resolved("CMP-A", T0 + DAY), received("CMP-X", T0 + 40 * DAY),
              received("CMP-B", T0 + 41 * DAY, refers_to="CMP-A")])
    assert b.repeat_of is None and b.follow_up_of is None and b.first_contact_at == T0 + 41 * DAY


def test_a_contact_naming_a_complaint_the_history_does_not_know_follows_it_up():
    b = last([received("CMP-A", T0), received("CMP-B", T0 + DAY, "billing", refers_to="hotline.HL-9")])
    assert b.follow_up_of == "hotline.HL-9" and b.repeat_of is None  # the lifecycle worker checks it
    assert b.first_contact_at == T0 + DAY


def test_a_contact_naming_a_follow_up_is_linked_to_the_case_it_was_attached_to():
    events = [received("CMP-A", T0), received("CMP-B", T0 + DAY)]
    assert last([*events, received("CMP-C", T0 + 2 * DAY, "billing", refers_to="CMP-B")]).follow_up_of == "CMP-A"
    c = last([*events, resolved("CMP-A", T0 + 2 * DAY), received("CMP-C", T0 + 3 * DAY, "billing", refers_to="CMP-B")])
    assert c.repeat_of == "CMP-A" and c.first_contact_at == T0


def test_a_contact_naming_itself_is_judged_by_its_category():
    b = last([received("CMP-A", T0), received("CMP-B", T0 + DAY, refers_to="CMP-B")])
    assert b.follow_up_of == "CMP-A"


# -- reopens ------------------------------------------------------------------------------------

def test_a_reopened_complaint_is_open_again_and_closed_again_after_a_later_closing():
    events = [received("CMP-A", T0), resolved("CMP-A", T0 + DAY), reopened("CMP-A", T0 + 2 * DAY)]
    b = last([*events, received("CMP-B", T0 + 3 * DAY)])
    assert b.follow_up_of == "CMP-A" and b.repeat_of is None
    c = last([*events, resolved("CMP-A", T0 + 4 * DAY), received("CMP-C", T0 + 5 * DAY)])
    assert c.repeat_of == "CMP-A" and c.priority_reasons[-1] == "repeats CMP-A (closed 2026-01-05)"


def test_a_complaint_reopened_long_after_its_receipt_is_open_since_the_reopen():
    far = T0 + 200 * DAY
    b = last([received("CMP-A", T0), resolved("CMP-A", T0 + 160 * DAY), reopened("CMP-A", T0 + 165 * DAY),
              received("CMP-B", far)])
    assert b.follow_up_of == "CMP-A"


def test_closings_and_reopens_give_the_same_history_in_either_order():
    a = received("CMP-A", T0)
    close, reopen = resolved("CMP-A", T0 + DAY), reopened("CMP-A", T0 + 2 * DAY)
    close_again = resolved("CMP-A", T0 + 3 * DAY)
    orders = [[a, close, reopen], [a, reopen, close], [reopen, a, close], [close, reopen, a], [reopen, close, a]]
    states = {run(order)[0] for order in orders}
    assert len(states) == 1
    [state] = states
    assert state is not None and state.get("CMP-A") == PastComplaint("CMP-A", "network", T0, T0 + DAY, T0 + 2 * DAY, T0)
    assert state.get("CMP-A").is_open  # type: ignore[union-attr]
    closed_states = {run([*order, close_again])[0] for order in orders} | {
        run([a, close_again, reopen, close])[0], run([close_again, reopen, a, close])[0]}
    assert len(closed_states) == 1 and not next(iter(closed_states)).get("CMP-A").is_open  # type: ignore[union-attr]


def test_a_second_copy_of_a_closing_or_reopen_changes_nothing():
    for events in ([received("CMP-A", T0), resolved("CMP-A", T0 + DAY)],
                   [received("CMP-A", T0), reopened("CMP-A", T0 + DAY)],
                   [reopened("CMP-A", T0 + DAY)], [resolved("CMP-A", T0 + DAY)]):
        once, _ = run(events)
        twice, out = run([events[-1]], once)
        assert twice == once and out == []


def test_a_reopen_of_an_unknown_complaint_is_kept_until_it_arrives():
    state, _ = run([reopened("CMP-A", T0 + 2 * DAY)])
    assert state == History(early_reopens=(EarlyReopen("CMP-A", T0 + 2 * DAY),), as_of=T0 + 2 * DAY)


def test_every_classified_complaint_has_a_first_contact():
    _, out = run([received("CMP-A", T0), received("CMP-B", T0 + DAY, "billing", refers_to="nowhere"),
                  received("CMP-C", T0 + 2 * DAY, "broadband")])
    assert all(c.first_contact_at is not None for c in out)


def test_find_link_in_one_place():
    history = History((PastComplaint("CMP-A", "network", T0, T0 + DAY), PastComplaint("CMP-O", "billing", T0)), as_of=T0)
    assert find_link(history, "CMP-B", "network", T0 + 2 * DAY, WINDOW).kind == "repeat"  # type: ignore[union-attr]
    assert find_link(history, "CMP-B", "billing", T0 + 2 * DAY, WINDOW).kind == "follow_up"  # type: ignore[union-attr]
    assert find_link(history, "CMP-B", "broadband", T0 + 2 * DAY, WINDOW) is None
    assert find_link(history, "CMP-B", "broadband", T0 + 2 * DAY, WINDOW, refers_to="CMP-O").complaint_id == "CMP-O"  # type: ignore[union-attr]
