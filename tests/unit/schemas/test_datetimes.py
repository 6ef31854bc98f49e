"""One datetime rule in every event: a naive time is China Standard Time (UTC+8), and every time is
timezone-aware and serialises with its offset.

Generic over the payload registry: every datetime field of every payload type, nested models and
tuples included, and the envelope's CloudEvent ``time``, is found by walking the models' fields, so a
field added later is tested without touching this file. A new payload type needs one valid example
below (the test says so)."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from complaint_stream.schemas import (
    PAYLOADS,
    AddNote,
    AgentPresenceChanged,
    CallbackRecorded,
    CancelComplaint,
    CaseArchived,
    CaseLink,
    CaseUpdated,
    ChangePriority,
    ChannelSubmission,
    ClassificationCorrected,
    CommunicationRequested,
    ComplaintAssigned,
    ComplaintClassified,
    ComplaintEscalated,
    ComplaintReceived,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    DeadLetter,
    HotSpotDetected,
    MergeComplaints,
    PreviousHandler,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    ReturnComplaint,
    SlaEvent,
    StatisticsUpdated,
    TeamWork,
    decode,
    envelope_type,
)
from complaint_stream.schemas.base import AwareDatetime

CST = timezone(timedelta(hours=8))
T = "2026-11-28T08:00:00+00:00"
CID = "CMP20261128-ABCDEFGHIJKL"
REGION = {"province": "广东", "city": "深圳", "district": "南山"}

#: One valid ``data`` of each payload type, with at least one element in every tuple of models.
EXAMPLES: dict[type, dict[str, Any]] = {
    ChannelSubmission: {"channel": "regulator", "channel_ref": "MIIT-1", "text": "信号差",
                        "customer": {"msisdn": "13812345678"}, "region": REGION, "occurred_at": T,
                        "refers_to": CID, "regulator": {"case_no": "工信部-2026-1", "reply_by": T}},
    ComplaintReceived: {"complaint_id": CID, "channel": "app", "channel_ref": "APP-1", "text": "信号差",
                        "customer": {"msisdn": "+8613812345678"}, "customer_key": "0f" * 16, "region": REGION,
                        "occurred_at": T, "received_at": T, "regulator": {"case_no": "工信部-2026-1", "reply_by": T}},
    ComplaintClassified: {"complaint_id": CID, "customer_key": "0f" * 16, "channel": "app", "region": REGION,
                          "customer_tier": "gold", "received_at": T, "category": "network", "confidence": 0.9,
                          "priority": "P3", "severity": "minor", "first_contact_at": T},
    ComplaintAssigned: {"complaint_id": CID, "team": "network-ops", "priority": "P3", "assigned_at": T,
                        "respond_by": T, "resolve_by": T},
    ComplaintStatusChanged: {"complaint_id": CID, "status": "inProgress", "changed_at": T, "actor": "agent-7"},
    CallbackRecorded: {"complaint_id": CID, "outcome": "reached", "answer": "satisfied", "actor": "agent-7", "at": T},
    SlaEvent: {"complaint_id": CID, "clock": "resolution", "step": "warning", "run": 1, "at": T, "observed_at": T,
               "due_at": T, "target_seconds": 3600, "elapsed_seconds": 1800, "fraction": 0.5, "calendar": "24x7",
               "priority": "P2", "category": "billing", "channel": "app"},
    ComplaintEscalated: {"complaint_id": CID, "level": 1, "reason": "sla", "escalated_to": "supervisor",
                         "escalated_at": T, "priority": "P1"},
    ComplaintResolved: {"complaint_id": CID, "customer_key": "0f" * 16, "status": "closed", "category": "network",
                        "resolution": {"code": "technical_fix", "refund_fen": 500}, "resolved_at": T,
                        "received_at": T, "first_contact_at": T, "first_response_at": T,
                        "regulator": {"case_no": "工信部-2026-1", "reply_by": T},
                        "status_history": [{"status": "resolved", "changed_at": T}],
                        "notes": [{"author": "agent-7", "text": "called back", "at": T}]},
    ComplaintReopened: {"complaint_id": CID, "customer_key": "0f" * 16, "reopened_at": T,
                        "reason_code": "customer_rejected", "actor": "customer", "reopen_count": 1},
    StatisticsUpdated: {"window_start": T, "window_end": T, "dimension": "category", "counts": {"network": 3}},
    HotSpotDetected: {"province": "广东", "city": "深圳", "district": "南山", "category": "network",
                      "window_start": T, "window_end": T, "count": 9, "baseline": 1.5, "detected_at": T},
    ReclassifyComplaint: {"complaint_id": CID, "category": "billing", "requested_by": "supervisor-1"},
    MergeComplaints: {"complaint_id": CID, "merged_id": "CMP20261128-MMMMMMMMMMMM", "requested_by": "supervisor-1"},
    CancelComplaint: {"complaint_id": CID, "requested_by": "supervisor-1"},
    ReopenComplaint: {"complaint_id": CID, "requested_by": "supervisor-1"},
    ReassignComplaint: {"complaint_id": CID, "team": "billing", "requested_by": "supervisor-1"},
    ReturnComplaint: {"complaint_id": CID, "team": "billing", "reason_code": "not_our_remit",
                      "requested_by": "lead-1"},
    AgentPresenceChanged: {"team": "billing", "agent_id": "bill-01", "presence": "away", "at": T},
    TeamWork: {"complaint_id": CID, "kind": "offer", "team": "billing", "at": T, "explanation": ["x"]},
    PreviousHandler: {"complaint_id": CID, "kind": "answer", "other_id": "HL-2026-000002", "at": T, "known": True,
                      "team": "senior-desk", "agent_id": "senior-01"},
    ChangePriority: {"complaint_id": CID, "priority": "P1", "requested_by": "supervisor-1"},
    AddNote: {"complaint_id": CID, "note": {"author": "agent-7", "text": "customer called again", "at": T}},
    CaseUpdated: {"complaint_id": CID, "change": "opened", "sequence": 1, "at": T, "status": "acknowledged",
                  "category": "network", "priority": "P3", "channel": "app", "received_at": T,
                  "first_contact_at": T, "first_response_at": T, "regulator_reply_by": T},
    CaseLink: {"complaint_id": CID, "kind": "follow_up", "from_id": "CMP20261128-FFFFFFFFFFFF", "at": T,
               "entries": [{"at": T, "change": "follow_up"}], "resolved_at": T},
    CommunicationRequested: {"complaint_id": CID, "template_id": "acknowledgement", "language": "zh",
                             "channel": "sms", "recipient": "+8613812345678", "text": "已受理", "priority": "P3",
                             "requested_at": T, "send_after": T},
    ClassificationCorrected: {"complaint_id": CID, "text": "信号差", "channel": "app", "previous_category": "network",
                              "category": "billing", "corrected_by": "supervisor-1", "corrected_at": T},
    DeadLetter: {"stage": "intake", "source_topic": "complaints.intake.submissions.v1", "original_value_b64": "",
                 "error": {"type": "invalid_json", "message": "not JSON"}, "failed_at": T},
}
#: A case record with every part that holds a time: the receipt and classification it was built from,
#: the callback, the timeline, notes, a message held through quiet hours and an update parked for it.
EXAMPLES[CaseArchived] = {"complaint_id": CID, "archived_at": T, "record": {
    "complaint_id": CID, "kind": "case", "received": EXAMPLES[ComplaintReceived],
    "classified": EXAMPLES[ComplaintClassified], "status": "closed", "first_contact_at": T,
    "first_response_at": T, "regulator": {"case_no": "GD-1", "reply_by": T}, "resolved_at": T,
    "callback": {"due_at": T, "at": T}, "closed_at": T, "timeline": [{"at": T, "change": "closed"}],
    "notes": [{"author": "a", "text": "t", "at": T}], "last_change": {"/crm": T}, "last_message_at": T,
    "held": [{"event": EXAMPLES[CommunicationRequested], "event_id": "m1"}],
    "parked": [{"raw": "{}", "event_id": "e1", "topic": "t", "parked_at": T}], "updated_at": T}}

Path = tuple[str | int, ...]


def datetime_paths(annotation: Any) -> list[Path]:
    """Where the datetimes are in a value of this type: () for a datetime itself, a field name for a
    model's field, 0 for the elements of a tuple or list."""
    if annotation is datetime:
        return [()]
    if get_origin(annotation) is Annotated:  # an optional AwareDatetime: Annotated inside the union
        return datetime_paths(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(name, *p) for name, f in annotation.model_fields.items() for p in datetime_paths(f.annotation)]
    origin = get_origin(annotation)
    if origin in (tuple, list):
        return [(0, *p) for arg in get_args(annotation) if arg is not Ellipsis for p in datetime_paths(arg)]
    if origin in (Union, types.UnionType):
        return list(dict.fromkeys(p for arg in get_args(annotation) for p in datetime_paths(arg)))
    return []


def envelope_doc(payload_type: type, at: datetime) -> dict[str, Any]:
    """An envelope of the example with every datetime set to ``at`` (a submission's time must be near "now")."""
    doc = {"specversion": "1.0", "id": "e-1", "source": "/test", "type": payload_type.event_type, "time": T,
           "subject": CID, "datacontenttype": "application/json", "data": json.loads(json.dumps(EXAMPLES[payload_type]))}
    for path in datetime_paths(envelope_type(payload_type)):
        put(doc, path, at.isoformat())
    return doc


def get(doc: Any, path: Path) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def put(doc: Any, path: Path, value: Any) -> None:
    try:
        get(doc, path[:-1])[path[-1]]  # the example must already hold the field
    except (KeyError, IndexError) as exc:
        raise AssertionError(f"the example lacks {'.'.join(map(str, path))}: add it to EXAMPLES") from exc
    get(doc, path[:-1])[path[-1]] = value


CASES = [(p, path) for p in PAYLOADS for path in datetime_paths(envelope_type(p))]


def test_every_payload_type_has_an_example_and_every_event_has_datetimes_to_check():
    missing = [p.__name__ for p in PAYLOADS if p not in EXAMPLES]
    assert not missing, f"add a valid example of {', '.join(missing)} to EXAMPLES"
    for p in PAYLOADS:
        assert ("time",) in datetime_paths(envelope_type(p))
    assert ("data", "notes", 0, "at") in [path for p, path in CASES if p is ComplaintResolved]
    assert ("data", "regulator", "reply_by") in [path for p, path in CASES if p is ComplaintResolved]  # optional
    assert ("data", "first_contact_at") in [path for p, path in CASES if p is ComplaintClassified]
    assert len(CASES) > 2 * len(PAYLOADS)


def test_every_datetime_field_of_every_event_is_an_aware_datetime():
    """Statically too: each is declared with the common type (or, for a submission's time, its own
    validator applies the same rule), so no field can bypass the rule by its declaration."""
    for p, path in CASES:
        model: Any = envelope_type(p)
        for step in path[:-1]:
            if isinstance(step, str):
                model = model.model_fields[step].annotation
                model = next((a for a in get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)), model)
        field = model.model_fields[path[-1]]
        declared_aware = (any(m in field.metadata for m in AwareDatetime.__metadata__)
                          or AwareDatetime in get_args(field.annotation))  # optional: AwareDatetime | None
        assert declared_aware or (p is ChannelSubmission and path == ("data", "occurred_at")), (p.__name__, path)


naive_times = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31))


@pytest.mark.parametrize(("payload_type", "path"), CASES,
                         ids=[f"{p.__name__}:{'.'.join(map(str, path))}" for p, path in CASES])
@settings(max_examples=25, deadline=None)
@given(naive=naive_times)
def test_a_naive_time_is_read_as_china_time_and_round_trips_with_an_offset(payload_type, path, naive):
    meant = naive.replace(tzinfo=CST)
    context = {"now": meant}
    doc = envelope_doc(payload_type, meant)
    put(doc, path, naive.isoformat())
    event = decode(json.dumps(doc).encode(), [payload_type], context=context)
    value = get_attr_path(event, path)
    assert value.utcoffset() is not None and value == meant

    dumped = json.loads(event.model_dump_json())
    text = get(dumped, path)
    assert text.endswith("Z") or text[-6] in "+-", text  # an offset in the serialised form
    again = decode(json.dumps(dumped).encode(), [payload_type], context=context)
    assert get_attr_path(again, path) == meant and again == event

    objects = envelope_doc(payload_type, meant)
    put(objects, path, naive)  # a naive Python datetime, as code building an event would pass it
    built = envelope_type(payload_type).model_validate(objects, context=context)
    assert get_attr_path(built, path) == meant and get_attr_path(built, path).utcoffset() is not None


def test_an_aware_time_keeps_its_instant_and_naive_python_datetimes_are_china_time_too():
    resolved = ComplaintResolved.model_validate({**EXAMPLES[ComplaintResolved], "resolved_at": datetime(2026, 1, 2, 8)})
    assert resolved.resolved_at == datetime(2026, 1, 2, 0, tzinfo=UTC) and resolved.resolved_at.tzinfo is not None
    other = ComplaintResolved.model_validate({**EXAMPLES[ComplaintResolved], "resolved_at": "2026-01-02T08:00:00-05:00"})
    assert other.resolved_at == datetime(2026, 1, 2, 13, tzinfo=UTC)
    assert other.model_dump_json().count('"2026-01-02T13:00:00Z"') == 1


def get_attr_path(model: Any, path: Path) -> Any:
    for step in path:
        model = model[step] if isinstance(step, int) else getattr(model, step)
    return model
