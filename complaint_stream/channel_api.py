"""The Python API for channel systems: submit complaints to the intake topic.

    from complaint_stream.channel_api import ChannelPublisher
    with ChannelPublisher(load_settings()) as pub:
        result = pub.submit({"channel": "app", "channel_ref": "APP-1", ...})
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from complaint_stream.domain.intake import SubmissionLimits
from complaint_stream.kafka.records import EnvelopeProducer, RecordTooLarge, human_size
from complaint_stream.schemas import (
    ChannelSubmission,
    DeadLetterKind,
    DecodeError,
    Envelope,
    FieldError,
    dead_letter,
    wrap,
)
from complaint_stream.schemas.codec import field_errors
from complaint_stream.settings import Settings
from complaint_stream.topics import DEAD_LETTERS, SUBMISSIONS


class SubmissionRejected(ValueError):
    """A submission failed validation; ``reason`` lists the fields at fault."""

    def __init__(self, reason: str, fields: tuple[FieldError, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


def validate_submission(obj: Mapping[str, Any] | ChannelSubmission, settings: Settings | None = None,
                        now: datetime | None = None) -> ChannelSubmission:
    """Validate and normalise one submission, or raise :class:`SubmissionRejected`.

    With the limits and the validation context the intake stage decodes with
    (:meth:`SubmissionLimits.context <complaint_stream.domain.intake.SubmissionLimits.context>`, from the same
    settings: ``MAX_TEXT_CHARS``, ``MAX_FUTURE_SKEW_MINUTES``, ``MAX_AGE_DAYS``), so what is published here is
    what intake accepts. Without settings, the schema's default limits."""
    if isinstance(obj, ChannelSubmission):
        return obj
    if not isinstance(obj, Mapping):
        raise SubmissionRejected(f"expected a JSON object, got {type(obj).__name__}")
    limits = SubmissionLimits() if settings is None else SubmissionLimits.from_settings(settings)
    try:
        return ChannelSubmission.model_validate(obj, context=limits.context(now or datetime.now(UTC)))
    except ValidationError as exc:
        fields = field_errors(exc)
        raise SubmissionRejected("; ".join(f"{f.loc}: {f.msg}" for f in fields), fields) from exc


def submission_envelope(sub: ChannelSubmission) -> Envelope[ChannelSubmission]:
    return wrap(sub, source=f"/channels/{sub.channel.value}", subject=sub.complaint_id or sub.dedup_key)


@dataclass
class PublishSummary:
    """Outcome of publishing many lines."""

    sent: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return len(self.rejected)


UTF8_BOM = b"\xef\xbb\xbf"


class NotText(ValueError):
    """A line of input that is not UTF-8 text (binary data); the message says where."""


def line_text(line: bytes | str, number: int = 0) -> str:
    """The text of one line of input as read from a file in binary mode: UTF-8, without its line break
    (nor a byte-order mark on line 1). Raises :class:`NotText` naming the first offending byte (its
    offset in the line, from 0): invalid UTF-8, or a NUL byte, which no JSON text contains."""
    raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")
    raw = raw.rstrip(b"\r\n")
    if number == 1:
        raw = raw.removeprefix(UTF8_BOM)
    nul = raw.find(b"\x00")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not 0 <= nul < exc.start:
            raise NotText(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    if nul >= 0:
        raise NotText(f"not text: NUL byte at offset {nul}")
    return text


@dataclass
class _InFlight:
    """A record handed to the producer: a line's submission, or the dead letter of a rejected line."""

    number: int
    raw: bytes
    future: Any
    dead_letter_of: str | None = None  # the reason the line was rejected, for a dead letter


class ChannelPublisher:
    """Validates submissions and sends them to the intake topic, keyed by channel and reference."""

    #: How long ``publish_lines`` waits at the end for the broker to acknowledge what is in flight.
    flush_timeout: float = 60.0

    def __init__(self, settings: Settings, producer: EnvelopeProducer | None = None):
        self.settings = settings
        self._producer = producer if producer is not None else EnvelopeProducer(settings)

    def submit(self, obj: Mapping[str, Any] | ChannelSubmission, *, wait: bool = True) -> Envelope[ChannelSubmission]:
        """Validate and send one complaint; with ``wait`` block until the broker acknowledged it.

        Raises :class:`SubmissionRejected`, ``RecordTooLarge`` (never sent) or the delivery error."""
        sub = validate_submission(obj, self.settings)
        env = submission_envelope(sub)
        future = self._producer.send(SUBMISSIONS, sub.dedup_key, env)
        if wait:
            future.get(timeout=30)
        return env

    def publish_lines(self, lines: Iterable[bytes | str], source_name: str = "-",
                      summary: PublishSummary | None = None) -> PublishSummary:
        """Send JSON lines (bytes as read from a binary file, or text); a bad line is reported with its
        number and reason, the rest still go.

        Rejected lines (not UTF-8 text, not JSON, not a valid submission, a record too large to send, or
        one the broker refused) also go to the dead-letter topic (stage ``publish``) with their original
        bytes (the head, size and SHA-256 of a huge one), so nothing a channel handed over is lost. A
        delivery that timed out is reported but not dead-lettered (the dead letter would not get through
        either). Pass ``summary`` to keep what was done so far when an exception ends the run (the
        cluster became unreachable).
        """
        summary = summary if summary is not None else PublishSummary()
        pending: deque[_InFlight] = deque()
        for number, line in enumerate(lines, start=1):
            raw = (line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")).rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                env = self._envelope(line, number)
                future = self._producer.send(SUBMISSIONS, env.data.dedup_key, env)
            except DecodeError as reason:
                self._reject(number, raw, source_name, reason, summary, pending)
            except RecordTooLarge as exc:
                self._reject(number, raw, source_name, DecodeError(DeadLetterKind.DELIVERY_FAILED, str(exc)),
                             summary, pending)
            else:
                pending.append(_InFlight(number, raw, future))
            self._settle(pending, summary, source_name)
        self._finish(pending, summary, source_name)
        summary.rejected.sort()
        return summary

    def _envelope(self, line: bytes | str, number: int) -> Envelope[ChannelSubmission]:
        """The envelope of one line, or :class:`DecodeError` saying what is wrong with it."""
        try:
            obj = json.loads(line_text(line, number))
        except NotText as exc:
            raise DecodeError(DeadLetterKind.INVALID_ENCODING, str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise DecodeError(DeadLetterKind.INVALID_JSON, f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
        except RecursionError as exc:
            raise DecodeError(DeadLetterKind.INVALID_JSON, "invalid JSON: nested too deeply") from exc
        try:
            return submission_envelope(validate_submission(obj, self.settings))
        except SubmissionRejected as exc:
            raise DecodeError(DeadLetterKind.SCHEMA_VIOLATION, exc.reason, exc.fields) from exc

    def _reject(self, number: int, raw: bytes, source_name: str, reason: DecodeError, summary: PublishSummary,
                pending: deque[_InFlight]) -> None:
        summary.rejected.append((number, reason.message))
        now = datetime.now(UTC)
        origin = f"{source_name}:{number}"
        dl = dead_letter(stage="publish", source_topic=SUBMISSIONS.name, value=raw, error=reason, failed_at=now,
                         headers=[("source-line", origin.encode())])
        try:
            future = self._producer.send(DEAD_LETTERS, origin, wrap(dl, source="/cli/publish", subject=origin[:160],
                                                                    time=now))
        except RecordTooLarge as exc:
            self._dead_letter_failed(number, reason.message, exc, summary)
        else:
            pending.append(_InFlight(number, raw, future, dead_letter_of=reason.message))

    @staticmethod
    def _dead_letter_failed(number: int, reason: str, exc: BaseException, summary: PublishSummary) -> None:
        entry = (number, reason)
        if entry in summary.rejected:
            summary.rejected.remove(entry)
        summary.rejected.append((number, f"{reason}; its dead letter was not written either: {exc}"))

    def _settle(self, pending: deque[_InFlight], summary: PublishSummary, source_name: str) -> None:
        """Account for the records at the head of ``pending`` whose delivery has completed."""
        while pending and pending[0].future.is_done:
            self._account(pending.popleft(), summary, source_name, pending)

    def _account(self, item: _InFlight, summary: PublishSummary, source_name: str, pending: deque[_InFlight]) -> None:
        error = item.future.exception
        if item.dead_letter_of is not None:
            if error is not None:
                self._dead_letter_failed(item.number, item.dead_letter_of, error, summary)
        elif error is None:
            summary.sent += 1
        elif getattr(error, "retriable", False):  # a timeout, a lost connection: its dead letter would fail too
            summary.rejected.append((item.number, f"delivery failed: {error}"))
        else:  # the broker refused the record itself (too large for the topic, invalid ...)
            reason = str(error)
            if type(error).__name__ in ("MessageSizeTooLargeError", "RecordTooLargeError"):
                reason = f"the broker refused the record of {human_size(len(item.raw))} or more as too large: {error}"
            self._reject(item.number, item.raw, source_name,
                         DecodeError(DeadLetterKind.DELIVERY_FAILED, f"delivery failed: {reason}"), summary, pending)

    def _finish(self, pending: deque[_InFlight], summary: PublishSummary, source_name: str) -> None:
        """Wait at most ``flush_timeout`` for what is in flight (dead letters of late failures included);
        what is still unacknowledged then is reported as such."""
        from kafka.errors import KafkaTimeoutError

        deadline = time.monotonic() + self.flush_timeout
        while pending and (left := deadline - time.monotonic()) > 0:
            try:
                self._producer.flush(timeout=left)
            except KafkaTimeoutError:
                pass
            ready: list[_InFlight] = []
            waiting: list[_InFlight] = []
            for item in pending:
                (ready if item.future.is_done else waiting).append(item)
            if not ready:
                break
            pending.clear()
            pending.extend(waiting)
            for item in ready:
                self._account(item, summary, source_name, pending)
        why = f"no acknowledgement from Kafka at {self.settings.bootstrap} within {self.flush_timeout:g} s"
        for item in pending:  # the outcome is unknown: the broker may still have it
            if item.dead_letter_of is not None:
                self._dead_letter_failed(item.number, item.dead_letter_of, RuntimeError(why), summary)
            else:
                summary.rejected.append((item.number, f"delivery failed: {why}"))
        pending.clear()

    def close(self) -> None:
        # Bounded: after publish_lines nothing is in flight; when the cluster went away, do not hang.
        self._producer.close(timeout=max(self.settings.kafka_connect_timeout_seconds, 1.0))

    def __enter__(self) -> ChannelPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
