"""Follow-up (催单) vs new complaint vs repeat (重复投诉): a contact the classifier found to follow up a
case, and updates about a complaint that has not arrived yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from complaint_stream.domain.lifecycle.stage import LifecycleStage
from complaint_stream.domain.stage import Output, Refused, run_in_event_time
from complaint_stream.schemas import (
    CaseChange,
    CaseRecord,
    CaseUpdated,
    CommunicationRequested,
    DeadLetter,
    DeadLetterKind,
    Envelope,
    Priority,
    TicketStatus,
)
from complaint_stream.topics import CASE_LINKS, CASES, DEAD_LETTERS, NOTIFICATIONS, STATUS
from tests.support.cases import T0, assigned, cid, classified, note, opened, received, resolve, stage, status

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass
class Run:
    outputs: list[Output]
    state: dict[str, CaseRecord]
    refused: list[tuple[Envelope[Any], Refused]]

    def updates(self, n: int) -> list[CaseUpdated]:
        return [o.event.data for o in self.outputs if o.topic is CASES and o.key == cid(n)]

    def messages(self, n: int) -> list[CommunicationRequested]:
        return [o.event.data for o in self.outputs if o.topic is NOTIFICATIONS and o.key == cid(n)]


def drive(events: list[Envelope[Any]], *, until=None, st: LifecycleStage | None = None) -> Run:
    state: dict[str, CaseRecord] = {}
    refused: list[tuple[Envelope[Any], Refused]] = []
    outputs = list(run_in_event_time(st or stage(), events, until=until, state=state,
                                     on_refused=lambda e, r: refused.append((e, r)), feedback=[CASE_LINKS]))
    return Run(outputs, state, refused)


def resolved_case(n: int = 1) -> list[Envelope[Any]]:
    return [*opened(n), status(n, "inProgress", T0 + 5 * MIN), resolve(n, T0 + HOUR)]


def test_a_follow_up_of_an_open_case_of_the_same_customer_is_attached_to_it():
    run = drive([*opened(1), *opened(2, T0 + 10 * MIN, customer=1, follow_up_of=cid(1))])
    assert run.refused == []
    case, contact = run.state[cid(1)], run.state[cid(2)]
    assert contact.kind == "follow_up" and contact.attached_to == cid(1) and contact.status is None
    assert case.follow_ups == (cid(2),)
    entries = [e for e in case.timeline if e.change is CaseChange.FOLLOW_UP]
    assert len(entries) == 1 and entries[0].from_complaint == cid(2) and entries[0].at == T0 + 10 * MIN
    follow_ups = [u for u in run.updates(1) if u.change is CaseChange.FOLLOW_UP]
    assert len(follow_ups) == 1
    assert follow_ups[0].related == cid(2) and follow_ups[0].follow_ups == 1
    assert run.updates(2) == []  # no second case
    assert run.messages(2) == []  # no acknowledgement for the contact
    assert [m.template_id for m in run.messages(1)] == ["acknowledgement"]


def test_a_follow_up_of_a_resolved_case_opens_its_own_case_linked_as_a_repeat():
    run = drive([*resolved_case(1), *opened(2, T0 + 2 * HOUR, customer=1, follow_up_of=cid(1))])
    assert run.refused == []
    contact, case = run.state[cid(2)], run.state[cid(1)]
    assert contact.kind == "case" and contact.status is TicketStatus.ACKNOWLEDGED
    assert contact.repeat_of == cid(1) and contact.attached_to is None
    assert [u.change for u in run.updates(2)] == [CaseChange.OPENED] and run.updates(2)[0].related == cid(1)
    assert any(e.change is CaseChange.REPEAT for e in contact.timeline)
    assert [m.template_id for m in run.messages(2)] == ["acknowledgement"]
    assert case.follow_ups == () and case.status is TicketStatus.RESOLVED
    assert not any(e.change is CaseChange.FOLLOW_UP for e in case.timeline)


@pytest.mark.parametrize("ended", ["cancelled", "rejected"])
def test_a_follow_up_of_a_case_that_ended_unresolved_opens_a_case_that_is_not_a_repeat(ended):
    run = drive([*opened(1), status(1, ended, T0 + 5 * MIN),
                 *opened(2, T0 + 2 * HOUR, customer=1, follow_up_of=cid(1))])
    contact = run.state[cid(2)]
    assert run.state[cid(1)].resolved_at is None  # never resolved
    assert contact.kind == "case" and [m.template_id for m in run.messages(2)] == ["acknowledgement"]
    assert contact.repeat_of is None  # the docstring: "linked as a repeat when the other was resolved"


def test_a_follow_up_of_another_customers_case_opens_its_own_case_not_linked():
    run = drive([*opened(1), *opened(2, T0 + 10 * MIN, customer=9, follow_up_of=cid(1))])
    contact, case = run.state[cid(2)], run.state[cid(1)]
    assert contact.kind == "case" and contact.repeat_of is None and contact.attached_to is None
    assert [u.change for u in run.updates(2)] == [CaseChange.OPENED] and run.updates(2)[0].related is None
    assert [m.template_id for m in run.messages(2)] == ["acknowledgement"]
    assert case.follow_ups == () and [u.change for u in run.updates(1)] == [CaseChange.OPENED]


def test_a_follow_up_of_an_unknown_complaint_opens_its_own_case_after_the_grace_period():
    st = stage()
    grace = timedelta(minutes=st.policy.file.unknown_complaint_grace_minutes)
    contact = opened(2, T0, follow_up_of=cid(7))
    before = drive(contact, until=T0 + grace - MIN, st=st)
    assert before.state[cid(2)].kind == "follow_up" and before.updates(2) == [] and before.messages(2) == []
    after = drive(opened(2, T0, follow_up_of=cid(7)), until=T0 + grace + 2 * MIN, st=stage())
    rec = after.state[cid(2)]
    assert rec.kind == "case" and rec.status is TicketStatus.ACKNOWLEDGED and rec.repeat_of is None
    assert [u.change for u in after.updates(2)] == [CaseChange.OPENED]
    assert [m.template_id for m in after.messages(2)] == ["acknowledgement"]
    assert cid(7) not in after.state  # nothing about the unknown complaint is kept
    refusals = [o.event.data for o in after.outputs if o.topic is CASE_LINKS and o.key == cid(2)]
    assert [(r.kind, r.rule) for r in refusals] == [("follow_up_refused", "unknown_complaint")]


def test_the_priority_rises_every_n_follow_ups_but_not_above_the_ceiling():
    st = stage()
    every = st.policy.file.follow_up_raise_every
    ceiling = st.policy.file.follow_up_raise_to_at_most
    assert every == 2 and ceiling is Priority.P2
    events = [*opened(1, priority="P4")]
    for i in range(2, 10):  # eight follow-ups from the same customer
        events += opened(i, T0 + i * MIN, customer=1, follow_up_of=cid(1))
    run = drive(events, st=st)
    seen = [(u.follow_ups, u.priority) for u in run.updates(1) if u.change is CaseChange.FOLLOW_UP]
    assert seen == [(1, Priority.P4), (2, Priority.P4), (3, Priority.P3), (4, Priority.P3),
                    (5, Priority.P2), (6, Priority.P2), (7, Priority.P2), (8, Priority.P2)]
    raised = [u for u in run.updates(1) if u.change is CaseChange.PRIORITY]
    assert [(u.follow_ups, u.priority, u.reason_code) for u in raised] == [
        (2, Priority.P3, "follow_ups"), (4, Priority.P2, "follow_ups")]
    assert run.state[cid(1)].priority is Priority.P2


def test_follow_ups_never_lower_a_priority_above_the_ceiling():
    events = [*opened(1, priority="P1")]
    for i in range(2, 6):
        events += opened(i, T0 + i * MIN, customer=1, follow_up_of=cid(1))
    run = drive(events)
    assert run.state[cid(1)].priority is Priority.P1 and len(run.state[cid(1)].follow_ups) == 4
    assert not any(u.change is CaseChange.PRIORITY for u in run.updates(1))


def test_the_raise_follows_the_policy():
    st = stage(follow_up_raise_every=1, follow_up_raise_to_at_most=Priority.P3)
    events = [*opened(1, priority="P4")]
    for i in range(2, 5):
        events += opened(i, T0 + i * MIN, customer=1, follow_up_of=cid(1))
    run = drive(events, st=st)
    assert [u.priority for u in run.updates(1) if u.change is CaseChange.PRIORITY] == [Priority.P3]
    assert run.state[cid(1)].priority is Priority.P3


def test_a_follow_up_of_a_contact_that_was_itself_attached_ends_on_the_open_case():
    run = drive([*opened(1), *opened(2, T0 + MIN, customer=1, follow_up_of=cid(1)),
                 *opened(3, T0 + 2 * MIN, customer=1, follow_up_of=cid(2))])
    assert run.refused == []
    case = run.state[cid(1)]
    assert case.follow_ups == (cid(2), cid(3))
    assert [e.from_complaint for e in case.timeline if e.change is CaseChange.FOLLOW_UP] == [cid(2), cid(3)]
    assert run.state[cid(3)].kind == "follow_up" and run.state[cid(2)].follow_ups == ()
    assert run.updates(2) == run.updates(3) == [] and run.messages(2) == run.messages(3) == []


def apply_all(st: LifecycleStage, events: list[Envelope[Any]], times: list) -> tuple[CaseRecord, list[Output]]:
    rec: CaseRecord | None = None
    outputs: list[Output] = []
    for event, now in zip(events, times, strict=True):
        rec, out = st.apply(rec, event, now)
        outputs.extend(out)
    assert rec is not None
    return rec, outputs


def both_orders(n: int, **kw: Any) -> tuple[tuple[CaseRecord, list[Output]], tuple[CaseRecord, list[Output]]]:
    receipt, classification = opened(n, **kw)
    times = [T0 + 5 * MIN, T0 + 6 * MIN]  # the same arrival times, only the order differs
    return (apply_all(stage(), [receipt, classification], times),
            apply_all(stage(), [classification, receipt], times))


def test_receipt_and_classification_in_either_order_open_the_same_case():
    (first, out_first), (second, out_second) = both_orders(1)
    assert first.kind == second.kind == "case"
    # everything but the timeline's order and the order of the applied ids (a set) is the same
    assert first.model_copy(update={"timeline": (), "applied": ()}) == \
        second.model_copy(update={"timeline": (), "applied": ()})
    assert set(first.applied) == set(second.applied) and len(first.applied) == 2
    assert sorted(first.timeline, key=lambda e: e.change) == sorted(second.timeline, key=lambda e: e.change)
    assert [(o.topic, o.key, o.event) for o in out_first] == [(o.topic, o.key, o.event) for o in out_second]


def test_a_follow_up_contact_is_attached_the_same_in_either_order():
    (first, out_first), (second, out_second) = both_orders(2, customer=1, follow_up_of=cid(1))
    assert first.kind == second.kind == "follow_up" and first.attached_to == second.attached_to == cid(1)
    assert [(o.topic, o.event.data) for o in out_first] == [(o.topic, o.event.data) for o in out_second]


def test_receipt_and_classification_in_either_order_give_the_same_timeline():
    (first, _), (second, _) = both_orders(1)
    assert first.timeline == second.timeline


def test_updates_before_the_receipt_are_parked_and_applied_when_the_case_opens():
    early = [status(1, "inProgress", T0 - 10 * MIN, actor="agent-3"), note(1, T0 - 5 * MIN),
             assigned(1, T0 - 4 * MIN, agent="agent-3")]
    run = drive([*early, *opened(1, T0)])
    assert run.refused == [] and not any(o.topic is DEAD_LETTERS for o in run.outputs)
    rec = run.state[cid(1)]
    assert rec.kind == "case" and rec.status is TicketStatus.IN_PROGRESS and rec.parked == ()
    assert rec.owner == "agent-3" and len(rec.notes) == 1 and rec.team == "network-sz"
    assert [u.change for u in run.updates(1)] == [CaseChange.OPENED, CaseChange.STATUS, CaseChange.NOTE,
                                                  CaseChange.ASSIGNED]
    assert all(e.id in rec.applied for e in early)


def test_updates_about_a_complaint_never_received_are_dead_lettered_after_the_grace_period():
    st = stage()
    grace = timedelta(minutes=st.policy.file.unknown_complaint_grace_minutes)
    early = status(1, "inProgress", T0, actor="agent-3")
    waiting = drive([early], until=T0 + grace - MIN, st=st)
    assert not any(o.topic is DEAD_LETTERS for o in waiting.outputs)
    assert [p.event_id for p in waiting.state[cid(1)].parked] == [early.id]
    run = drive([early], until=T0 + grace + 2 * MIN, st=stage())
    assert run.refused == []
    letters = [o for o in run.outputs if o.topic is DEAD_LETTERS]
    assert len(letters) == 1 and letters[0].key == cid(1)
    letter = letters[0].event.data
    assert isinstance(letter, DeadLetter)
    assert letter.error.type is DeadLetterKind.REFUSED
    assert letter.error.message.startswith("unknown_complaint")
    assert letter.original_value == early.model_dump_json().encode()
    assert letter.source_topic == STATUS.name and letter.stage == "lifecycle"
    assert cid(1) not in run.state  # only the parked update was kept, and it is gone


def test_a_receipt_after_the_grace_opens_the_case_without_the_dead_lettered_update():
    st = stage()
    grace = timedelta(minutes=st.policy.file.unknown_complaint_grace_minutes)
    run = drive([status(1, "inProgress", T0), received(1, T0 + grace + 5 * MIN),
                 classified(1, T0 + grace + 5 * MIN)], st=st)
    assert len([o for o in run.outputs if o.topic is DEAD_LETTERS]) == 1
    rec = run.state[cid(1)]
    assert rec.kind == "case" and rec.status is TicketStatus.ACKNOWLEDGED
    assert [u.change for u in run.updates(1)] == [CaseChange.OPENED]


def test_a_follow_up_of_a_merged_case_goes_to_the_case_it_was_merged_into():
    from tests.support.cases import merge

    run = drive([*opened(1), *opened(3, T0 + MIN, customer=1), merge(3, 1, T0 + 10 * MIN),
                 *opened(2, T0 + HOUR, customer=1, follow_up_of=cid(1))])
    survivor, merged = run.state[cid(3)], run.state[cid(1)]
    assert merged.status is TicketStatus.CANCELLED and merged.follow_ups == ()
    assert survivor.follow_ups == (cid(2),) and run.state[cid(2)].kind == "follow_up"
    assert [m.template_id for m in run.messages(2)] == []


def test_updates_parked_for_a_contact_that_turns_out_a_follow_up_are_refused_as_not_a_case():
    late = status(2, "inProgress", T0 + 5 * MIN)
    run = drive([*opened(1), late, *opened(2, T0 + 10 * MIN, customer=1, follow_up_of=cid(1))],
                until=T0 + 3 * HOUR)
    letters = [o.event.data for o in run.outputs if o.topic is DEAD_LETTERS]
    assert len(letters) == 1 and letters[0].error.message.startswith("not_a_case")
    assert letters[0].original_value == late.model_dump_json().encode()
    assert run.state[cid(2)].parked == ()


def test_nothing_is_merged_into_a_resolved_case():
    from tests.support.cases import merge

    run = drive([*resolved_case(1), *opened(2, T0 + MIN), merge(1, 2, T0 + 2 * HOUR)])
    assert [r.rule for _e, r in run.refused] == ["already_resolved"]
    assert run.state[cid(2)].status is TicketStatus.ACKNOWLEDGED and run.state[cid(1)].merged_from == ()


def test_updates_waiting_for_an_unknown_complaint_are_bounded_in_bytes_so_the_record_can_always_be_stored():
    from complaint_stream.domain.lifecycle.stage import MAX_PARKED_BYTES

    big = [note(9, T0 + i * MIN, text="长" * 1900) for i in range(60)]
    run = drive(big)
    kept = run.state[cid(9)].parked
    assert sum(len(p.raw.encode()) for p in kept) <= MAX_PARKED_BYTES
    assert run.refused and all(r.rule == "unknown_complaint" for _e, r in run.refused)
    assert len(kept) + len(run.refused) == 60


def test_the_same_follow_up_link_again_under_another_id_is_attached_once():
    run = drive([*opened(1), *opened(2, T0 + 10 * MIN, customer=1, follow_up_of=cid(1))])
    link = next(o.event for o in run.outputs if o.topic is CASE_LINKS and o.key == cid(1))
    again = link.model_copy(update={"id": "another-id-for-the-same-link"})
    st = stage()
    state, outputs = st.apply(run.state[cid(1)], again, T0 + 20 * MIN)
    assert state is not None and state.follow_ups == (cid(2),)
    assert [o for o in outputs if o.topic is CASES] == []
