"""Repeats (重复投诉) and follow-ups (催单) at their edges: replayed receipts, closings and reopens before
their complaint, late processing, the stored state. Examples first, then properties of the classify
stage over a customer's generated story (receipts, closings, reopens): idempotence, independence of how
the received and resolved streams interleave, independence of processing time, and the state codec's
round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_stream.domain.priority import load_priority_rules
from complaint_stream.domain.repeats import (
    MAX_OPEN_AGE,
    EarlyClosing,
    EarlyReopen,
    History,
    PastComplaint,
    as_history,
    find_follow_up,
    record_closed,
    record_opened,
    record_reopened,
)
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
    decoder_for,
    encode,
    wrap,
)
from complaint_stream.workers.wiring import StateCodec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)
DAY = timedelta(days=1)
KEY = "c" * 32


@dataclass(frozen=True)
class FakeClassification:
    category: str
    confidence: float = 0.9
    risk_flags: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ("fake",)


class TextIsTheCategory:
    """A classifier whose answer is the complaint's text: the tests choose each category."""

    def classify(self, text: str, channel: str) -> FakeClassification:
        return FakeClassification(text)


def make_stage() -> ClassifyStage:
    return ClassifyStage(TextIsTheCategory(), load_priority_rules(),
                         TriagePolicy(repeat_window=WINDOW, review_confidence=0.55, classifier_version="fake"))


def received(cid: str, at: datetime, category: str = "network") -> Envelope[ComplaintReceived]:
    data = ComplaintReceived(complaint_id=cid, channel=Channel.APP, channel_ref=f"REF-{cid}", text=category,
                             customer=Customer(msisdn="13812345678"), customer_key=KEY,
                             region=Region(province="广东", city="深圳"), occurred_at=at, received_at=at)
    return wrap(data, source="/workers/intake", subject=cid, event_id=f"{cid}-received", time=at)


def resolved(cid: str, at: datetime, category: str = "network") -> Envelope[ComplaintResolved]:
    data = ComplaintResolved(complaint_id=cid, customer_key=KEY, status=TicketStatus.CLOSED, category=category,
                             resolution=Resolution(code="technical_fix"), resolved_at=at)
    return wrap(data, source="/workers/lifecycle", subject=cid, event_id=f"{cid}-resolved-{at:%Y%m%d%H}", time=at)


def reopened(cid: str, at: datetime, count: int = 1) -> Envelope[ComplaintReopened]:
    data = ComplaintReopened(complaint_id=cid, customer_key=KEY, reopened_at=at, reason_code="customer_rejected",
                             actor="customer", reopen_count=count)
    return wrap(data, source="/workers/lifecycle", subject=cid, event_id=f"{cid}-reopened-{count}", time=at)


def run(stage: ClassifyStage, steps, state=None):
    """Apply ``(event, now)`` steps in order; the final state and each classified complaint's payload."""
    out: list[ComplaintClassified] = []
    for event, now in steps:
        state, outputs = stage.apply(state, event, now)
        out.extend(o.event.data for o in outputs)
    return state, out


def at_event_time(events):
    return [(e, e.time) for e in events]


# -- 1. a replayed receipt does not reopen a closed complaint ----------------------------------

def test_a_replayed_receipt_of_a_closed_complaint_leaves_it_closed():
    stage = make_stage()
    a = received("CMP-A", T0)
    state, _ = run(stage, at_event_time([a, resolved("CMP-A", T0 + DAY)]))
    replayed, _ = run(stage, [(a, T0 + 2 * DAY)], state)
    assert replayed == state
    assert replayed.complaints[0].closed_at == T0 + DAY
    # 40 days after the closing: outside the 30-day window, so neither a repeat nor (A reopened) a follow-up
    _, [b] = run(stage, at_event_time([received("CMP-B", T0 + 41 * DAY)]), replayed)
    assert b.repeat_of is None and b.follow_up_of is None


def test_a_receipt_replayed_after_the_repeat_window_still_finds_its_complaint_closed():
    stage = make_stage()
    a = received("CMP-A", T0)
    state, _ = run(stage, at_event_time([a, resolved("CMP-A", T0 + DAY), received("CMP-X", T0 + 60 * DAY, "billing")]))
    state, _ = run(stage, [(a, T0 + 61 * DAY)], state)  # e.g. offsets reset for a re-run
    _, [b] = run(stage, at_event_time([received("CMP-B", T0 + 62 * DAY)]), state)
    assert b.repeat_of is None and b.follow_up_of is None


def test_recording_the_same_complaint_twice_equals_recording_it_once():
    entry = PastComplaint("CMP-A", "network", T0)
    once = record_opened(History(), entry, T0, WINDOW)
    assert record_opened(once, entry, T0, WINDOW) == once
    closed = record_closed(once, "CMP-A", T0 + DAY, T0 + DAY, WINDOW)
    assert record_closed(closed, "CMP-A", T0 + DAY, T0 + DAY, WINDOW) == closed
    assert record_opened(closed, entry, T0 + 2 * DAY, WINDOW) == closed  # replayed after its closing
    again = record_reopened(closed, "CMP-A", T0 + 3 * DAY, T0 + 3 * DAY, WINDOW)
    assert record_reopened(again, "CMP-A", T0 + 3 * DAY, T0 + 3 * DAY, WINDOW) == again
    assert record_opened(again, entry, T0 + 4 * DAY, WINDOW) == again  # replayed after its reopen


# -- 2. a closing or reopen that comes before its complaint -------------------------------------

def test_a_closing_that_arrives_before_its_complaint_closes_it_when_it_arrives():
    stage = make_stage()
    state, _ = run(stage, at_event_time([resolved("CMP-A", T0 + DAY)]))
    assert state.complaints == () and state.early_closings == (EarlyClosing("CMP-A", T0 + DAY),)
    state, _ = run(stage, [(received("CMP-A", T0), T0 + 2 * DAY)], state)
    assert state.complaints == (PastComplaint("CMP-A", "network", T0, T0 + DAY, first_contact_at=T0),)
    assert state.early_closings == ()
    _, [later] = run(stage, at_event_time([received("CMP-B", T0 + 40 * DAY)]), state)
    assert later.repeat_of is None and later.follow_up_of is None  # closed 39 days before: not open forever


def test_a_reopen_that_arrives_before_its_complaint_reopens_it_when_it_arrives():
    stage = make_stage()
    state, _ = run(stage, [(reopened("CMP-A", T0 + 2 * DAY), T0 + 2 * DAY), (resolved("CMP-A", T0 + DAY), T0 + 3 * DAY)])
    assert state.complaints == () and state.early_reopens == (EarlyReopen("CMP-A", T0 + 2 * DAY),)
    state, _ = run(stage, [(received("CMP-A", T0), T0 + 3 * DAY)], state)
    assert state.complaints == (PastComplaint("CMP-A", "network", T0, T0 + DAY, T0 + 2 * DAY, T0),)
    assert state.early_closings == () and state.early_reopens == ()
    _, [later] = run(stage, at_event_time([received("CMP-B", T0 + 40 * DAY)]), state)
    assert later.follow_up_of == "CMP-A" and later.repeat_of is None  # open again: followed up


def test_early_closings_and_reopens_are_forgotten_like_the_rest_of_the_history():
    history = record_closed(History(), "CMP-LOST", T0, T0, WINDOW)
    history = record_reopened(history, "CMP-LOST", T0, T0, WINDOW)
    assert history.early_closings and history.early_reopens
    kept = record_opened(history, PastComplaint("CMP-B", "billing", T0 + MAX_OPEN_AGE), T0 + MAX_OPEN_AGE, WINDOW)
    assert [e.complaint_id for e in kept.early_closings] == [e.complaint_id for e in kept.early_reopens] == ["CMP-LOST"]
    later = T0 + MAX_OPEN_AGE + timedelta(seconds=1)
    gone = record_opened(history, PastComplaint("CMP-B", "billing", later), later, WINDOW)
    assert gone.early_closings == () and gone.early_reopens == ()


def test_early_closings_and_reopens_are_bounded():
    history = History()
    for i in range(80):
        history = record_closed(history, f"CMP-{i:03d}", T0 + i * timedelta(minutes=1), T0 + DAY, WINDOW)
        history = record_reopened(history, f"CMP-{i:03d}", T0 + i * timedelta(minutes=2), T0 + DAY, WINDOW)
    assert len(history.early_closings) == 50 and history.early_closings[0].complaint_id == "CMP-079"
    assert len(history.early_reopens) == 50 and history.early_reopens[0].complaint_id == "CMP-079"


# -- 4. event time, not processing time ---------------------------------------------------------

def test_whether_b_repeats_a_does_not_depend_on_how_late_the_closing_was_processed():
    a, closing, b = received("CMP-A", T0), resolved("CMP-A", T0 + DAY), received("CMP-B", T0 + 21 * DAY)
    for lag in (timedelta(0), 10 * DAY, 40 * DAY, 400 * DAY):  # a worker catching up after being down
        _, [_, repeat] = run(make_stage(), [(a, T0 + lag), (closing, T0 + DAY + lag), (b, T0 + 21 * DAY + lag)])
        assert repeat.repeat_of == "CMP-A", lag


def test_a_far_future_event_time_does_not_make_the_customer_history_forgotten():
    stage = make_stage()
    state, _ = run(stage, at_event_time([received("CMP-A", T0)]))
    bogus = resolved("CMP-X", datetime(2099, 1, 1, tzinfo=UTC))
    state, _ = run(stage, [(bogus, T0 + DAY)], state)
    assert state.as_of == T0 + DAY  # an event time is trusted no further than the processing time
    _, [b] = run(stage, at_event_time([received("CMP-B", T0 + 2 * DAY)]), state)
    assert b.follow_up_of == "CMP-A" and b.repeat_of is None


def test_an_open_complaint_too_old_to_be_kept_is_not_followed_up_either():
    history = History((PastComplaint("CMP-A", "network", T0),), as_of=T0)
    assert find_follow_up(history, "CMP-B", "network", T0 + MAX_OPEN_AGE)
    assert find_follow_up(history, "CMP-B", "network", T0 + MAX_OPEN_AGE + DAY) is None
    reopened_late = History((PastComplaint("CMP-A", "network", T0, T0 + DAY, T0 + 100 * DAY),), as_of=T0)
    assert find_follow_up(reopened_late, "CMP-B", "network", T0 + MAX_OPEN_AGE + DAY)  # open since its reopen


# -- 3. at the worker's edge: a naive resolved_at ------------------------------------------------

def test_a_naive_resolved_at_is_china_time_and_closes_the_complaint():
    stage = make_stage()
    state, _ = run(stage, at_event_time([received("CMP-A", T0)]))
    doc = json.loads(encode(resolved("CMP-A", T0 + DAY)))
    doc["data"]["resolved_at"] = "2026-01-02T08:00:00"  # no offset: China Standard Time
    event = decoder_for(stage.consumes)(json.dumps(doc).encode())
    state, _ = run(stage, [(event, T0 + DAY)], state)
    assert state.complaints[0].closed_at == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


# -- the stored state ---------------------------------------------------------------------------

def test_a_state_stored_in_the_former_shape_is_read_and_upgraded():
    stage = make_stage()
    codec = StateCodec(stage.state_type)
    legacy = json.dumps([{"complaint_id": "CMP-A", "category": "network", "opened_at": T0.isoformat(),
                          "closed_at": (T0 + DAY).isoformat()},
                         {"complaint_id": "CMP-B", "category": "billing", "opened_at": (T0 + 2 * DAY).isoformat(),
                          "closed_at": None}]).encode()
    loaded = codec.loads(legacy)
    assert as_history(loaded) == History((PastComplaint("CMP-B", "billing", T0 + 2 * DAY),
                                          PastComplaint("CMP-A", "network", T0, T0 + DAY)), (), T0 + 2 * DAY)
    state, [c] = run(stage, at_event_time([received("CMP-C", T0 + 3 * DAY, "billing")]), loaded)
    assert c.follow_up_of == "CMP-B" and c.repeat_of is None and isinstance(state, History)
    assert c.first_contact_at == T0 + 2 * DAY  # B's receipt: a state from before first contacts
    assert codec.loads(codec.dumps(state)) == state


def test_a_history_stored_before_reopens_and_first_contacts_is_read():
    stage = make_stage()
    codec = StateCodec(stage.state_type)
    stored = json.dumps({"complaints": [{"complaint_id": "CMP-A", "category": "network", "opened_at": T0.isoformat(),
                                         "closed_at": (T0 + DAY).isoformat()}],
                         "early_closings": [{"complaint_id": "CMP-Z", "closed_at": T0.isoformat()}],
                         "as_of": (T0 + DAY).isoformat()}).encode()
    loaded = codec.loads(stored)
    assert loaded == History((PastComplaint("CMP-A", "network", T0, T0 + DAY),), (EarlyClosing("CMP-Z", T0),),
                             T0 + DAY)
    state, [b] = run(stage, at_event_time([received("CMP-B", T0 + 3 * DAY)]), loaded)
    assert b.repeat_of == "CMP-A" and b.first_contact_at == T0
    state, _ = run(stage, at_event_time([reopened("CMP-A", T0 + 4 * DAY)]), state)
    _, [c] = run(stage, at_event_time([received("CMP-C", T0 + 5 * DAY)]), state)
    assert c.follow_up_of == "CMP-B"  # B, a case opened as a repeat, is the most recent open one


# -- properties ---------------------------------------------------------------------------------

#: The bounds within which the history promises order independence (see repeats' docstring): each
#: complaint closed at most CLOSE_WITHIN after its receipt (or SKEW before it), then up to REOPENS times
#: reopened at most REOPEN_WITHIN after its closing and closed again at most CLOSE_WITHIN after that, each
#: event applied at most MAX_LAG after it happened. The last event about a complaint is then at most
#: SKEW + CLOSE_WITHIN + REOPENS * (REOPEN_WITHIN + CLOSE_WITHIN) after its first, and that plus MAX_LAG
#: is within MAX_OPEN_AGE, so every event about a complaint is applied before the watermark is
#: MAX_OPEN_AGE past the complaint's first event.
CLOSE_WITHIN = timedelta(days=20)
REOPEN_WITHIN = timedelta(days=7)
REOPENS = 2
SKEW = timedelta(days=1)
MAX_LAG = timedelta(days=90)
assert SKEW + CLOSE_WITHIN + REOPENS * (REOPEN_WITHIN + CLOSE_WITHIN) + MAX_LAG <= MAX_OPEN_AGE
CATEGORIES = ("network", "billing", "broadband")


def hours(draw, low: timedelta, high: timedelta) -> timedelta:
    return timedelta(hours=draw(st.integers(low // timedelta(hours=1), high // timedelta(hours=1))))


@st.composite
def stories(draw):
    """One customer's complaints over up to 400 days: each received (or only its closing seen), closed
    or not, maybe reopened and closed again, as events in event-time order."""
    events = []
    for i in range(draw(st.integers(1, 8))):
        cid, category = f"CMP-{i:02d}", draw(st.sampled_from(CATEGORIES))
        opened = T0 + timedelta(hours=draw(st.integers(0, 400 * 24)))
        seen = draw(st.integers(0, 5)) > 0  # mostly received; sometimes only the closing is seen
        if seen:
            events.append(received(cid, opened, category))
        if draw(st.booleans()) or not seen:
            closed: datetime | None = opened + hours(draw, -SKEW, CLOSE_WITHIN)
            events.append(resolved(cid, closed, category))
            for n in range(1, 1 + draw(st.integers(0, REOPENS))):  # reopened (after its closing), maybe closed again
                if closed is None:
                    break
                again = closed + hours(draw, timedelta(hours=1), REOPEN_WITHIN)
                events.append(reopened(cid, again, n))
                closed = again + hours(draw, timedelta(hours=1), CLOSE_WITHIN) if draw(st.booleans()) else None
                if closed is not None:
                    events.append(resolved(cid, closed, category))
    return sorted(events, key=lambda e: e.time)


def lags(n_max: int, most: timedelta):
    return st.lists(st.integers(0, most // timedelta(hours=1)), min_size=n_max, max_size=n_max).map(
        lambda hours: [timedelta(hours=h) for h in hours])


@st.composite
def probes(draw, after: datetime):
    """Complaints that come after all of a story, possibly long after (so pruning is exercised)."""
    at, out = after, []
    for i in range(draw(st.integers(1, 3))):
        at += timedelta(hours=draw(st.integers(0, 250 * 24)))
        out.append(received(f"CMP-P{i}", at, draw(st.sampled_from(CATEGORIES))))
    return out


@st.composite
def perturbed(draw):
    """A story, the same events applied each up to MAX_LAG late (so a closing or reopen may be applied
    before its complaint, closings and reopens in any order, and the two streams interleave any way),
    some applied twice, and probes after it."""
    story = draw(stories())
    copies = [e for e in story for _ in range(draw(st.integers(1, 2)))]
    delays = draw(lags(len(copies), MAX_LAG))
    applied = sorted(zip(copies, delays), key=lambda ed: ed[0].time + ed[1])
    return story, [(e, e.time + d) for e, d in applied], draw(probes(story[-1].time))


@st.composite
def late_between_receipts(draw):
    """A story whose receipts are applied in event-time order, each after every event that happened
    before it; closings and reopens late (in any order among themselves, so a closing may be applied
    after a reopen that followed it), but never after a later receipt; some events applied again later
    (replays). Nothing is applied after an event more than MAX_LAG younger. Every complaint is then
    classified against the same facts as in event time."""
    story = draw(stories())
    receipts = [i for i, e in enumerate(story) if isinstance(e.data, ComplaintReceived)]

    def too_late(i: int) -> int:  # the first position an event at i may no longer be applied at
        return next((k for k in range(i + 1, len(story)) if story[k].time > story[i].time + MAX_LAG), len(story))

    keyed = []
    for i, e in enumerate(story):
        last = too_late(i)
        if isinstance(e.data, ComplaintReceived):
            keyed.append((float(i), e))
        else:
            last = min(last, next((j for j in receipts if j > i), len(story)))
            keyed.append((i + draw(st.floats(0.01, 0.99)) * (last - i), e))
        if draw(st.integers(0, 3)) == 0:  # a replay, later than the first copy
            first = keyed[-1][0]
            keyed.append((first + draw(st.floats(0.01, 0.99)) * (max(last, first + 0.01) - first), e))
    keyed.sort(key=lambda ke: ke[0])
    delays = draw(lags(len(keyed), MAX_LAG))
    return story, [(e, e.time + d) for (_k, e), d in zip(keyed, delays)], draw(probes(story[-1].time))


def facts(state: History | None) -> History | None:
    """The history without what was decided about each complaint (its link and first contact)."""
    if state is None:
        return None
    return replace(state, complaints=tuple(replace(h, first_contact_at=None, follow_up_of=None)
                                           for h in state.complaints))


@settings(max_examples=200, deadline=None)
@given(perturbed())
def test_the_facts_of_the_history_do_not_depend_on_interleaving_lateness_or_replays(case):
    story, steps, later = case
    stage = make_stage()
    expected_state, _ = run(stage, at_event_time(story))
    state, _ = run(stage, steps)
    assert facts(state) == facts(expected_state)
    expected_after, _ = run(stage, at_event_time(later), expected_state)
    after, _ = run(stage, at_event_time(later), state)
    assert facts(after) == facts(expected_after)


@settings(max_examples=200, deadline=None)
@given(late_between_receipts())
def test_closings_and_reopens_commute_and_later_links_do_not_depend_on_their_order_or_lateness(case):
    story, steps, later = case
    stage = make_stage()
    expected_state, expected_out = run(stage, at_event_time(story))
    state, out = run(stage, steps)
    assert state == expected_state
    first = {c.complaint_id: c for c in reversed(out)}  # each complaint's first classification
    assert [first[c.complaint_id] for c in expected_out] == expected_out
    expected_after, expected_probes = run(stage, at_event_time(later), expected_state)
    after, got_probes = run(stage, at_event_time(later), state)
    assert got_probes == expected_probes and after == expected_after


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_applying_any_event_twice_equals_applying_it_once(data):
    _story, steps, later = data.draw(perturbed())
    stage = make_stage()
    state = None
    for event, now in [*steps, *at_event_time(later)]:
        once, out_once = stage.apply(state, event, now)
        again_now = now + timedelta(hours=data.draw(st.integers(0, 1000)))
        twice, out_twice = stage.apply(once, event, again_now)
        assert twice == once
        assert [o.event.data for o in out_twice] == [o.event.data for o in out_once]
        state = once


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_decisions_use_event_time_whatever_the_processing_time(data):
    story = data.draw(stories())
    events = [*story, *data.draw(probes(story[-1].time))]
    delays = data.draw(lags(len(events), timedelta(days=500)))
    stage = make_stage()
    expected = run(stage, at_event_time(events))
    assert run(stage, [(e, e.time + d) for e, d in zip(events, delays)]) == expected


@settings(max_examples=200, deadline=None)
@given(perturbed())
def test_every_state_reached_round_trips_through_the_table_codec(case):
    _story, steps, later = case
    stage = make_stage()
    codec = StateCodec(stage.state_type)
    state = None
    for event, now in [*steps, *at_event_time(later)]:
        state, _ = stage.apply(state, event, now)
        if state is not None:
            assert codec.loads(codec.dumps(state)) == state
            state = codec.loads(codec.dumps(state))  # go on from the decoded state, as the worker does
