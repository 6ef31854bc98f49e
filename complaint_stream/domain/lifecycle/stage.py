"""The lifecycle stage (工单全流程): one case record per complaint, from receipt to closing.

A pure state machine keyed by complaint id (:class:`~complaint_stream.schemas.CaseRecord`), built only
from events: received, classified, assigned, status updates and callbacks from agents' systems and
the CRM, supervisors' commands, SLA events and escalations, and links from other cases.

* A case opens once both its receipt and its classification are in (the two topics are read
  independently, so either may come first). A contact the classifier found to follow up an open case
  (``follow_up_of``, 催单) opens no case: it is sent to that case (a :class:`CaseLink`), which records it
  and may raise its priority; if that case is no longer open, or belongs to another customer, it answers
  so, and the contact opens a case of its own (linked as a repeat when the other was resolved).
* Every status update is checked against the transition table (``transitions.json``); an update the
  rules refuse raises :class:`~complaint_stream.domain.stage.Refused` and is dead-lettered with the rule.
  An event applied once is a no-op the second time (by event id). An update about a complaint not seen
  yet is parked for a grace period (the receipt may still be on its way) and dead-lettered after it as
  ``unknown_complaint``.
* Outputs: :class:`CaseUpdated` for every change (no personal data), :class:`ComplaintResolved` on
  resolution and on the end (closed, cancelled, rejected), :class:`ComplaintReopened`, messages for the
  customer (held back through quiet hours), corrections for the classifier's training, and a new
  submission when a customer rejects a resolution after the reopen window. Every id is derived from the
  complaint and the step, so a replay produces the same ids.
* Timers (``due``): held messages, parked updates past their grace, the callback (回访) falling due and
  its retries, the automatic close after the quiet period, progress messages on long cases, and
  moving ended cases out of memory after ``retention_days`` onto the compacted archive topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from complaint_stream.domain.intake import event_id
from complaint_stream.domain.lifecycle.messages import (
    Language,
    QuietHours,
    Templates,
    format_local,
    load_templates,
    message_channel,
    message_language,
    yuan,
)
from complaint_stream.domain.lifecycle.policy import LifecyclePolicy
from complaint_stream.domain.privacy import redact_phone_numbers
from complaint_stream.domain.stage import ALWAYS, Output, Refused, StageBase
from complaint_stream.schemas import (
    AddNote,
    Callback,
    CallbackRecorded,
    CancelComplaint,
    CaseArchived,
    CaseChange,
    CaseLink,
    CaseRecord,
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
    DeadLetterError,
    DeadLetterKind,
    DecodeError,
    Envelope,
    HeldMessage,
    MergeComplaints,
    ParkedUpdate,
    Payload,
    Priority,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    Resolution,
    ReturnComplaint,
    SlaEvent,
    SlaStep,
    TicketStatus,
    TimelineEntry,
    dead_letter,
    decode,
    wrap,
)
from complaint_stream.topics import (
    ASSIGNED,
    CASE_ARCHIVE,
    CASE_LINKS,
    CASES,
    CLASSIFIED,
    COMMANDS,
    CORRECTIONS,
    DEAD_LETTERS,
    ESCALATIONS,
    NOTIFICATIONS,
    RECEIVED,
    RESOLVED,
    SLA_EVENTS,
    STATUS,
    SUBMISSIONS,
    TopicSpec,
)

#: Where each consumed event type comes from (the topic named in a parked update's dead letter).
INPUT_TOPICS: tuple[TopicSpec, ...] = (RECEIVED, CLASSIFIED, ASSIGNED, STATUS, COMMANDS, SLA_EVENTS, ESCALATIONS,
                                       CASE_LINKS)
TOPIC_OF: dict[type[Payload], TopicSpec] = {value: topic for topic in INPUT_TOPICS for value in topic.values}
CONSUMES: tuple[type[Payload], ...] = tuple(TOPIC_OF)
PRIORITY_ORDER = (Priority.P1, Priority.P2, Priority.P3, Priority.P4)
OPEN_FOR_FOLLOW_UPS = (TicketStatus.ACKNOWLEDGED, TicketStatus.IN_PROGRESS, TicketStatus.PENDING, TicketStatus.HELD)
SYSTEM = "lifecycle"
#: Messages a customer who opted out still gets: the reply the operator owes (受理回复, 处理结果).
REQUIRED_MESSAGES = frozenset({"acknowledgement", "regulator_ack", "resolution", "resolution_refund", "cancelled"})
MAX_PARKED = 100
#: Bytes of parked updates one record may hold: the record must stay far below the producer's 1 MiB limit,
#: or its changelog write fails and the worker stops on the same record after every restart.
MAX_PARKED_BYTES = 256 * 1024


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass
class Step:
    """One application of an event to a record: the record as it changes and the outputs so far."""

    rec: CaseRecord
    now: datetime
    outputs: list[Output] = field(default_factory=list)

    def update(self, **changes: Any) -> None:
        self.rec = self.rec.model_copy(update=changes)

    def emit(self, topic: TopicSpec, key: str, event: Envelope[Any]) -> None:
        self.outputs.append(Output(topic, key, event))


class LifecycleStage(StageBase[CaseRecord]):
    """The case record of each complaint (see the module docstring)."""

    name = "lifecycle"
    consumes: tuple[type[Payload], ...] = CONSUMES
    produces: tuple[TopicSpec, ...] = (CASES, RESOLVED, NOTIFICATIONS, CASE_LINKS, CORRECTIONS, SUBMISSIONS,
                                       CASE_ARCHIVE, DEAD_LETTERS)
    state_type: Any = CaseRecord
    timer_interval: float | None = 60.0

    def __init__(self, policy: LifecyclePolicy, templates: Templates | None = None, source: str = "/workers/lifecycle"):
        self.policy = policy
        self.table = policy.transitions
        self.templates = templates or load_templates()
        self.source = source
        f = policy.file
        self.timer_interval = f.timer_seconds
        self.quiet = QuietHours(start=_hhmm(f.quiet_hours_start), end=_hhmm(f.quiet_hours_end),
                                exempt=frozenset(f.quiet_hours_exempt))
        self._handlers: dict[type[Payload], Callable[[Step, Envelope[Any]], None]] = {
            ComplaintReceived: self._received,
            ComplaintClassified: self._classified,
            ComplaintAssigned: self._assigned,
            ComplaintStatusChanged: self._status,
            CallbackRecorded: self._callback,
            AddNote: self._note,
            ChangePriority: self._priority,
            ReclassifyComplaint: self._reclassify,
            ReassignComplaint: self._reassign,
            ReturnComplaint: self._returned,
            CancelComplaint: self._cancel,
            ReopenComplaint: self._reopen_command,
            MergeComplaints: self._merge_command,
            SlaEvent: self._sla,
            ComplaintEscalated: self._escalated,
            CaseLink: self._link,
        }

    # -- the stage shape ------------------------------------------------------------------------

    def state_key(self, event: Envelope[Any]) -> str:
        return str(event.data.complaint_id)

    def apply(self, state: CaseRecord | None, event: Envelope[Any],
              now: datetime) -> tuple[CaseRecord | None, Sequence[Output]]:
        rec = state or CaseRecord(complaint_id=event.data.complaint_id)
        if event.id in rec.applied or any(p.event_id == event.id for p in rec.parked):
            return state, ()  # a replay or duplicate: applied (or parked) once already
        step = Step(rec, now)
        self._handlers[type(event.data)](step, event)
        if step.rec is rec:
            return state, step.outputs
        if any(p.event_id == event.id for p in step.rec.parked):
            step.update(updated_at=now)  # parked, not applied: applied when the case opens
        else:
            step.update(applied=(*step.rec.applied, event.id), updated_at=now)
        return step.rec, step.outputs

    def due(self, state: CaseRecord, now: datetime) -> tuple[CaseRecord | None, Sequence[Output]]:
        step = Step(state, now)
        self._release_held(step)
        self._expire_parked(step)
        rec = step.rec
        if rec.kind == "case" and rec.status is not None:
            if rec.status is TicketStatus.RESOLVED:
                self._callback_timers(step)
            elif rec.status in OPEN_FOR_FOLLOW_UPS:
                self._progress_timer(step)
        if self._forgettable(step.rec, now):
            if step.rec.kind != "waiting":  # out of memory, onto the compacted archive topic
                archived = CaseArchived(complaint_id=step.rec.complaint_id, record=step.rec, archived_at=now)
                step.emit(CASE_ARCHIVE, step.rec.complaint_id, self._wrap(archived, "archived", now))
            return None, step.outputs
        return step.rec, step.outputs

    def next_due(self, state: CaseRecord) -> datetime | None:
        """The earliest time :meth:`due` may do anything to ``state``: a held message's release, a parked
        update's grace running out, auto-close or the callback of a resolved case, the periodic progress
        message of an open one, and leaving memory (the retention period). Each is the time its own check
        in :meth:`due` compares with, so it is never late; ``None``: nothing until an event comes."""
        rec = state
        times: list[datetime] = [h.event.send_after for h in rec.held]
        times += [p.parked_at + self.policy.grace for p in rec.parked]
        if rec.kind == "case" and rec.status is not None:
            if rec.status is TicketStatus.RESOLVED:
                if rec.resolved_at is not None:
                    times.append(rec.resolved_at + self.policy.auto_close_after)
                cb = rec.callback
                if (cb is not None and cb.outcome != "reached" and cb.announced <= cb.attempts
                        and cb.attempts + 1 <= self.policy.file.callback.attempts):
                    times.append(cb.due_at)
            elif rec.status in OPEN_FOR_FOLLOW_UPS:
                every = self.policy.progress_every
                if every is not None and rec.received is not None:
                    times.append((rec.last_message_at or rec.received.received_at) + every)
        if not rec.parked and not rec.held:  # what _forgettable compares with
            retention = self.policy.retention
            if rec.kind == "case" and rec.status is not None and self.table.is_terminal(rec.status):
                if rec.closed_at is not None:
                    times.append(rec.closed_at + retention)
            elif rec.kind == "follow_up" and rec.received is not None:
                times.append(rec.received.received_at + retention)
            elif rec.kind == "waiting":
                if rec.received is None and rec.classified is None:
                    return ALWAYS
                if rec.updated_at is not None:
                    times.append(rec.updated_at + retention)
        return min(times, default=None)

    # -- receipt, classification, opening -------------------------------------------------------

    def _received(self, step: Step, env: Envelope[Any]) -> None:
        data: ComplaintReceived = env.data
        if len(data.model_dump_json()) > MAX_PARKED_BYTES:  # intake bounds text and attachments far below this
            raise Refused("complaint_too_large", f"the receipt of {data.complaint_id} is over"
                                                 f" {MAX_PARKED_BYTES // 1024} KiB: its record could not be stored")
        if step.rec.received is not None:
            step.update()  # the same complaint received again under another event id: recorded, no change
            return
        step.update(received=data)
        self._entry(step, CaseChange.RECEIVED, data.received_at, actor=data.channel.value, detail=data.text,
                    event=env, publish=False)
        self._try_open(step)

    def _classified(self, step: Step, env: Envelope[Any]) -> None:
        data: ComplaintClassified = env.data
        if step.rec.classified is not None:
            step.update()  # a later classification of an opened case changes nothing; corrections are commands
            return
        step.update(classified=data)
        detail = f"{data.category.value} ({data.confidence:.2f}), {data.priority.value}"
        if data.explanation:
            detail += ": " + "; ".join(data.explanation)
        if data.priority_reasons:
            detail += " | " + "; ".join(data.priority_reasons)
        self._entry(step, CaseChange.CLASSIFIED, env.time, actor="classifier", detail=detail, event=env,
                    publish=False)
        self._try_open(step)

    def _try_open(self, step: Step) -> None:
        rec = step.rec
        if rec.kind != "waiting" or rec.received is None or rec.classified is None:
            return
        target = rec.classified.follow_up_of
        if target and target != rec.complaint_id:
            received = rec.received
            step.update(kind="follow_up", attached_to=target)
            self._entry(step, CaseChange.FOLLOW_UP, received.received_at, actor=received.channel.value,
                        detail=f"follow-up of {target}: sent there", publish=False)
            self._send_link(step, target, "follow_up", received.received_at, customer_key=received.customer_key,
                            channel=received.channel, text=received.text, actor=received.channel.value)
            self._release_parked(step)  # updates that waited for it are refused: they belong to the case
            return
        self._open_case(step, repeat_of=rec.classified.repeat_of)

    def _open_case(self, step: Step, repeat_of: str | None) -> None:
        rec = step.rec
        assert rec.received is not None and rec.classified is not None
        received, classified = rec.received, rec.classified
        step.update(kind="case", status=self.table.file.initial, category=classified.category,
                    priority=classified.priority, repeat_of=repeat_of,
                    first_contact_at=classified.first_contact_at or received.received_at,
                    regulator=received.regulator)
        self._change(step, CaseChange.OPENED, received.received_at, actor="intake", related=repeat_of)
        if repeat_of:
            self._entry(step, CaseChange.REPEAT, received.received_at, actor="classifier",
                        detail=f"repeat of {repeat_of} (重复投诉)", publish=False)
        priority = step.rec.priority or Priority.P3
        promised = received.received_at + self.policy.promised_reply(priority)
        template = "regulator_ack" if received.regulator is not None else "acknowledgement"
        params = {} if received.regulator is None else {"regulator_case_no": received.regulator.case_no}
        self._message(step, template, "acknowledgement", received.received_at,
                      lambda lang: {**params, "promised_by": format_local(promised, lang)})
        self._release_parked(step)

    # -- status updates ---------------------------------------------------------------------------

    def _case(self, step: Step, env: Envelope[Any]) -> bool:
        """True when the record is an open-or-ended case the event may apply to; parks the event while
        the complaint is unknown or not opened yet; refuses it on a follow-up."""
        rec = step.rec
        if rec.kind == "case":
            return True
        if rec.kind == "follow_up":
            raise Refused("not_a_case", f"{rec.complaint_id} is a follow-up attached to {rec.attached_to};"
                                        f" updates go to {rec.attached_to}")
        if len(rec.parked) >= MAX_PARKED:
            raise Refused("unknown_complaint", f"{rec.complaint_id} not received, and {MAX_PARKED} updates"
                                               " already wait for it")
        raw = env.model_dump_json()
        if len(raw.encode()) + sum(len(p.raw.encode()) for p in rec.parked) > MAX_PARKED_BYTES:
            raise Refused("unknown_complaint", f"{rec.complaint_id} not received, and the updates waiting for it"
                                               f" would exceed {MAX_PARKED_BYTES // 1024} KiB")
        topic = TOPIC_OF[type(env.data)]
        step.update(parked=(*rec.parked, ParkedUpdate(raw=raw, event_id=env.id,
                                                      topic=topic.name, parked_at=step.now)))
        return False

    def _open(self, step: Step, what: str) -> TicketStatus:
        """The case's status; refuses when the case has ended (closed, cancelled, rejected)."""
        status = step.rec.status
        assert status is not None
        if self.table.is_terminal(status):
            f = self.table.file
            rule = f.closed_refusal if status is TicketStatus.CLOSED else f.ended_refusal
            raise Refused(rule, f"{what} on a {status.value} complaint")
        return status

    def _not_stale(self, step: Step, env: Envelope[Any], at: datetime) -> None:
        last = step.rec.last_change.get(env.source)
        if last is not None and at < last:
            raise Refused("stale_update", f"{at.isoformat()} is older than the last change from {env.source}"
                                          f" ({last.isoformat()})")
        step.update(last_change={**step.rec.last_change, env.source: at})

    def _status(self, step: Step, env: Envelope[Any]) -> None:
        data: ComplaintStatusChanged = env.data
        if not self._case(step, env):
            return
        current = step.rec.status
        assert current is not None
        verdict = self.table.check(current, data.status)
        if verdict.kind == "refused":
            raise Refused(verdict.rule, f"{current.value} -> {data.status.value}")
        self._not_stale(step, env, data.changed_at)
        if verdict.kind == "reopen":
            self._reopen(step, data.changed_at, data.actor, data.reason_code, data.note, env)
            return
        self._take(step, data.actor, data.changed_at)
        if data.status is TicketStatus.RESOLVED:
            self._resolve(step, data, env)
        elif data.status is TicketStatus.CLOSED:
            self._close(step, data.changed_at, data.actor, data.reason_code or "closed_by_crm", env)
        elif data.status in (TicketStatus.CANCELLED, TicketStatus.REJECTED):
            self._end(step, data.status, data.changed_at, data.actor, data.reason_code, data.note, env)
        else:
            step.update(status=data.status)
            self._change(step, CaseChange.STATUS, data.changed_at, actor=data.actor, detail=data.note,
                         reason_code=data.reason_code, event=env, previous=current)

    def _take(self, step: Step, actor: str, at: datetime) -> None:
        """The person working the case now; the first one is its owner (首问负责制) until it closes."""
        rec = step.rec
        changes: dict[str, Any] = {"handler": actor}
        if rec.owner is None:
            changes["owner"] = actor
        if actor not in rec.handlers:
            changes["handlers"] = (*rec.handlers, actor)
        if rec.first_response_at is None:
            changes["first_response_at"] = at
        step.update(**changes)

    def _resolve(self, step: Step, data: ComplaintStatusChanged, env: Envelope[Any]) -> None:
        resolution = data.resolution
        if resolution is None:
            raise Refused("resolution_missing", "a resolved update must say how (resolution code, root cause)")
        if resolution.code not in self.policy.file.resolution_codes:
            raise Refused("unknown_resolution_code",
                          f"{resolution.code!r} is not one of {', '.join(self.policy.file.resolution_codes)}")
        previous = step.rec.status
        n = step.rec.resolutions + 1
        at = data.changed_at
        callback = Callback(due_at=at + timedelta(hours=self.policy.file.callback.delay_hours))
        step.update(status=TicketStatus.RESOLVED, resolution=resolution, resolved_at=at, resolutions=n,
                    callback=callback)
        detail = f"{resolution.code}" + (f" ({resolution.root_cause})" if resolution.root_cause else "")
        if resolution.note or data.note:
            detail += f": {resolution.note or data.note}"
        self._change(step, CaseChange.RESOLVED, at, actor=data.actor, detail=detail, event=env, previous=previous,
                     reason_code=resolution.code)
        self._emit_outcome(step, TicketStatus.RESOLVED, at, f"resolved:{n}")
        amount = (resolution.refund_fen or 0) + (resolution.compensation_fen or 0)
        template = "resolution_refund" if amount else "resolution"
        self._message(step, template, f"resolution:{n}", at,
                      lambda lang: {"resolution_text": self._resolution_text(resolution, lang),
                                    "amount_yuan": yuan(amount)})

    def _resolution_text(self, resolution: Resolution, language: Language) -> str:
        return self.templates.resolution_text(resolution.code, language)

    def _close(self, step: Step, at: datetime, actor: str, reason_code: str, env: Envelope[Any] | None) -> None:
        previous = step.rec.status
        step.update(status=TicketStatus.CLOSED, closed_at=at)
        self._change(step, CaseChange.CLOSED, at, actor=actor, reason_code=reason_code, event=env, previous=previous)
        self._emit_outcome(step, TicketStatus.CLOSED, at, f"closed:{step.rec.resolutions}", reason=reason_code)

    def _end(self, step: Step, status: TicketStatus, at: datetime, actor: str, reason_code: str, reason: str,
             env: Envelope[Any] | None, merged_into: str | None = None) -> None:
        previous = step.rec.status
        step.update(status=status, closed_at=at, merged_into=merged_into)
        change = CaseChange.CANCELLED if status is TicketStatus.CANCELLED else CaseChange.REJECTED
        self._change(step, change, at, actor=actor, detail=reason, reason_code=reason_code, event=env,
                     previous=previous, related=merged_into)
        self._emit_outcome(step, status, at, status.value, reason=reason or reason_code)
        text = reason or reason_code
        self._message(step, "cancelled", status.value, at,
                      lambda lang: {"reason_text": (f"{'并入' if lang == 'zh' else 'merged into'} {merged_into}"
                                                    if merged_into else text)})

    def _reopen(self, step: Step, at: datetime, actor: str, reason_code: str, note: str,
                env: Envelope[Any] | None) -> None:
        rec = step.rec
        if not reason_code:
            raise Refused("reopen_reason_missing", "a reopen must give a reason code")
        base = rec.resolved_at or rec.closed_at
        assert base is not None
        if at - base > self.policy.reopen_window:
            self._reopen_as_new_complaint(step, at, actor, reason_code, note, env)
            return
        previous = rec.status
        count = rec.reopen_count + 1
        step.update(status=TicketStatus.IN_PROGRESS, closed_at=None, callback=None, reopen_count=count,
                    handler=rec.owner or rec.handler)
        self._change(step, CaseChange.REOPENED, at, actor=actor, detail=note, reason_code=reason_code, event=env,
                     previous=previous)
        assert rec.received is not None
        reopened = ComplaintReopened(complaint_id=rec.complaint_id, customer_key=rec.received.customer_key,
                                     reopened_at=at, reason_code=reason_code, actor=actor, owner=step.rec.owner,
                                     reopen_count=count)
        step.emit(RESOLVED, rec.complaint_id, self._wrap(reopened, f"reopened:{count}", at))
        self._message(step, "reopened", f"reopened:{count}", at, lambda lang: {})

    def _reopen_as_new_complaint(self, step: Step, at: datetime, actor: str, reason_code: str, note: str,
                                 env: Envelope[Any] | None) -> None:
        """After the reopen window a rejection of the resolution is a new complaint, linked to this one:
        submitted through intake like any other, referring to this case (so it is linked as a repeat)."""
        rec = step.rec
        assert rec.received is not None
        received = rec.received
        n = len([e for e in rec.timeline if e.change is CaseChange.REOPENED and e.status is None]) + 1
        channel_ref = f"reopen-{rec.complaint_id}-{n}"[:128]
        words = note or received.text
        region = received.region.model_dump(include={"province", "city", "district", "cell_id"})
        submission = ChannelSubmission.model_validate({
            "channel": received.channel.value, "channel_ref": channel_ref, "text": words,
            "customer": received.customer.model_dump(mode="json"), "region": region,
            "language": received.language, "occurred_at": at.isoformat(), "refers_to": rec.complaint_id,
        }, context={"now": at})
        step.emit(SUBMISSIONS, submission.dedup_key,
                  wrap(submission, source=self.source, subject=channel_ref,
                       event_id=event_id(rec.complaint_id, f"reopen-submission:{n}"), time=at))
        self._entry(step, CaseChange.REOPENED, at, actor=actor, reason_code=reason_code, event=env,
                    detail=f"after the {self.policy.file.reopen_window_hours:g} h reopen window: submitted as a new"
                           f" complaint ({received.channel.value}:{channel_ref}) linked to this one",
                    publish=False)

    # -- callbacks --------------------------------------------------------------------------------

    def _callback(self, step: Step, env: Envelope[Any]) -> None:
        data: CallbackRecorded = env.data
        if not self._case(step, env):
            return
        status = self._open(step, "a callback")
        rec = step.rec
        if status is not TicketStatus.RESOLVED or rec.callback is None:
            raise Refused("callback_before_resolution", f"the complaint is {status.value}")
        self._not_stale(step, env, data.at)
        attempts = rec.callback.attempts + 1
        cb = self.policy.file.callback
        if data.outcome == "unreached":
            callback = rec.callback.model_copy(update={
                "attempts": attempts, "outcome": "unreached", "at": data.at,
                "due_at": data.at + timedelta(hours=cb.spacing_hours)})
            step.update(callback=callback)
            self._change(step, CaseChange.CALLBACK, data.at, actor=data.actor, reason_code="unreached",
                         detail=f"attempt {attempts} of {cb.attempts}: not reached. {data.note}".strip(), event=env)
            if attempts >= cb.attempts:
                self._close(step, data.at, SYSTEM, "callback_unreached", None)
            return
        answer = self.policy.survey_answer(data.answer or "")
        if answer is None:
            known = ", ".join(a.answer for a in cb.scale)
            raise Refused("unknown_survey_answer", f"{data.answer!r} is not on the scale ({known})")
        step.update(callback=rec.callback.model_copy(update={
            "attempts": attempts, "outcome": "reached", "answer": answer.answer, "satisfied": answer.satisfied,
            "at": data.at}))
        self._change(step, CaseChange.CALLBACK, data.at, actor=data.actor, reason_code=answer.answer,
                     detail=f"{answer.zh} / {answer.en}. {data.note}".strip(), event=env)
        if not answer.satisfied and cb.reopen_on_dissatisfied:
            base = rec.resolved_at
            if base is not None and data.at - base <= self.policy.reopen_window:
                self._reopen(step, data.at, SYSTEM, "callback_dissatisfied", data.note, None)
                return
        self._close(step, data.at, data.actor, "callback_" + answer.answer, None)

    def _callback_timers(self, step: Step) -> None:
        rec = step.rec
        now = step.now
        if rec.resolved_at is not None and now >= rec.resolved_at + self.policy.auto_close_after:
            self._close(step, rec.resolved_at + self.policy.auto_close_after, SYSTEM, "auto_close", None)
            return
        cb = rec.callback
        if cb is None or cb.outcome == "reached" or now < cb.due_at or cb.announced > cb.attempts:
            return
        attempt = cb.attempts + 1
        if attempt > self.policy.file.callback.attempts:
            return
        step.update(callback=cb.model_copy(update={"announced": attempt}))
        self._change(step, CaseChange.CALLBACK_DUE, cb.due_at, actor=SYSTEM, reason_code=f"attempt_{attempt}")
        if attempt == 1:
            options = self.policy.file.callback.scale
            self._message(step, "survey", f"survey:{rec.resolutions}", cb.due_at,
                          lambda lang: {"survey_options": " / ".join(a.zh if lang == "zh" else a.en
                                                                      for a in options)})

    def _progress_timer(self, step: Step) -> None:
        every = self.policy.progress_every
        rec = step.rec
        if every is None or rec.received is None:
            return
        last = rec.last_message_at or rec.received.received_at
        if step.now - last < every:
            return
        n = len([m for m in rec.messages if m.startswith("progress:")]) + 1
        status = rec.status
        assert status is not None
        self._message(step, "progress", f"progress:{n}", step.now,
                      lambda lang: {"status_text": self.templates.status_text(status, lang)})
        if step.rec.last_message_at is None or step.rec.last_message_at < step.now:
            step.update(last_message_at=step.now)  # also when the customer opted out: no retry every sweep

    # -- assignment, SLA, escalation --------------------------------------------------------------

    def _assigned(self, step: Step, env: Envelope[Any]) -> None:
        data: ComplaintAssigned = env.data
        if not self._case(step, env):
            return
        rec = step.rec
        assert rec.status is not None
        if rec.status is TicketStatus.RESOLVED or self.table.is_terminal(rec.status):
            # A race between workers, not bad input: the dispatcher gave the complaint to an agent before
            # it read that the case was resolved or ended, and releases it when it does. Recorded (the
            # closed loop keeps every step), not applied: the handler stays, nothing is published.
            who = data.team + (f"/{data.agent_id}" if data.agent_id else "")
            self._entry(step, CaseChange.ASSIGNED, data.assigned_at, actor="dispatch", reason_code="after_case_ended",
                        detail=f"{who} after the case was {rec.status.value}: not applied (the dispatcher releases it)",
                        event=env, publish=False)
            return
        changes: dict[str, Any] = {"team": data.team}
        if data.agent_id:
            changes["handler"] = data.agent_id
            if rec.owner is None:
                changes["owner"] = data.agent_id
            if data.agent_id not in rec.handlers:
                changes["handlers"] = (*rec.handlers, data.agent_id)
        step.update(**changes)
        who = data.team + (f"/{data.agent_id}" if data.agent_id else "")
        self._change(step, CaseChange.ASSIGNED, data.assigned_at, actor="dispatch", detail=f"{who}. {data.reason}".strip(),
                     event=env)

    def _sla(self, step: Step, env: Envelope[Any]) -> None:
        """A warning or a breach goes on the timeline and is published (dashboards, statistics); the other
        steps (started, paused, fulfilled ...) are the SLA worker's own record, on its topic."""
        data: SlaEvent = env.data
        if data.step not in (SlaStep.WARNING, SlaStep.BREACHED) or not self._case(step, env):
            return
        what = f"{data.clock.value} {data.step.value}" + (f" at {data.fraction:.0%}" if data.step is SlaStep.WARNING
                                                          and data.fraction else "")
        due = f", due {data.due_at.isoformat()}" if data.due_at else ""
        self._change(step, CaseChange.SLA, data.at, actor="sla", reason_code=f"{data.clock.value}_{data.step.value}",
                     detail=f"{what}{due}", event=env)

    def _escalated(self, step: Step, env: Envelope[Any]) -> None:
        """On the timeline and published; where the SLA policy says so the case's priority goes up (never
        down) in the same change, and the SLA worker re-times its clocks from the published priority."""
        data: ComplaintEscalated = env.data
        if not self._case(step, env):
            return
        current = step.rec.priority
        raised = ""
        status = step.rec.status
        if (data.raise_priority_to is not None and current is not None and status is not None
                and not self.table.is_terminal(status) and data.raise_priority_to.value < current.value):  # P1 < P2
            step.update(priority=data.raise_priority_to)
            raised = f"; priority {current.value} -> {data.raise_priority_to.value}"
        risk = " (regulatory risk)" if data.regulatory_risk else ""
        self._change(step, CaseChange.ESCALATED, data.escalated_at, actor="sla", reason_code=f"level_{data.level}",
                     detail=f"level {data.level} to {data.escalated_to}{risk}: {data.reason}{raised}", event=env)

    # -- supervisors' commands --------------------------------------------------------------------

    def _note(self, step: Step, env: Envelope[Any]) -> None:
        data: AddNote = env.data
        if not self._case(step, env):
            return
        self._open(step, "a note")
        step.update(notes=(*step.rec.notes, data.note))
        self._change(step, CaseChange.NOTE, data.note.at, actor=data.note.author, detail=data.note.text, event=env)

    def _priority(self, step: Step, env: Envelope[Any]) -> None:
        data: ChangePriority = env.data
        if not self._case(step, env):
            return
        self._open(step, "a priority change")
        if data.priority is step.rec.priority:
            raise Refused("no_change", f"the priority is already {data.priority.value}")
        old = step.rec.priority
        step.update(priority=data.priority)
        self._change(step, CaseChange.PRIORITY, env.time, actor=data.requested_by, reason_code="command",
                     detail=f"{old.value if old else '-'} -> {data.priority.value}: {data.reason}", event=env)

    def _reclassify(self, step: Step, env: Envelope[Any]) -> None:
        data: ReclassifyComplaint = env.data
        if not self._case(step, env):
            return
        self._open(step, "a reclassification")
        rec = step.rec
        if data.category is rec.category:
            raise Refused("no_change", f"the category is already {data.category.value}")
        assert rec.received is not None and rec.classified is not None and rec.category is not None
        previous = rec.category
        step.update(category=data.category)
        self._change(step, CaseChange.RECLASSIFIED, env.time, actor=data.requested_by, reason_code="command",
                     detail=f"{previous.value} -> {data.category.value}: {data.reason}", event=env)
        correction = ClassificationCorrected(
            complaint_id=rec.complaint_id, text=redact_phone_numbers(rec.received.text), channel=rec.received.channel,
            language=rec.received.language, previous_category=previous, category=data.category,
            corrected_by=data.requested_by, reason=data.reason, corrected_at=env.time,
            classifier_version=rec.classified.classifier_version)
        step.emit(CORRECTIONS, rec.complaint_id, self._wrap(correction, f"correction:{env.id}", env.time))

    def _reassign(self, step: Step, env: Envelope[Any]) -> None:
        data: ReassignComplaint = env.data
        if not self._case(step, env):
            return
        self._open(step, "a reassignment")
        who = data.team + (f"/{data.agent_id}" if data.agent_id else "")
        self._change(step, CaseChange.REASSIGN_REQUESTED, env.time, actor=data.requested_by,
                     detail=f"to {who}: {data.reason}", reason_code="command", event=env)

    def _returned(self, step: Step, env: Envelope[Any]) -> None:
        data: ReturnComplaint = env.data
        if not self._case(step, env):
            return
        self._open(step, "a return")
        self._change(step, CaseChange.RETURNED, env.time, actor=data.requested_by,
                     detail=f"returned by {data.team}" + (f": {data.reason}" if data.reason else ""),
                     reason_code=data.reason_code, event=env)

    def _cancel(self, step: Step, env: Envelope[Any]) -> None:
        data: CancelComplaint = env.data
        if not self._case(step, env):
            return
        current = step.rec.status
        assert current is not None
        verdict = self.table.check(current, TicketStatus.CANCELLED)
        if verdict.kind != "change":
            raise Refused(verdict.rule or "transition_not_allowed", f"{current.value} -> cancelled")
        self._end(step, TicketStatus.CANCELLED, env.time, data.requested_by, data.reason_code, data.reason, env)

    def _reopen_command(self, step: Step, env: Envelope[Any]) -> None:
        data: ReopenComplaint = env.data
        if not self._case(step, env):
            return
        current = step.rec.status
        assert current is not None
        if self.table.check(current, TicketStatus.IN_PROGRESS).kind != "reopen":
            raise Refused("reopen_requires_resolution", f"the complaint is {current.value}")
        self._reopen(step, env.time, data.requested_by, data.reason_code, data.reason, env)

    def _merge_command(self, step: Step, env: Envelope[Any]) -> None:
        data: MergeComplaints = env.data
        if not self._case(step, env):
            return
        if self._open(step, "a merge") is TicketStatus.RESOLVED:
            raise Refused("already_resolved", "a resolved case cannot take in another; reopen it first")
        if data.merged_id == step.rec.complaint_id:
            raise Refused("merge_into_itself", "a case cannot be merged into itself")
        if data.merged_id in step.rec.merged_from:
            raise Refused("already_merged", f"{data.merged_id} is already merged into this case")
        self._change(step, CaseChange.MERGE_REQUESTED, env.time, actor=data.requested_by, related=data.merged_id,
                     detail=f"merge {data.merged_id} into this case: {data.reason}", reason_code="command", event=env)
        self._send_link(step, data.merged_id, "merge_request", env.time, actor=data.requested_by, reason=data.reason)

    # -- links between cases ----------------------------------------------------------------------

    def _send_link(self, step: Step, target: str, kind: str, at: datetime, **fields: Any) -> None:
        link = CaseLink(complaint_id=target, kind=kind, from_id=step.rec.complaint_id, at=at, **fields)
        material = f"link:{kind}:{step.rec.complaint_id}:{step.rec.sequence}:{len(step.rec.timeline)}"
        step.emit(CASE_LINKS, target, self._wrap(link, material, at))

    def _link(self, step: Step, env: Envelope[Any]) -> None:
        link: CaseLink = env.data
        rec = step.rec
        if link.kind in ("follow_up", "merge_request") and rec.kind == "follow_up" and rec.attached_to:
            if link.kind == "follow_up":  # this contact was itself attached elsewhere: pass it on
                forwarded = link.model_copy(update={"complaint_id": rec.attached_to})
                step.update()
                step.emit(CASE_LINKS, rec.attached_to, self._wrap(forwarded, f"forward:{env.id}", link.at))
                return
            step.update()
            self._send_link(step, link.from_id, "merge_refused", link.at, rule="not_a_case",
                            reason=f"{rec.complaint_id} is a follow-up of {rec.attached_to}")
            return
        if rec.kind == "waiting":
            self._case(step, env)  # parks it until the case opens (or refuses when too many wait)
            return
        if link.kind in ("merged", "merge_refused") and rec.kind != "case":
            step.update()  # about a merge this record never asked for: nothing to do
            return
        getattr(self, f"_link_{link.kind}")(step, env, link)

    def _link_follow_up(self, step: Step, env: Envelope[Any], link: CaseLink) -> None:
        rec = step.rec
        assert rec.received is not None
        if rec.merged_into is not None:  # the problem lives on in the survivor: the follow-up goes there
            step.update()
            forwarded = link.model_copy(update={"complaint_id": rec.merged_into})
            step.emit(CASE_LINKS, rec.merged_into, self._wrap(forwarded, f"forward:{env.id}", link.at))
            return
        if link.customer_key != rec.received.customer_key:
            step.update()
            self._send_link(step, link.from_id, "follow_up_refused", link.at, rule="customer_mismatch",
                            reason=f"{rec.complaint_id} is another customer's complaint")
            return
        if rec.status not in OPEN_FOR_FOLLOW_UPS:
            step.update()
            resolved = rec.resolved_at if rec.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) else None
            self._send_link(step, link.from_id, "follow_up_refused", link.at, rule="case_not_open",
                            reason=f"{rec.complaint_id} is {rec.status.value if rec.status else 'unknown'}",
                            resolved_at=resolved)
            return
        if link.from_id in rec.follow_ups:  # attached already (the same link again under another id)
            step.update()
            return
        follow_ups = (*rec.follow_ups, link.from_id)
        step.update(follow_ups=follow_ups)
        self._change(step, CaseChange.FOLLOW_UP, link.at, actor=link.actor, detail=link.text, related=link.from_id,
                     event=env, from_complaint=link.from_id)
        f = self.policy.file
        current = step.rec.priority
        if f.follow_up_raise_every and current is not None and len(follow_ups) % f.follow_up_raise_every == 0:
            raised = PRIORITY_ORDER[max(PRIORITY_ORDER.index(current) - 1, 0)]
            if PRIORITY_ORDER.index(raised) >= PRIORITY_ORDER.index(f.follow_up_raise_to_at_most) and raised != current:
                step.update(priority=raised)
                self._change(step, CaseChange.PRIORITY, link.at, actor=SYSTEM, reason_code="follow_ups",
                             detail=f"{current.value} -> {raised.value} after {len(follow_ups)} follow-ups")

    def _link_follow_up_refused(self, step: Step, env: Envelope[Any], link: CaseLink) -> None:
        rec = step.rec
        if rec.kind != "follow_up" or rec.attached_to is None:
            step.update()  # already a case (a replayed refusal)
            return
        self._entry(step, CaseChange.FOLLOW_UP, link.at, actor=SYSTEM, reason_code=link.rule,
                    detail=f"not attached to {link.from_id}: {link.reason}; opened as a case", publish=False)
        repeat = link.from_id if link.resolved_at is not None and link.rule == "case_not_open" else None
        assert rec.classified is not None
        step.update(kind="waiting", attached_to=None)
        self._open_case(step, repeat_of=repeat or rec.classified.repeat_of)

    def _link_merge_request(self, step: Step, env: Envelope[Any], link: CaseLink) -> None:
        rec = step.rec
        status = rec.status
        assert status is not None
        if self.table.is_terminal(status) or status is TicketStatus.RESOLVED or rec.merged_into is not None:
            step.update()
            self._send_link(step, link.from_id, "merge_refused", link.at,
                            rule="already_resolved" if status is TicketStatus.RESOLVED else "case_ended",
                            reason=f"{rec.complaint_id} is {status.value}")
            return
        entries = rec.timeline
        self._end(step, TicketStatus.CANCELLED, link.at, link.actor, "merged", link.reason, env,
                  merged_into=link.from_id)
        self._send_link(step, link.from_id, "merged", link.at, actor=link.actor, reason=link.reason,
                        entries=entries, follow_ups=len(rec.follow_ups))

    def _link_merged(self, step: Step, env: Envelope[Any], link: CaseLink) -> None:
        rec = step.rec
        merged = tuple(e.model_copy(update={"from_complaint": e.from_complaint or link.from_id}) for e in link.entries)
        timeline = tuple(sorted((*rec.timeline, *merged), key=lambda e: e.at))
        step.update(timeline=timeline, merged_from=(*rec.merged_from, link.from_id))
        self._change(step, CaseChange.MERGED, link.at, actor=link.actor, related=link.from_id, event=env,
                     detail=f"{link.from_id} merged into this case ({len(link.entries)} entries,"
                            f" {link.follow_ups} follow-ups): {link.reason}")

    def _link_merge_refused(self, step: Step, env: Envelope[Any], link: CaseLink) -> None:
        self._change(step, CaseChange.MERGE_REFUSED, link.at, actor=SYSTEM, related=link.from_id,
                     reason_code=link.rule, detail=link.reason, event=env)

    # -- parked updates ---------------------------------------------------------------------------

    def _release_parked(self, step: Step) -> None:
        parked = step.rec.parked
        if not parked:
            return
        step.update(parked=())
        for item in parked:
            env = decode(item.raw.encode(), self.consumes)
            try:
                new, outputs = self.apply(step.rec, env, step.now)
            except Refused as refusal:
                self._dead_letter(step, item, refusal)
                continue
            if new is not None:
                step.rec = new
            step.outputs.extend(outputs)

    def _expire_parked(self, step: Step) -> None:
        rec = step.rec
        expired = [p for p in rec.parked if step.now - p.parked_at >= self.policy.grace]
        if not expired:
            return
        step.update(parked=tuple(p for p in rec.parked if p not in expired))
        for item in expired:
            try:
                env = decode(item.raw.encode(), self.consumes)
            except DecodeError:
                env = None
            if env is not None and isinstance(env.data, CaseLink) and env.data.kind in ("follow_up", "merge_request"):
                answer = "follow_up_refused" if env.data.kind == "follow_up" else "merge_refused"
                link = CaseLink(complaint_id=env.data.from_id, kind=answer, from_id=rec.complaint_id,
                                at=env.data.at, rule="unknown_complaint",
                                reason=f"{rec.complaint_id} was not received within the grace period")
                step.emit(CASE_LINKS, link.complaint_id, self._wrap(link, f"expired:{item.event_id}", env.data.at))
                continue
            grace = self.policy.file.unknown_complaint_grace_minutes
            self._dead_letter(step, item, Refused("unknown_complaint", f"{rec.complaint_id} was not received within"
                                                                       f" {grace:g} minutes of this update"))

    def _dead_letter(self, step: Step, item: ParkedUpdate, refusal: Refused) -> None:
        letter = dead_letter(stage=self.name, source_topic=item.topic, value=item.raw.encode(),
                             key=step.rec.complaint_id.encode(),
                             error=DeadLetterError(type=DeadLetterKind.REFUSED, message=str(refusal)[:500]),
                             failed_at=step.now)
        step.emit(DEAD_LETTERS, step.rec.complaint_id,
                  wrap(letter, source=self.source, subject=step.rec.complaint_id,
                       event_id=event_id(step.rec.complaint_id, f"dead-letter:{item.event_id}"), time=step.now))

    # -- messages ---------------------------------------------------------------------------------

    def _message(self, step: Step, template_id: str, key: str, at: datetime,
                 params: Callable[[Language], dict[str, str]]) -> None:
        rec = step.rec
        if key in rec.messages or rec.received is None:
            return
        customer = rec.received.customer
        step.update(messages=(*rec.messages, key))
        if customer.opt_out and template_id not in REQUIRED_MESSAGES:
            return
        channel = message_channel(rec.received.channel, customer.notify_by, customer.email is not None)
        language = message_language(customer.notify_language, rec.received.language)
        priority = rec.priority or Priority.P3
        promised = (rec.updated_at or step.now) if rec.received is None else rec.received.received_at
        values = {"complaint_id": rec.complaint_id,
                  "category_name": self.templates.category_name(rec.category, language) if rec.category else "",
                  "promised_by": format_local(max(promised, at) + self.policy.promised_reply(priority), language),
                  **params(language)}
        rendered = self.templates.render(template_id, language, values)
        event = CommunicationRequested(
            complaint_id=rec.complaint_id, template_id=template_id, language=language, channel=channel,
            recipient=customer.email if channel == "email" and customer.email else customer.msisdn,
            subject=rendered.subject, text=rendered.text, parameters=values, priority=priority, requested_at=at,
            send_after=self.quiet.send_after(step.now, priority))
        message_id = event_id(rec.complaint_id, f"message:{key}")
        self._entry(step, CaseChange.MESSAGE, at, actor=SYSTEM, reason_code=template_id,
                    detail=f"{template_id} by {channel} ({language})", publish=False)
        step.update(last_message_at=max(step.now, step.rec.last_message_at or step.now))
        if event.send_after <= step.now:
            step.emit(NOTIFICATIONS, rec.complaint_id, wrap(event, source=self.source, subject=rec.complaint_id,
                                                             event_id=message_id, time=step.now))
        else:
            step.update(held=(*step.rec.held, HeldMessage(event=event, event_id=message_id)))

    def _release_held(self, step: Step) -> None:
        ready = [h for h in step.rec.held if h.event.send_after <= step.now]
        if not ready:
            return
        step.update(held=tuple(h for h in step.rec.held if h not in ready))
        for held in ready:
            step.emit(NOTIFICATIONS, step.rec.complaint_id,
                      wrap(held.event, source=self.source, subject=step.rec.complaint_id, event_id=held.event_id,
                           time=held.event.send_after))

    # -- records and events -----------------------------------------------------------------------

    def _entry(self, step: Step, change: CaseChange, at: datetime, *, actor: str = "", detail: str = "",
               reason_code: str = "", event: Envelope[Any] | None = None, publish: bool = True,
               from_complaint: str | None = None) -> None:
        entry = TimelineEntry(at=at, change=change, actor=actor, status=step.rec.status if publish else None,
                              detail=detail[:4000], reason_code=reason_code,
                              event_id=event.id if event is not None else "", from_complaint=from_complaint)
        timeline = step.rec.timeline
        where = len(timeline)
        while where and timeline[where - 1].at > at:  # in time order; equal times keep their arrival order
            where -= 1
        step.update(timeline=(*timeline[:where], entry, *timeline[where:]))

    def _change(self, step: Step, change: CaseChange, at: datetime, *, actor: str = "", detail: str = "",
                reason_code: str = "", event: Envelope[Any] | None = None, previous: TicketStatus | None = None,
                related: str | None = None, from_complaint: str | None = None) -> None:
        """Record a change on the timeline and publish it (:class:`CaseUpdated`)."""
        self._entry(step, change, at, actor=actor, detail=detail, reason_code=reason_code, event=event,
                    from_complaint=from_complaint)
        rec = step.rec
        sequence = rec.sequence + 1
        step.update(sequence=sequence)
        received, classified = rec.received, rec.classified
        assert received is not None and classified is not None and rec.status is not None
        region = received.region
        updated = CaseUpdated(
            complaint_id=rec.complaint_id, change=change, sequence=sequence, at=at, actor=actor,
            reason_code=reason_code, status=rec.status, previous_status=previous,
            category=rec.category or classified.category, priority=rec.priority or classified.priority,
            channel=received.channel, region_code=region.district_code or region.city_code or region.province_code,
            owner=rec.owner, handler=rec.handler, team=rec.team, received_at=received.received_at,
            first_contact_at=rec.first_contact_at or received.received_at,
            first_response_at=rec.first_response_at,
            regulator_reply_by=rec.regulator.reply_by if rec.regulator else None,
            follow_ups=len(rec.follow_ups), reopen_count=rec.reopen_count, related=related)
        step.emit(CASES, rec.complaint_id, self._wrap(updated, f"case:{sequence}", at))

    def _emit_outcome(self, step: Step, status: TicketStatus, at: datetime, material: str, reason: str = "") -> None:
        rec = step.rec
        received, classified = rec.received, rec.classified
        assert received is not None and classified is not None
        cb = rec.callback
        resolved = ComplaintResolved(
            complaint_id=rec.complaint_id, customer_key=received.customer_key, status=status,
            category=rec.category or classified.category, priority=rec.priority, channel=received.channel,
            resolution=_masked_resolution(rec.resolution), resolved_at=at, received_at=received.received_at,
            first_contact_at=rec.first_contact_at, first_response_at=rec.first_response_at,
            handling_seconds=max((at - received.received_at).total_seconds(), 0.0), owner=rec.owner,
            handlers=rec.handlers, team=rec.team, regulator=rec.regulator, sequence=max(rec.resolutions, 1),
            reopen_count=rec.reopen_count, follow_ups=len(rec.follow_ups), repeat_of=rec.repeat_of,
            merged_into=rec.merged_into, reason=redact_phone_numbers(reason[:500]),
            callback=(None if status is not TicketStatus.CLOSED
                      else ("none" if cb is None or cb.outcome is None else cb.outcome)),
            satisfaction=cb.answer if cb is not None and status is TicketStatus.CLOSED else None,
            satisfied=cb.satisfied if cb is not None and status is TicketStatus.CLOSED else None,
            notes=tuple(n.model_copy(update={"text": redact_phone_numbers(n.text)}) for n in rec.notes))
        step.emit(RESOLVED, rec.complaint_id, self._wrap(resolved, material, at))

    def _wrap(self, payload: Any, material: str, at: datetime) -> Envelope[Any]:
        cid = str(payload.complaint_id)
        return wrap(payload, source=self.source, subject=cid, event_id=event_id(cid, material), time=at)

    def _forgettable(self, rec: CaseRecord, now: datetime) -> bool:
        """An ended case (and a follow-up attached elsewhere) is kept for the retention period."""
        if rec.parked or rec.held:
            return False
        if rec.kind == "case" and rec.status is not None and self.table.is_terminal(rec.status):
            return rec.closed_at is not None and now - rec.closed_at > self.policy.retention
        if rec.kind == "follow_up" and rec.received is not None:
            return now - rec.received.received_at > self.policy.retention
        if rec.kind == "waiting":
            if rec.received is None and rec.classified is None:
                return True  # only parked updates were here, all dead-lettered now
            return rec.updated_at is not None and now - rec.updated_at > self.policy.retention
        return False


def _masked_resolution(resolution: Resolution | None) -> Resolution | None:
    """The resolution as published: phone numbers in its note masked (the case record keeps the note)."""
    if resolution is None or not resolution.note:
        return resolution
    return resolution.model_copy(update={"note": redact_phone_numbers(resolution.note)})
