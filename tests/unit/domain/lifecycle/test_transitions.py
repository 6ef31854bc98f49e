"""The transition table (``transitions.json``) as the lifecycle stage applies it: every pair of the eight
TMF621 statuses on a real case, the checks on a resolution, stale and replayed updates, commands on a
closed complaint, and a broken transitions file."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from complaint_stream.domain.lifecycle.policy import LifecyclePolicy, TransitionTable
from complaint_stream.domain.lifecycle.stage import LifecycleStage
from complaint_stream.domain.policy_files import PolicyFileError
from complaint_stream.domain.stage import Refused, run_in_event_time
from complaint_stream.schemas import CaseChange, CaseRecord, CaseUpdated, Envelope, Resolution, TicketStatus
from complaint_stream.topics import CASE_LINKS, CASES
from tests.support.cases import (
    T0,
    assigned,
    callback,
    cancel,
    cid,
    merge,
    note,
    opened,
    priority,
    reclassify,
    resolve,
    stage,
    status,
)

TABLE: dict[str, Any] = json.loads(
    (resources.files("complaint_stream.domain.lifecycle") / "transitions.json").read_text(encoding="utf-8"))
STATUSES = [s.value for s in TicketStatus]
PAIRS = [(a, b) for a in STATUSES for b in STATUSES]
MIN = timedelta(minutes=1)

#: The updates that bring case 1 from acknowledged to each status (minutes after T0).
PATHS: dict[str, list[tuple[str, int]]] = {
    "acknowledged": [],
    "inProgress": [("inProgress", 5)],
    "pending": [("pending", 5)],
    "held": [("held", 5)],
    "resolved": [("inProgress", 5), ("resolved", 30)],
    "closed": [("inProgress", 5), ("resolved", 30), ("closed", 45)],
    "rejected": [("rejected", 5)],
    "cancelled": [("cancelled", 5)],
}
#: The change a case update names when a status update moves a case to each status.
CHANGE_OF = {"resolved": CaseChange.RESOLVED, "closed": CaseChange.CLOSED, "cancelled": CaseChange.CANCELLED,
             "rejected": CaseChange.REJECTED}


def update(to: str, at, *, source: str = "/crm") -> Envelope[Any]:
    """A status update to ``to`` as the CRM sends it: with a resolution when it resolves, with a reason code
    when it goes (back) to inProgress (a reopen needs one)."""
    if to == "resolved":
        return resolve(1, at, source=source)
    return status(1, to, at, source=source, reason_code="customer_rejected" if to == "inProgress" else "")


def case_in(st: LifecycleStage, target: str) -> CaseRecord:
    state: dict[str, CaseRecord] = {}
    events = [*opened(1)] + [update(to, T0 + m * MIN) for to, m in PATHS[target]]
    list(run_in_event_time(st, events, state=state))  # raises on any refusal: the path must be allowed
    rec = state[cid(1)]
    assert rec.kind == "case" and rec.status is TicketStatus(target)
    return rec


def expected_verdict(current: str, target: str) -> str | None:
    """What the file says about ``current -> target``: reopen, same (a progress update), change, or None."""
    if target == "inProgress" and current in TABLE["reopen_from"] and target in TABLE["allowed"][current]:
        return "reopen"
    if target == current and current not in TABLE["terminal"] and f"{current}->{target}" not in TABLE["refusals"]:
        return "same"
    if target in TABLE["allowed"][current]:
        return "change"
    return None


def expected_rule(current: str, target: str) -> str:
    refusals = TABLE["refusals"]
    for pair in (f"{current}->{target}", f"*->{target}", f"{current}->*"):
        if pair in refusals:
            return refusals[pair]
    if current == "closed":
        return TABLE["closed_refusal"]
    if current in TABLE["terminal"]:
        return TABLE["ended_refusal"]
    return TABLE["default_refusal"]


def refuse(st: LifecycleStage, rec: CaseRecord, event: Envelope[Any]) -> Refused:
    """Apply ``event``, which must be refused; the record must be as it was."""
    before = rec.model_copy(deep=True)
    with pytest.raises(Refused) as refused:
        st.apply(rec, event, event.time)
    assert rec == before
    return refused.value


def test_the_table_covers_the_eight_tmf621_statuses():
    assert len(STATUSES) == 8
    assert set(TABLE["allowed"]) == set(STATUSES)
    assert len(PAIRS) == 64


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_a_status_update_is_applied_exactly_when_the_table_allows_it(current, target):
    st = stage()
    rec = case_in(st, current)
    event = update(target, T0 + timedelta(hours=1))
    verdict = expected_verdict(current, target)
    if verdict is None:
        refusal = refuse(st, rec, event)
        assert refusal.rule == expected_rule(current, target)
        return
    new, outputs = st.apply(rec, event, event.time)
    updates = [o.event.data for o in outputs if o.topic is CASES]
    assert len(updates) == 1 and isinstance(updates[0], CaseUpdated)
    assert new is not None and new.status is TicketStatus(target) and updates[0].status is TicketStatus(target)
    assert updates[0].previous_status is TicketStatus(current)
    assert updates[0].sequence == rec.sequence + 1 == new.sequence
    assert event.id in new.applied
    if verdict == "reopen":
        assert updates[0].change is CaseChange.REOPENED and new.reopen_count == rec.reopen_count + 1
    elif verdict == "same":
        assert updates[0].change is CaseChange.STATUS and new.status is rec.status
    else:
        assert updates[0].change is CHANGE_OF.get(target, CaseChange.STATUS)


def test_resolving_without_a_resolution_is_refused():
    st = stage()
    rec = case_in(st, "inProgress")
    refusal = refuse(st, rec, status(1, "resolved", T0 + timedelta(hours=1)))
    assert refusal.rule == "resolution_missing"


def test_a_resolution_code_not_in_the_policy_is_refused():
    st = stage()
    assert "goodwill_voucher" not in st.policy.file.resolution_codes
    rec = case_in(st, "inProgress")
    refusal = refuse(st, rec, status(1, "resolved", T0 + timedelta(hours=1),
                                     resolution=Resolution(code="goodwill_voucher")))
    assert refusal.rule == "unknown_resolution_code"
    new, _ = st.apply(rec, status(1, "resolved", T0 + timedelta(hours=1), resolution=Resolution(code="refund")),
                      T0 + timedelta(hours=1))
    assert new is not None and new.status is TicketStatus.RESOLVED


def test_an_update_older_than_the_last_change_from_its_source_is_stale_but_another_source_may_send_it():
    st = stage()
    rec = case_in(st, "acknowledged")
    rec, _ = st.apply(rec, status(1, "inProgress", T0 + 10 * MIN, source="/crm"), T0 + 10 * MIN)
    assert rec is not None
    late = status(1, "pending", T0 + 5 * MIN, source="/crm")
    assert refuse(st, rec, late).rule == "stale_update"
    other = status(1, "pending", T0 + 5 * MIN, source="/agent-desk")
    new, outputs = st.apply(rec, other, T0 + 11 * MIN)
    assert new is not None and new.status is TicketStatus.PENDING
    assert [o.event.data.change for o in outputs if o.topic is CASES] == [CaseChange.STATUS]
    same_time = status(1, "inProgress", T0 + 10 * MIN, source="/crm")  # not older: accepted
    newer, _ = st.apply(new, same_time, T0 + 12 * MIN)
    assert newer is not None and newer.status is TicketStatus.IN_PROGRESS


@pytest.mark.parametrize("make", [
    lambda: status(1, "inProgress", T0 + 10 * MIN),
    lambda: note(1, T0 + 10 * MIN),
    lambda: assigned(1, T0 + 10 * MIN, agent="agent-2"),
    lambda: priority(1, T0 + 10 * MIN, to="P2"),
    lambda: reclassify(1, T0 + 10 * MIN),
], ids=["status", "note", "assigned", "priority", "reclassify"])
def test_the_same_event_applied_twice_is_a_no_op_the_second_time(make):
    st = stage()
    rec = case_in(st, "acknowledged")
    event = make()
    once, outputs = st.apply(rec, event, event.time)
    assert once is not None and once != rec and outputs
    twice, again = st.apply(once, event, event.time + MIN)
    assert twice is once and tuple(again) == ()


def test_a_replayed_resolution_resolves_once():
    st = stage()
    rec = case_in(st, "inProgress")
    event = resolve(1, T0 + timedelta(hours=1))
    once, outputs = st.apply(rec, event, event.time)
    twice, again = st.apply(once, event, event.time)
    assert twice is once and tuple(again) == ()
    assert once is not None and once.resolutions == 1


@pytest.mark.parametrize("make", [
    lambda at: note(1, at),
    lambda at: priority(1, at, to="P1"),
    lambda at: callback(1, at),
    lambda at: cancel(1, at),
    lambda at: reclassify(1, at),
    lambda at: merge(1, 2, at),
], ids=["note", "priority", "callback", "cancel", "reclassify", "merge"])
def test_anything_on_a_closed_complaint_is_refused_as_case_closed(make):
    st = stage()
    rec = case_in(st, "closed")
    assert refuse(st, rec, make(T0 + timedelta(hours=1))).rule == TABLE["closed_refusal"] == "case_closed"


@pytest.mark.parametrize("ended", ["resolved", "closed", "cancelled", "rejected"])
def test_an_assignment_after_the_case_ended_is_recorded_not_applied_nor_dead_lettered(ended):
    # the dispatcher gave a queued complaint to an agent before it read the end (it releases it then)
    st = stage()
    rec = case_in(st, ended)
    late = assigned(1, T0 + timedelta(hours=1), agent="agent-9")
    new, outputs = st.apply(rec, late, late.time)
    assert new is not None and tuple(outputs) == ()
    assert new.status is rec.status and new.handler == rec.handler and "agent-9" not in new.handlers
    entry = new.timeline[-1]
    assert (entry.change, entry.reason_code, entry.event_id) == (CaseChange.ASSIGNED, "after_case_ended", late.id)
    assert st.apply(new, late, late.time + MIN) == (new, ())


@pytest.mark.parametrize("ended", ["cancelled", "rejected"])
def test_commands_on_a_cancelled_or_rejected_complaint_are_refused_as_ended(ended):
    st = stage()
    rec = case_in(st, ended)
    assert refuse(st, rec, note(1, T0 + timedelta(hours=1))).rule == TABLE["ended_refusal"] == "case_ended"


def test_refusals_reach_the_on_refused_hook_and_leave_the_stored_state_alone():
    st = stage()
    state: dict[str, CaseRecord] = {}
    refused: list[str] = []
    list(run_in_event_time(st, [*opened(1), status(1, "inProgress", T0 + 5 * MIN)], state=state))
    before = state[cid(1)]
    list(run_in_event_time(st, [status(1, "acknowledged", T0 + 10 * MIN), status(1, "closed", T0 + 11 * MIN)],
                           state=state, on_refused=lambda e, r: refused.append(r.rule), feedback=[CASE_LINKS]))
    assert refused == ["cannot_return_to_acknowledged", "close_before_resolution"]
    assert state[cid(1)] is before


# -- a broken transitions file ---------------------------------------------------------------------


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "transitions.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_packaged_transitions_file_loads():
    table = TransitionTable.load()
    assert table.file.initial is TicketStatus.ACKNOWLEDGED


def test_a_transitions_file_without_a_status_fails_to_load_naming_it(tmp_path):
    data = {**TABLE, "allowed": {k: v for k, v in TABLE["allowed"].items() if k != "held"}}
    path = write(tmp_path, data)
    with pytest.raises(PolicyFileError) as error:
        TransitionTable.load(path)
    assert str(path) in str(error.value)
    assert "allowed: no entry for status(es) held" in str(error.value)
    with pytest.raises(PolicyFileError):
        LifecyclePolicy.load(transitions=path)


@pytest.mark.parametrize("key", ["held->done", "held-resolved", "held->resolved->closed", "->held"])
def test_a_refusal_key_that_is_not_a_pair_of_statuses_fails_to_load_naming_it(tmp_path, key):
    path = write(tmp_path, {**TABLE, "refusals": {**TABLE["refusals"], key: "some_rule"}})
    with pytest.raises(PolicyFileError) as error:
        TransitionTable.load(path)
    assert f"refusals: {key!r} is not" in str(error.value)


def test_an_unknown_status_in_the_table_fails_to_load_naming_it(tmp_path):
    path = write(tmp_path, {**TABLE, "allowed": {**TABLE["allowed"], "onHold": []}})
    with pytest.raises(PolicyFileError) as error:
        TransitionTable.load(path)
    assert "allowed.onHold" in str(error.value)
