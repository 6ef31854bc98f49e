"""The Python API for channel systems: submit complaints to the intake topic.

    from complaint_stream.channel_api import ChannelPublisher
    with ChannelPublisher(load_settings()) as pub:
        result = pub.submit({"channel": "app", "channel_ref": "APP-1", ...})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from complaint_stream.kafka.records import EnvelopeProducer
from complaint_stream.schemas import ChannelSubmission, DecodeError, Envelope, FieldError, dead_letter, wrap
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
    """Validate and normalise one submission, or raise :class:`SubmissionRejected`."""
    if isinstance(obj, ChannelSubmission):
        return obj
    if not isinstance(obj, Mapping):
        raise SubmissionRejected(f"expected a JSON object, got {type(obj).__name__}")
    context: dict[str, Any] = {"now": now or datetime.now(UTC)}
    if settings is not None:
        context["max_text_chars"] = settings.max_text_chars
    try:
        return ChannelSubmission.model_validate(obj, context=context)
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


class ChannelPublisher:
    """Validates submissions and sends them to the intake topic, keyed by channel and reference."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._producer = EnvelopeProducer(settings)

    def submit(self, obj: Mapping[str, Any] | ChannelSubmission, *, wait: bool = True) -> Envelope[ChannelSubmission]:
        """Validate and send one complaint; with ``wait`` block until the broker acknowledged it."""
        sub = validate_submission(obj, self.settings)
        env = submission_envelope(sub)
        future = self._producer.send(SUBMISSIONS, sub.dedup_key, env)
        if wait:
            future.get(timeout=30)
        return env

    def publish_lines(self, lines: Iterable[str], source_name: str = "-") -> PublishSummary:
        """Send JSON lines; a bad line is reported with its number and reason, the rest still go.

        Rejected lines also go to the dead-letter topic (stage ``publish``) with their
        original bytes, so nothing a channel handed over is lost.
        """
        summary = PublishSummary()
        futures = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                reason = DecodeError("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}")
            else:
                try:
                    env = submission_envelope(validate_submission(obj, self.settings))
                except SubmissionRejected as exc:
                    reason = DecodeError("schema_violation", exc.reason, exc.fields)
                else:
                    futures.append((number, self._producer.send(SUBMISSIONS, env.data.dedup_key, env)))
                    continue
            summary.rejected.append((number, reason.message))
            self._dead_letter(line, number, source_name, reason)
        self._producer.flush(timeout=60)
        for number, fut in futures:
            try:
                fut.get(timeout=30)
                summary.sent += 1
            except Exception as exc:
                summary.rejected.append((number, f"delivery failed: {exc}"))
        summary.rejected.sort()
        return summary

    def _dead_letter(self, line: str, number: int, source_name: str, reason: DecodeError) -> None:
        now = datetime.now(UTC)
        dl = dead_letter(stage="publish", source_topic=SUBMISSIONS.name, value=line.rstrip("\r\n").encode("utf-8"),
                         error=reason, failed_at=now, headers=[("source-line", f"{source_name}:{number}".encode())])
        self._producer.send(DEAD_LETTERS, f"{source_name}:{number}",
                            wrap(dl, source="/cli/publish", subject=f"{source_name}:{number}"[:160], time=now))

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> ChannelPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
