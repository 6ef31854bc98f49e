"""How ``complaints show`` presents one case record (工单): a text view for a terminal, and JSON.

Pure: no Kafka, faust or prometheus_client. Both views are for people, terminals and logs, so neither
carries a phone number: the customer's number and email address are masked, and every piece of free
text (the complaint's words, notes, timeline details, held messages, parked updates) has the phone
numbers in it masked (:func:`~complaint_stream.schemas.privacy.redact_phone_numbers`). The raw record
stays where it is kept: the lifecycle worker's table and its changelog.

Times show in China Standard Time (``yyyy-mm-dd HH:MM:SS``); amounts in yuan from integer fen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from complaint_stream.domain.lifecycle.messages import CHINA, yuan
from complaint_stream.domain.privacy import mask_msisdn, redact_phone_numbers
from complaint_stream.schemas.case import CaseChange, CaseRecord, TimelineEntry

__all__ = ["DETAIL_WIDTH", "local_time", "mask_email", "mask_recipient", "record_json", "render_timeline"]

#: A timeline entry's detail is cut to this many characters in the text view (``--json`` has all of it).
DETAIL_WIDTH = 200
_LABEL = 22
_BLANKS = re.compile(r"\s+")


def local_time(at: datetime | None) -> str:
    """``2026-11-30 10:00:00`` in China Standard Time; ``-`` for no time."""
    if at is None:
        return "-"
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def mask_email(email: str) -> str:
    """``z***@example.com``: the first character of the mailbox, the domain; ``***`` without an ``@``."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_recipient(recipient: str) -> str:
    """A message's recipient: an email address or a phone number, masked."""
    return mask_email(recipient) if "@" in recipient else mask_msisdn(recipient)


def _text(value: str, width: int | None = None) -> str:
    """Free text on one line: phone numbers masked, runs of blanks and line breaks as one space."""
    line = _BLANKS.sub(" ", redact_phone_numbers(value)).strip()
    if width is not None and len(line) > width:
        line = line[:width - 1] + "…"
    return line


def _width(text: str) -> int:
    """Columns the text takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (and at least one space after it)."""
    return text + " " * max(width - _width(text), 1)


def _value(value: object) -> str:
    if value is None or value == "" or value == ():
        return "-"
    if isinstance(value, datetime):
        return local_time(value)
    enum_value = getattr(value, "value", None)
    return str(enum_value) if isinstance(enum_value, str) else str(value)


def _row(label: str, value: object) -> str:
    return f"  {_pad(label, _LABEL)}{_value(value)}"


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(ids)


def _header(rec: CaseRecord) -> list[str]:
    received, classified = rec.received, rec.classified
    lines = [f"Complaint {rec.complaint_id}", _row("kind", rec.kind), _row("status", rec.status),
             _row("category", rec.category), _row("priority", rec.priority),
             _row("owner (首问负责人)", _text(rec.owner or "")), _row("handler", _text(rec.handler or "")),
             _row("team", _text(rec.team or ""))]
    if len(rec.handlers) > 1:
        lines.append(_row("handlers", _text(_ids(rec.handlers))))
    lines.append(_row("channel", received.channel if received is not None else None))
    if received is not None:
        customer = received.customer
        who = mask_msisdn(customer.msisdn) + (f", {mask_email(customer.email)}" if customer.email else "")
        lines.append(_row("customer", f"{who} ({customer.tier.value})"))
        region = " ".join(p for p in (received.region.province, received.region.city, received.region.district) if p)
        lines.append(_row("region", region))
    lines.append(_row("received at", received.received_at if received is not None else None))
    first = rec.first_contact_at
    lines.append(_row("first contact at", first and f"{local_time(first)} (regulatory period start)"))
    if rec.first_response_at is not None:
        lines.append(_row("first response at", rec.first_response_at))
    if rec.regulator is not None:
        lines.append(_row("regulator case no", rec.regulator.case_no))
        if rec.regulator.reply_by is not None:
            lines.append(_row("regulator reply by", rec.regulator.reply_by))
    follow_up_of = rec.attached_to or (classified.follow_up_of if classified is not None else None)
    for label, value in (("repeat of (重复投诉)", rec.repeat_of), ("follow-up of (催单)", follow_up_of),
                         ("merged into", rec.merged_into), ("merged from", _ids(rec.merged_from))):
        if value:
            lines.append(_row(label, value))
    follow_ups = f"{len(rec.follow_ups)}" + (f": {_ids(rec.follow_ups)}" if rec.follow_ups else "")
    lines.append(_row("follow-ups", follow_ups))
    lines.append(_row("reopened", f"{rec.reopen_count} time(s)"))
    if rec.closed_at is not None:
        lines.append(_row("ended at", rec.closed_at))
    if rec.held:
        lines.append(_row("messages held", f"{len(rec.held)} (quiet hours)"))
    if rec.parked:
        lines.append(_row("updates parked", f"{len(rec.parked)} (waiting for the receipt)"))
    lines.append(_row("updated at", rec.updated_at))
    return lines


def _resolution(rec: CaseRecord) -> list[str]:
    res = rec.resolution
    if res is None:
        return []
    lines = ["", "Resolution (处理结果)", _row("code", res.code), _row("root cause", res.root_cause),
             _row("department", res.responsible_department)]
    if res.refund_fen is not None:
        lines.append(_row("refund", f"{yuan(res.refund_fen)} yuan"))
    if res.compensation_fen is not None:
        lines.append(_row("compensation", f"{yuan(res.compensation_fen)} yuan"))
    lines.append(_row("note", _text(res.note)))
    lines.append(_row("resolved at", rec.resolved_at))
    if rec.resolutions > 1:
        lines.append(_row("resolutions", rec.resolutions))
    return lines


def _callback(rec: CaseRecord) -> list[str]:
    cb = rec.callback
    if cb is None:
        return []
    satisfied = None if cb.satisfied is None else ("yes" if cb.satisfied else "no")
    return ["", "Callback (回访)", _row("due at", cb.due_at), _row("attempts", cb.attempts),
            _row("outcome", cb.outcome), _row("answer", _text(cb.answer or "")), _row("satisfied", satisfied),
            _row("at", cb.at)]


def _marker(entry: TimelineEntry, own_follow_ups: frozenset[str]) -> str:
    if entry.from_complaint is None:
        return ""
    if entry.change is CaseChange.FOLLOW_UP and entry.from_complaint in own_follow_ups:
        return f"[contact {entry.from_complaint}] "
    return f"[from {entry.from_complaint}] "


def _timeline(rec: CaseRecord) -> list[str]:
    entries = sorted(rec.timeline, key=lambda e: e.at)  # stable: entries of one instant keep their order
    lines = ["", f"Timeline ({len(entries)} entries, China time)"]
    own = frozenset(rec.follow_ups)
    for e in entries:
        status = e.status.value if e.status is not None else "-"
        detail = _text(e.detail, DETAIL_WIDTH)
        columns = (_pad(e.change.value, 19), _pad(_text(e.actor) or "-", 13), _pad(status, 13),
                   _pad(e.reason_code or "-", 21))
        lines.append(f"  {local_time(e.at)}  {''.join(columns)}{_marker(e, own)}{detail}".rstrip())
    return lines


def _notes(rec: CaseRecord) -> list[str]:
    if not rec.notes:
        return []
    lines = ["", f"Notes ({len(rec.notes)})"]
    lines.extend(f"  {local_time(n.at)}  {_text(n.author)}: {_text(n.text)}" for n in rec.notes)
    return lines


def render_timeline(record: CaseRecord) -> str:
    """One case as text for a terminal: the header, the resolution, the callback, the timeline in time
    order (one line per entry), then the notes. No phone number in it (masked, also inside free text)."""
    lines = [*_header(record), *_resolution(record), *_callback(record), *_timeline(record), *_notes(record)]
    return "\n".join(lines) + "\n"


# -- JSON ------------------------------------------------------------------------------------------

def _edit(obj: Any, path: tuple[str, ...], fn: Callable[[Any], Any]) -> None:
    """Apply ``fn`` to the value at ``path`` in nested dicts and lists (``*`` = every item of a list)."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                if rest:
                    _edit(item, rest, fn)
                elif item is not None:
                    obj[i] = fn(item)
        return
    if not isinstance(obj, dict) or obj.get(head) is None:
        return
    if rest:
        _edit(obj[head], rest, fn)
    else:
        obj[head] = fn(obj[head])


def _redact(value: Any) -> Any:
    return redact_phone_numbers(value) if isinstance(value, str) else value


def _redact_values(value: Any) -> Any:
    return {k: _redact(v) for k, v in value.items()} if isinstance(value, dict) else value


#: Where the record holds personal data, and how each is masked in :func:`record_json`.
_MASKED: tuple[tuple[tuple[str, ...], Callable[[Any], Any]], ...] = (
    (("received", "customer", "msisdn"), mask_msisdn),
    (("received", "customer", "email"), mask_email),
    (("received", "text"), _redact),
    (("received", "channel_ref"), _redact),
    (("received", "attachments", "*", "name"), _redact),
    (("classified", "explanation", "*"), _redact),
    (("owner",), _redact),
    (("handler",), _redact),
    (("team",), _redact),
    (("handlers", "*"), _redact),
    (("timeline", "*", "actor"), _redact),
    (("timeline", "*", "detail"), _redact),
    (("notes", "*", "author"), _redact),
    (("notes", "*", "text"), _redact),
    (("resolution", "note"), _redact),
    (("held", "*", "event", "recipient"), mask_recipient),
    (("held", "*", "event", "subject"), _redact),
    (("held", "*", "event", "text"), _redact),
    (("held", "*", "event", "parameters"), _redact_values),
    (("parked", "*", "raw"), _redact),
)


def record_json(record: CaseRecord) -> dict[str, Any]:
    """The record as JSON (``model_dump(mode="json")``), with the customer's phone number and email
    masked, the recipients of held messages masked, and phone numbers in free text masked."""
    data: dict[str, Any] = record.model_dump(mode="json")
    for path, fn in _MASKED:
        _edit(data, path, fn)
    return data
