"""What the lifecycle stage tells the rest of the world: outcomes (ComplaintResolved) once per step with
ids a replay reproduces, their contents, and the messages to customers (quiet hours, opt-out, personal
data kept to the notifications topic)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from complaint_stream.domain.lifecycle.messages import CHINA
from complaint_stream.domain.lifecycle.stage import LifecycleStage
from complaint_stream.domain.stage import Output, Refused, run_in_event_time
from complaint_stream.schemas import (
    CaseChange,
    CaseRecord,
    CaseUpdated,
    ClassificationCorrected,
    CommunicationRequested,
    ComplaintResolved,
    Envelope,
    RegulatorAppeal,
    Resolution,
    TicketStatus,
)
from complaint_stream.topics import CASE_LINKS, CASES, CORRECTIONS, NOTIFICATIONS, RESOLVED
from tests.support.cases import (
    T0,
    assigned,
    callback,
    cid,
    note,
    opened,
    phone,
    reclassify,
    resolve,
    stage,
    status,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REGULATOR = RegulatorAppeal(case_no="GD-2026-1130-0001", reply_by=T0 + timedelta(days=5))


@dataclass
class Run:
    outputs: list[Output]
    state: dict[str, CaseRecord]
    refused: list[tuple[Envelope[Any], Refused]]

    def on(self, topic, n: int | None = None) -> list[Envelope[Any]]:
        return [o.event for o in self.outputs if o.topic is topic and (n is None or o.key == cid(n))]

    def messages(self, n: int) -> list[CommunicationRequested]:
        return [e.data for e in self.on(NOTIFICATIONS, n)]

    def outcomes(self, n: int) -> list[ComplaintResolved]:
        return [e.data for e in self.on(RESOLVED, n) if isinstance(e.data, ComplaintResolved)]


def drive(events: list[Envelope[Any]], *, until=None, st: LifecycleStage | None = None) -> Run:
    state: dict[str, CaseRecord] = {}
    refused: list[tuple[Envelope[Any], Refused]] = []
    outputs = list(run_in_event_time(st or stage(), events, until=until, state=state,
                                     on_refused=lambda e, r: refused.append((e, r)), feedback=[CASE_LINKS]))
    return Run(outputs, state, refused)


def story() -> list[Envelope[Any]]:
    """Five complaints: one reassigned, refunded, reopened by a dissatisfied customer and resolved again;
    one from the regulator; a follow-up; one whose first update came before its receipt; one left open."""
    return [
        *opened(1),
        assigned(1, T0 + 2 * MIN, agent="agent-A"),
        assigned(1, T0 + 30 * MIN, team="billing-sz", agent="agent-B"),
        status(1, "inProgress", T0 + 35 * MIN, actor="agent-B"),
        resolve(1, T0 + 3 * HOUR, actor="agent-B", code="refund", refund_fen=1500),
        callback(1, T0 + 6 * HOUR, answer="不满意"),
        resolve(1, T0 + 9 * HOUR, actor="agent-A", code="compensation"),
        callback(1, T0 + 12 * HOUR, answer="满意"),
        *opened(2, channel="regulator", regulator=REGULATOR),
        status(2, "inProgress", T0 + 5 * MIN),
        resolve(2, T0 + 2 * HOUR),
        *opened(3, T0 + 10 * MIN, customer=1, follow_up_of=cid(1)),
        status(4, "inProgress", T0 - 5 * MIN, actor="agent-4"),
        *opened(4),
        *opened(5),
    ]


UNTIL = T0 + timedelta(days=2)


def test_replaying_every_event_twice_changes_nothing():
    events = story()
    once = drive(events, until=UNTIL)
    assert once.refused == []
    doubled = events + events
    random.Random(20261130).shuffle(doubled)  # run_in_event_time orders by time: shuffled within equal times
    twice = drive(doubled, until=UNTIL)
    assert twice.refused == []
    assert Counter(o.event.id for o in twice.outputs) == Counter(o.event.id for o in once.outputs)
    for n in (1, 2, 4, 5):
        assert [m.template_id for m in twice.messages(n)].count("acknowledgement") + \
            [m.template_id for m in twice.messages(n)].count("regulator_ack") == 1
    assert twice.messages(3) == []
    assert [o.sequence for o in twice.outcomes(1) if o.status is TicketStatus.RESOLVED] == [1, 2]
    assert [o.sequence for o in twice.outcomes(2) if o.status is TicketStatus.RESOLVED] == [1]
    resolved_ids = [e.id for e in twice.on(RESOLVED)
                    if isinstance(e.data, ComplaintResolved) and e.data.status is TicketStatus.RESOLVED]
    assert len(resolved_ids) == len(set(resolved_ids)) == 3
    assert {k: v.model_dump() for k, v in twice.state.items()} == {k: v.model_dump() for k, v in once.state.items()}


def test_output_ids_are_the_same_in_two_independent_runs():
    events = story()
    first, second = drive(events, until=UNTIL), drive(events, until=UNTIL)
    assert [o.event.id for o in first.outputs] == [o.event.id for o in second.outputs]
    assert len({o.event.id for o in first.outputs}) == len(first.outputs)
    # rebuilt inputs (new ids for every update): the case's own events are still derived from complaint and step
    rebuilt = drive(story(), until=UNTIL)
    topics = (CASES, RESOLVED, NOTIFICATIONS, CASE_LINKS)
    assert [e.id for t in topics for e in rebuilt.on(t)] == [e.id for t in topics for e in first.on(t)]


def test_the_resolution_carries_what_downstream_systems_need():
    run = drive(story(), until=UNTIL)
    first, second = (o for o in run.outcomes(1) if o.status is TicketStatus.RESOLVED)
    assert first.category.value == "network" and first.resolution is not None
    assert first.resolution.code == "refund" and first.resolution.root_cause == "base_station_fault"
    assert first.resolution.refund_fen == 1500 and isinstance(first.resolution.refund_fen, int)
    assert first.owner == "agent-A"  # 首问负责人: the first to take it, not the agent it was reassigned to
    assert first.handlers == ("agent-A", "agent-B") and first.team == "billing-sz"
    assert first.received_at == T0 and first.resolved_at == T0 + 3 * HOUR
    assert first.first_response_at == T0 + 35 * MIN
    assert first.handling_seconds == 3 * 3600
    assert first.regulator is None and first.sequence == 1 and first.follow_ups == 1
    assert second.owner == "agent-A" and second.resolution.code == "compensation" and second.reopen_count == 1
    assert second.handling_seconds == 9 * 3600
    closed = run.outcomes(1)[-1]
    assert closed.status is TicketStatus.CLOSED and closed.owner == "agent-A" and closed.satisfaction == "satisfied"
    refund_message = next(m for m in run.messages(1) if m.template_id == "resolution_refund")
    assert refund_message.parameters["amount_yuan"] == "15.00"


def test_a_regulator_complaint_carries_the_regulators_case_number():
    run = drive(story(), until=UNTIL)
    (resolved,) = [o for o in run.outcomes(2) if o.status is TicketStatus.RESOLVED]
    assert resolved.regulator == REGULATOR and resolved.regulator.case_no == "GD-2026-1130-0001"
    assert resolved.channel.value == "regulator"
    ack = run.messages(2)[0]
    assert ack.template_id == "regulator_ack" and "GD-2026-1130-0001" in ack.text
    assert all(e.data.regulator_reply_by == REGULATOR.reply_by for e in run.on(CASES, 2))


# -- quiet hours -----------------------------------------------------------------------------------------

LATE = datetime(2026, 11, 30, 22, 30, tzinfo=CHINA).astimezone(UTC)
MORNING = datetime(2026, 12, 1, 8, 0, tzinfo=CHINA).astimezone(UTC)


def test_an_acknowledgement_at_half_past_ten_at_night_waits_for_eight_in_the_morning():
    st = stage()
    run = drive(opened(1, LATE), until=LATE + HOUR, st=st)
    assert run.on(NOTIFICATIONS) == []
    rec = run.state[cid(1)]
    assert [h.event.template_id for h in rec.held] == ["acknowledgement"]
    rec, early = st.due(rec, MORNING - MIN)
    assert not any(o.topic is NOTIFICATIONS for o in early)
    after, out = st.due(rec, MORNING)
    sent = [o.event for o in out if o.topic is NOTIFICATIONS]
    assert len(sent) == 1 and sent[0].time == MORNING
    assert sent[0].data.template_id == "acknowledgement" and sent[0].data.send_after == MORNING
    assert sent[0].data.requested_at == LATE
    assert after.held == ()
    _, again = st.due(after, MORNING + MIN)
    assert not any(o.topic is NOTIFICATIONS for o in again)


def test_the_timer_sends_the_held_acknowledgement_at_eight():
    run = drive(opened(1, LATE), until=MORNING + HOUR)
    sent = run.on(NOTIFICATIONS, 1)
    assert [(e.data.template_id, e.time, e.data.send_after) for e in sent] == [
        ("acknowledgement", MORNING, MORNING)]


def test_a_p1_acknowledgement_goes_at_once_in_quiet_hours():
    run = drive(opened(1, LATE, priority="P1"))
    sent = run.on(NOTIFICATIONS, 1)
    assert len(sent) == 1 and sent[0].data.send_after == sent[0].time <= LATE + MIN
    assert run.state[cid(1)].held == ()


# -- opt-out and personal data ---------------------------------------------------------------------------


def test_a_customer_who_opted_out_gets_the_reply_owed_but_no_survey_or_progress_message():
    events = [*opened(1, opt_out=True), status(1, "inProgress", T0 + 5 * MIN), resolve(1, T0 + HOUR),
              *opened(2, opt_out=True),
              *opened(3), status(3, "inProgress", T0 + 5 * MIN), resolve(3, T0 + HOUR),  # the same, not opted out
              *opened(4)]
    run = drive(events, until=T0 + timedelta(hours=50))
    assert [m.template_id for m in run.messages(1)] == ["acknowledgement", "resolution"]
    assert [m.template_id for m in run.messages(2)] == ["acknowledgement"]
    assert [m.template_id for m in run.messages(3)] == ["acknowledgement", "resolution", "survey"]
    assert [m.template_id for m in run.messages(4)] == ["acknowledgement", "progress"]
    assert any(u.change is CaseChange.CALLBACK_DUE for u in (e.data for e in run.on(CASES, 1)))


def test_the_phone_number_goes_to_the_notifications_topic_and_never_into_a_case_update():
    number = phone(1)
    digits = number.removeprefix("+86")
    events = [*opened(1, text=f"我的号码{digits}一直没信号"), assigned(1, T0 + MIN),
              status(1, "inProgress", T0 + 5 * MIN), resolve(1, T0 + HOUR),
              *opened(2, T0 + 10 * MIN, customer=1, follow_up_of=cid(1)), callback(1, T0 + 4 * HOUR)]
    run = drive(events, until=T0 + 5 * HOUR)
    messages = run.messages(1)
    assert messages and all(m.recipient == number for m in messages)
    updates = run.on(CASES)
    assert len(updates) >= 6 and all(isinstance(e.data, CaseUpdated) for e in updates)
    for e in updates:
        text = e.model_dump_json()
        assert digits not in text and number not in text


def test_phone_numbers_in_notes_and_the_resolution_note_are_masked_on_the_resolved_event():
    digits = phone(1).removeprefix("+86")
    fixed = status(1, "resolved", T0 + HOUR, resolution=Resolution(code="technical_fix", note=f"已回拨{digits}，恢复正常"))
    events = [*opened(1), assigned(1, T0 + MIN), status(1, "inProgress", T0 + 5 * MIN),
              note(1, T0 + 10 * MIN, text=f"客户要求改用{digits}联系"), fixed]
    run = drive(events, until=T0 + 2 * HOUR)
    [outcome] = run.outcomes(1)
    masked = f"{digits[:3]}****{digits[-4:]}"
    assert outcome.resolution is not None and outcome.resolution.note == f"已回拨{masked}，恢复正常"
    assert [n.text for n in outcome.notes] == [f"客户要求改用{masked}联系"]
    assert digits not in run.on(RESOLVED, 1)[0].model_dump_json()
    record = run.state[cid(1)]  # the case record keeps what was written
    assert record.resolution is not None and digits in record.resolution.note and digits in record.notes[0].text


def test_a_return_by_a_team_is_recorded_on_the_case():
    from complaint_stream.schemas import ReturnComplaint
    from tests.support.cases import _wrap

    back = ReturnComplaint(complaint_id=cid(1), team="net-sz", reason_code="not_our_remit", requested_by="lead-3",
                           reason="a billing question")
    run = drive([*opened(1), assigned(1, T0 + MIN), _wrap(back, T0 + 5 * MIN, "/teams")], until=T0 + HOUR)
    [update] = [e.data for e in run.on(CASES, 1) if e.data.change is CaseChange.RETURNED]
    assert (update.actor, update.reason_code) == ("lead-3", "not_our_remit")
    entry = next(t for t in run.state[cid(1)].timeline if t.change is CaseChange.RETURNED)
    assert entry.detail == "returned by net-sz: a billing question"
    assert not run.refused


def test_a_reclassification_sends_the_phone_masked_text_to_the_corrections_topic():
    digits = "13912345678"
    run = drive([*opened(1, text=f"我的号码{digits}一直没信号"), reclassify(1, T0 + 5 * MIN, to="billing")])
    assert run.refused == []
    (correction,) = [e.data for e in run.on(CORRECTIONS, 1)]
    assert isinstance(correction, ClassificationCorrected)
    assert digits not in correction.text and correction.text.startswith("我的号码") and "一直没信号" in correction.text
    assert (correction.previous_category.value, correction.category.value) == ("network", "billing")
    assert correction.corrected_by == "sup-1"
    assert run.state[cid(1)].category.value == "billing"
    assert [e.data.change for e in run.on(CASES, 1)][-1] is CaseChange.RECLASSIFIED


def test_an_ended_case_leaves_memory_for_the_archive_after_the_retention_period():
    from complaint_stream.schemas import CaseArchived
    from complaint_stream.topics import CASE_ARCHIVE
    from tests.support.cases import callback, opened, resolve, status

    t = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    events = [*opened(1, t), status(1, "inProgress", t + timedelta(minutes=5)), resolve(1, t + timedelta(hours=1)),
              callback(1, t + timedelta(hours=4))]
    kept = drive(events, until=t + timedelta(days=29))
    assert kept.state[cid(1)].status.value == "closed"
    assert not [o for o in kept.outputs if o.topic is CASE_ARCHIVE]
    gone = drive(events, until=t + timedelta(days=31))
    assert cid(1) not in gone.state
    archived = [o.event.data for o in gone.outputs if o.topic is CASE_ARCHIVE]
    assert len(archived) == 1 and isinstance(archived[0], CaseArchived)
    assert archived[0].record == kept.state[cid(1)]
