"""Merging cases, reopening a resolution (inside and after the reopen window), and the callback after
resolution (回访): retries, satisfaction, the automatic close."""

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
    ChannelSubmission,
    ComplaintReopened,
    ComplaintResolved,
    Envelope,
    TicketStatus,
)
from complaint_stream.topics import CASE_LINKS, CASES, RESOLVED, SUBMISSIONS
from tests.support.cases import (
    T0,
    callback,
    cid,
    merge,
    note,
    opened,
    reopen,
    resolve,
    stage,
    status,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
RESOLVED_AT = T0 + HOUR


@dataclass
class Run:
    outputs: list[Output]
    state: dict[str, CaseRecord]
    refused: list[tuple[Envelope[Any], Refused]]

    def updates(self, n: int) -> list[CaseUpdated]:
        return [o.event.data for o in self.outputs if o.topic is CASES and o.key == cid(n)]

    def on(self, topic, n: int) -> list[Envelope[Any]]:
        return [o.event for o in self.outputs if o.topic is topic and o.key == cid(n)]

    def outcomes(self, n: int) -> list[ComplaintResolved]:
        return [e.data for e in self.on(RESOLVED, n) if isinstance(e.data, ComplaintResolved)]

    @property
    def rules(self) -> list[str]:
        return [r.rule for _e, r in self.refused]


def drive(events: list[Envelope[Any]], *, until=None, st: LifecycleStage | None = None) -> Run:
    state: dict[str, CaseRecord] = {}
    refused: list[tuple[Envelope[Any], Refused]] = []
    outputs = list(run_in_event_time(st or stage(), events, until=until, state=state,
                                     on_refused=lambda e, r: refused.append((e, r)), feedback=[CASE_LINKS]))
    return Run(outputs, state, refused)


def resolved_case(n: int = 1, **kw: Any) -> list[Envelope[Any]]:
    return [*opened(n, **kw), status(n, "inProgress", T0 + 5 * MIN, actor="agent-7"),
            resolve(n, RESOLVED_AT, actor="agent-8")]


# -- merge ---------------------------------------------------------------------------------------------


def test_a_merged_case_ends_cancelled_and_its_timeline_moves_to_the_survivor():
    run = drive([*opened(1), *opened(2, T0 + MIN), note(2, T0 + 3 * MIN, text="客户补充：楼道也没信号"),
                 merge(1, 2, T0 + 30 * MIN)])
    assert run.refused == []
    survivor, merged = run.state[cid(1)], run.state[cid(2)]
    assert merged.status is TicketStatus.CANCELLED and merged.merged_into == cid(1)
    assert survivor.status is TicketStatus.ACKNOWLEDGED and survivor.merged_from == (cid(2),)
    from_merged = [e for e in survivor.timeline if e.from_complaint == cid(2)]
    own = [e for e in survivor.timeline if e.from_complaint is None]
    assert [e.change for e in from_merged][:2] == [CaseChange.RECEIVED, CaseChange.OPENED]
    assert any(e.change is CaseChange.NOTE and "楼道" in e.detail for e in from_merged)
    assert {e.change for e in own} >= {CaseChange.RECEIVED, CaseChange.OPENED, CaseChange.MERGE_REQUESTED,
                                       CaseChange.MERGED}
    ended = run.outcomes(2)
    assert len(ended) == 1 and ended[0].status is TicketStatus.CANCELLED and ended[0].merged_into == cid(1)
    assert [u.change for u in run.updates(2)][-1] is CaseChange.CANCELLED and run.updates(2)[-1].related == cid(1)
    assert [u.change for u in run.updates(1)][-2:] == [CaseChange.MERGE_REQUESTED, CaseChange.MERGED]
    assert run.outcomes(1) == []


def test_every_entry_of_the_merged_case_is_on_the_survivor_marked_with_where_it_came_from():
    run = drive([*opened(1), *opened(2, T0 + MIN), merge(1, 2, T0 + 30 * MIN)])
    survivor, merged = run.state[cid(1)], run.state[cid(2)]
    before_cancel = [e for e in merged.timeline if e.at < T0 + 30 * MIN]
    carried = [e for e in survivor.timeline if e.from_complaint == cid(2)]
    assert len(carried) == len(before_cancel) > 0

    def key(e):
        return (e.at, e.change)

    assert sorted((e.model_copy(update={"from_complaint": None}) for e in carried), key=key) == \
        sorted(before_cancel, key=key)
    assert [e.at for e in survivor.timeline] == sorted(e.at for e in survivor.timeline)


def test_a_case_cannot_be_merged_into_itself():
    run = drive([*opened(1), merge(1, 1, T0 + 30 * MIN)])
    assert run.rules == ["merge_into_itself"]
    assert run.state[cid(1)].status is TicketStatus.ACKNOWLEDGED and run.updates(1)[-1].change is CaseChange.OPENED


@pytest.mark.parametrize(("ending", "rule"), [
    ([], "already_resolved"),
    ([status(2, "closed", RESOLVED_AT + 10 * MIN)], "case_ended"),
], ids=["resolved", "closed"])
def test_merging_a_resolved_or_closed_case_is_refused_back_to_the_survivor(ending, rule):
    run = drive([*opened(1), *resolved_case(2), *ending, merge(1, 2, RESOLVED_AT + HOUR)])
    assert run.refused == []  # answered to the survivor, not dead-lettered
    merged = run.state[cid(2)]
    assert merged.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and merged.merged_into is None
    survivor = run.state[cid(1)]
    assert survivor.merged_from == ()
    refused = [e for e in survivor.timeline if e.change is CaseChange.MERGE_REFUSED]
    assert len(refused) == 1 and refused[0].reason_code == rule
    assert [u.change for u in run.updates(1)][-1] is CaseChange.MERGE_REFUSED
    assert not any(o.status is TicketStatus.CANCELLED for o in run.outcomes(2))


# -- reopen --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["status", "command"])
def test_a_reopen_inside_the_window_puts_the_case_back_in_progress_with_the_same_owner(how):
    at = RESOLVED_AT + 3 * HOUR
    again = (status(1, "inProgress", at, actor="agent-9", reason_code="customer_rejected") if how == "status"
             else reopen(1, at))
    run = drive([*resolved_case(1), again, resolve(1, at + 2 * HOUR, actor="agent-9")])
    assert run.refused == []
    rec = run.state[cid(1)]
    assert rec.owner == "agent-7" and rec.reopen_count == 1 and rec.resolutions == 2
    reopened = [e.data for e in run.on(RESOLVED, 1) if isinstance(e.data, ComplaintReopened)]
    assert len(reopened) == 1
    assert reopened[0].reopen_count == 1 and reopened[0].owner == "agent-7"
    assert reopened[0].reopened_at == at and reopened[0].reason_code == "customer_rejected"
    update = next(u for u in run.updates(1) if u.change is CaseChange.REOPENED)
    assert update.status is TicketStatus.IN_PROGRESS and update.previous_status is TicketStatus.RESOLVED
    assert update.owner == "agent-7" and update.handler == "agent-7" and update.reopen_count == 1
    events = [e for e in run.on(RESOLVED, 1) if isinstance(e.data, ComplaintResolved)]
    assert [e.data.sequence for e in events] == [1, 2]
    assert [e.data.owner for e in events] == ["agent-7", "agent-7"]
    assert events[0].id != events[1].id
    assert events[1].data.reopen_count == 1


def test_a_reopen_of_a_closed_case_inside_the_window_reopens_it():
    run = drive([*resolved_case(1), callback(1, RESOLVED_AT + 3 * HOUR),
                 status(1, "inProgress", RESOLVED_AT + 5 * HOUR, reason_code="customer_rejected")])
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.IN_PROGRESS and rec.closed_at is None and rec.reopen_count == 1
    assert [u.change for u in run.updates(1)][-2:] == [CaseChange.CLOSED, CaseChange.REOPENED]


@pytest.mark.parametrize("how", ["status", "command"])
def test_a_rejection_after_the_window_is_submitted_as_a_new_complaint_referring_to_the_case(how):
    st = stage()
    window = timedelta(hours=st.policy.file.reopen_window_hours)
    closed = [*resolved_case(1), callback(1, RESOLVED_AT + 3 * HOUR)]
    at = RESOLVED_AT + window + HOUR
    late = (status(1, "inProgress", at, reason_code="customer_rejected", note="还是没信号") if how == "status"
            else reopen(1, at))
    before = drive(closed, st=st).state[cid(1)]
    run = drive([*closed, late], st=stage())
    assert run.refused == []
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.CLOSED and rec.reopen_count == 0 and rec.sequence == before.sequence
    assert run.updates(1)[-1].change is CaseChange.CLOSED  # nothing published about the case
    assert not any(isinstance(e.data, ComplaintReopened) for e in run.on(RESOLVED, 1))
    submissions = [o for o in run.outputs if o.topic is SUBMISSIONS]
    assert len(submissions) == 1
    sub = submissions[0].event.data
    assert isinstance(sub, ChannelSubmission)
    assert sub.refers_to == cid(1) and sub.channel_ref.startswith("reopen-")
    assert sub.customer == rec.received.customer and sub.channel == rec.received.channel
    assert rec.timeline[-1].change is CaseChange.REOPENED and rec.timeline[-1].status is None


def test_a_late_rejection_of_a_still_resolved_case_leaves_it_resolved():
    st = stage(reopen_window_hours=2.0)
    run = drive([*resolved_case(1), status(1, "inProgress", RESOLVED_AT + 3 * HOUR, reason_code="customer_rejected")],
                st=st)
    assert run.state[cid(1)].status is TicketStatus.RESOLVED
    subs = [o.event.data for o in run.outputs if o.topic is SUBMISSIONS]
    assert len(subs) == 1 and subs[0].refers_to == cid(1) and subs[0].channel_ref.startswith("reopen-")


def test_a_reopen_without_a_reason_code_is_refused():
    st = stage()
    run = drive(resolved_case(1), st=st)
    rec = run.state[cid(1)]
    event = status(1, "inProgress", RESOLVED_AT + HOUR)
    with pytest.raises(Refused) as refused:
        st.apply(rec, event, event.time)
    assert refused.value.rule == "reopen_reason_missing"


# -- callback ------------------------------------------------------------------------------------------


def callback_due(run: Run, n: int = 1) -> list[tuple[Any, str]]:
    return [(u.at, u.reason_code) for u in run.updates(n) if u.change is CaseChange.CALLBACK_DUE]


def test_unreached_callbacks_are_retried_at_the_spacing_and_the_case_closes_after_the_last():
    st = stage()
    cb = st.policy.file.callback
    assert (cb.delay_hours, cb.attempts, cb.spacing_hours) == (2, 3, 4)
    first = RESOLVED_AT + timedelta(hours=cb.delay_hours)
    tries = [first + 10 * MIN, first + 10 * MIN + timedelta(hours=cb.spacing_hours) + 5 * MIN]
    tries.append(tries[1] + timedelta(hours=cb.spacing_hours) + 20 * MIN)
    run = drive([*resolved_case(1), *(callback(1, t, "unreached") for t in tries)], until=tries[-1] + HOUR, st=st)
    assert run.refused == []
    spacing = timedelta(hours=cb.spacing_hours)
    assert callback_due(run) == [(first, "attempt_1"), (tries[0] + spacing, "attempt_2"),
                                 (tries[1] + spacing, "attempt_3")]
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.CLOSED and rec.closed_at == tries[-1] and rec.callback.attempts == 3
    closed = run.outcomes(1)[-1]
    assert closed.status is TicketStatus.CLOSED and closed.callback == "unreached"
    assert closed.reason == "callback_unreached" and closed.satisfaction is None


def test_a_retry_is_not_announced_before_it_is_due():
    st = stage()
    at = RESOLVED_AT + 2 * HOUR + 10 * MIN
    run = drive([*resolved_case(1), callback(1, at, "unreached")], st=st)
    rec = run.state[cid(1)]
    due = at + timedelta(hours=st.policy.file.callback.spacing_hours)
    early, early_out = st.due(rec, due - MIN)
    assert not any(o.topic is CASES for o in early_out)
    _, out = st.due(early, due)
    assert [(o.event.data.change, o.event.data.at) for o in out if o.topic is CASES] == [
        (CaseChange.CALLBACK_DUE, due)]


@pytest.mark.parametrize(("answer", "code"), [("satisfied", "satisfied"), ("满意", "satisfied"),
                                              ("基本满意", "basically_satisfied"), ("5", "satisfied")])
def test_a_satisfied_customer_closes_the_case_with_the_satisfaction(answer, code):
    at = RESOLVED_AT + 3 * HOUR
    run = drive([*resolved_case(1), callback(1, at, answer=answer)])
    assert run.refused == []
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.CLOSED and rec.closed_at == at
    assert rec.callback.answer == code and rec.callback.satisfied is True
    closed = run.outcomes(1)[-1]
    assert (closed.status, closed.callback, closed.satisfaction, closed.satisfied) == (
        TicketStatus.CLOSED, "reached", code, True)


@pytest.mark.parametrize("answer", ["dissatisfied", "不满意"])
def test_a_dissatisfied_customer_reopens_the_case_when_the_policy_says_so(answer):
    st = stage()
    assert st.policy.file.callback.reopen_on_dissatisfied is True
    at = RESOLVED_AT + 3 * HOUR
    run = drive([*resolved_case(1), callback(1, at, answer=answer)], st=st)
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.IN_PROGRESS and rec.reopen_count == 1 and rec.owner == "agent-7"
    reopened = [e.data for e in run.on(RESOLVED, 1) if isinstance(e.data, ComplaintReopened)]
    assert len(reopened) == 1 and reopened[0].reason_code == "callback_dissatisfied"
    assert [o.status for o in run.outcomes(1)] == [TicketStatus.RESOLVED]  # not closed
    assert [u.change for u in run.updates(1)][-2:] == [CaseChange.CALLBACK, CaseChange.REOPENED]


def test_a_dissatisfied_customer_closes_the_case_when_the_policy_does_not_reopen():
    base = stage()
    st = stage(callback=base.policy.file.callback.model_copy(update={"reopen_on_dissatisfied": False}))
    at = RESOLVED_AT + 3 * HOUR
    run = drive([*resolved_case(1), callback(1, at, answer="不满意")], st=st)
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.CLOSED and rec.reopen_count == 0
    closed = run.outcomes(1)[-1]
    assert (closed.status, closed.satisfaction, closed.satisfied) == (TicketStatus.CLOSED, "dissatisfied", False)
    assert not any(isinstance(e.data, ComplaintReopened) for e in run.on(RESOLVED, 1))


def test_without_any_callback_the_case_closes_itself_after_the_quiet_period():
    st = stage()
    after = timedelta(hours=st.policy.file.auto_close_hours)
    run = drive(resolved_case(1), until=RESOLVED_AT + after + 5 * MIN, st=st)
    rec = run.state[cid(1)]
    assert rec.status is TicketStatus.CLOSED and rec.closed_at == RESOLVED_AT + after
    assert callback_due(run) == [(RESOLVED_AT + timedelta(hours=st.policy.file.callback.delay_hours), "attempt_1")]
    closed = run.outcomes(1)[-1]
    assert (closed.status, closed.callback, closed.reason) == (TicketStatus.CLOSED, "none", "auto_close")
    not_yet = drive(resolved_case(1), until=RESOLVED_AT + after - 2 * MIN, st=stage())
    assert not_yet.state[cid(1)].status is TicketStatus.RESOLVED


def test_an_answer_not_on_the_scale_is_refused():
    st = stage()
    rec = drive(resolved_case(1), st=st).state[cid(1)]
    before = rec.model_copy(deep=True)
    event = callback(1, RESOLVED_AT + 3 * HOUR, answer="还行吧")
    with pytest.raises(Refused) as refused:
        st.apply(rec, event, event.time)
    assert refused.value.rule == "unknown_survey_answer"
    assert rec == before


def test_a_callback_before_the_resolution_is_refused():
    run = drive([*opened(1), status(1, "inProgress", T0 + 5 * MIN), callback(1, T0 + HOUR)])
    assert run.rules == ["callback_before_resolution"]
