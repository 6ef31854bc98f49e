"""Builders of the events a case record is made of, as the systems around the lifecycle worker send them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from complaint_stream.domain.intake import event_id
from complaint_stream.domain.lifecycle.policy import LifecyclePolicy
from complaint_stream.domain.lifecycle.stage import LifecycleStage
from complaint_stream.domain.privacy import customer_key
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    AddNote,
    CallbackRecorded,
    CancelComplaint,
    Category,
    ChangePriority,
    Channel,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintReceived,
    ComplaintStatusChanged,
    Customer,
    Envelope,
    MergeComplaints,
    Note,
    Priority,
    ReclassifyComplaint,
    Region,
    RegulatorAppeal,
    ReopenComplaint,
    Resolution,
    TicketStatus,
    wrap,
)

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in China: outside quiet hours
SECRET = "test-secret-" + "x" * 32
_ids = itertools.count(1)


def cid(n: int) -> str:
    return f"CMP20261130-{n:012d}"


def phone(n: int) -> str:
    return f"+86138{n:08d}"


def stage(**policy_changes: Any) -> LifecycleStage:
    policy = LifecyclePolicy.load()
    if policy_changes:
        policy = LifecyclePolicy(policy.file.model_copy(update=policy_changes), policy.transitions,
                                 policy.repeat_window)
    return LifecycleStage(policy)


def _wrap(payload: Any, at: datetime, source: str, material: str | None = None) -> Envelope[Any]:
    eid = event_id(payload.complaint_id, material or f"test:{next(_ids)}")
    return wrap(payload, source=source, subject=payload.complaint_id, event_id=eid, time=at)


def received(n: int, at: datetime = T0, *, customer: int | None = None, channel: str = "app",
             text: str = "家里信号很差，电话经常打不通", regulator: RegulatorAppeal | None = None,
             opt_out: bool = False, language: str = "zh", refers_to: str | None = None) -> Envelope[Any]:
    who = customer if customer is not None else n
    data = ComplaintReceived(
        complaint_id=cid(n), channel=Channel(channel), channel_ref=f"REF-{n}", text=text,
        customer=Customer(msisdn=phone(who), opt_out=opt_out), customer_key=customer_key(phone(who), SECRET),
        region=Region(province="广东", city="深圳", district="南山"), language=language, occurred_at=at,
        received_at=at, regulator=regulator, refers_to=refers_to)
    return _wrap(data, at, "/workers/intake", "received")


def classified(n: int, at: datetime = T0, *, customer: int | None = None, category: str = "network",
               priority: str = "P3", follow_up_of: str | None = None, repeat_of: str | None = None,
               channel: str = "app") -> Envelope[Any]:
    who = customer if customer is not None else n
    p = Priority(priority)
    data = ComplaintClassified(
        complaint_id=cid(n), customer_key=customer_key(phone(who), SECRET), channel=Channel(channel),
        region=Region(province="广东", city="深圳", district="南山"), customer_tier="standard", received_at=at,
        category=Category(category), confidence=0.9, explanation=("信号",), priority=p,
        severity=SEVERITY_OF_PRIORITY[p], follow_up_of=follow_up_of, repeat_of=repeat_of, first_contact_at=at)
    return _wrap(data, at + timedelta(seconds=1), "/workers/classify", "classified")


def opened(n: int, at: datetime = T0, **kw: Any) -> list[Envelope[Any]]:
    cust = kw.pop("customer", None)
    rkw = {k: kw.pop(k) for k in ("channel", "text", "regulator", "opt_out", "language", "refers_to") if k in kw}
    return [received(n, at, customer=cust, **rkw), classified(n, at, customer=cust,
                                                              channel=rkw.get("channel", "app"), **kw)]


def status(n: int, to: str, at: datetime, *, actor: str = "agent-1", source: str = "/crm", reason_code: str = "",
           resolution: Resolution | None = None, note: str = "", sent: datetime | None = None) -> Envelope[Any]:
    """A status update that happened at ``at``, sent at ``sent`` (a late update: ``sent`` after ``at``)."""
    data = ComplaintStatusChanged(complaint_id=cid(n), status=TicketStatus(to), changed_at=at, actor=actor,
                                  reason_code=reason_code, resolution=resolution, note=note)
    return _wrap(data, sent or at, source)


def resolve(n: int, at: datetime, *, code: str = "technical_fix", refund_fen: int | None = None,
            actor: str = "agent-1", source: str = "/crm") -> Envelope[Any]:
    return status(n, "resolved", at, actor=actor, source=source,
                  resolution=Resolution(code=code, root_cause="base_station_fault", responsible_department="network",
                                        refund_fen=refund_fen, note="基站已修复"))


def callback(n: int, at: datetime, outcome: str = "reached", answer: str | None = "satisfied",
             actor: str = "survey-1") -> Envelope[Any]:
    data = CallbackRecorded(complaint_id=cid(n), outcome=outcome, answer=answer if outcome == "reached" else None,
                            actor=actor, at=at)
    return _wrap(data, at, "/callcentre")


def assigned(n: int, at: datetime, team: str = "network-sz", agent: str | None = "agent-1") -> Envelope[Any]:
    data = ComplaintAssigned(complaint_id=cid(n), team=team, agent_id=agent, priority=Priority.P3, assigned_at=at,
                             respond_by=at + timedelta(hours=4), resolve_by=at + timedelta(hours=48))
    return _wrap(data, at, "/workers/assign")


def note(n: int, at: datetime, text: str = "已联系客户") -> Envelope[Any]:
    return _wrap(AddNote(complaint_id=cid(n), note=Note(author="sup-1", text=text, at=at)), at, "/supervisors")


def priority(n: int, at: datetime, to: str = "P1") -> Envelope[Any]:
    return _wrap(ChangePriority(complaint_id=cid(n), priority=Priority(to), requested_by="sup-1", reason="VIP"),
                 at, "/supervisors")


def reclassify(n: int, at: datetime, to: str = "billing") -> Envelope[Any]:
    return _wrap(ReclassifyComplaint(complaint_id=cid(n), category=Category(to), requested_by="sup-1",
                                     reason="wrong charge, not signal"), at, "/supervisors")


def merge(survivor: int, merged: int, at: datetime) -> Envelope[Any]:
    return _wrap(MergeComplaints(complaint_id=cid(survivor), merged_id=cid(merged), requested_by="sup-1",
                                 reason="same outage"), at, "/supervisors")


def cancel(n: int, at: datetime) -> Envelope[Any]:
    return _wrap(CancelComplaint(complaint_id=cid(n), requested_by="sup-1", reason="customer withdrew"),
                 at, "/supervisors")


def reopen(n: int, at: datetime) -> Envelope[Any]:
    return _wrap(ReopenComplaint(complaint_id=cid(n), requested_by="sup-1", reason="customer called back",
                                 reason_code="customer_rejected"), at, "/supervisors")
