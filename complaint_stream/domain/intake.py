"""Intake decisions (受理): accept a validated submission as a new complaint, or recognise a retry.

Pure: takes the decoded submission, what the de-duplication state knows about
its channel reference, the time and the policy; returns a decision. The limits
a submission is validated against (:class:`SubmissionLimits`) live here too, so
the intake stage and the publisher that channel systems use apply the same ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import SecretStr

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.privacy import customer_key
from complaint_stream.schemas import (
    ChannelSubmission,
    ComplaintReceived,
    Envelope,
    Limits,
    wrap,
)
from complaint_stream.schemas.base import COMPLAINT_ID_MAX_LENGTH
from complaint_stream.schemas.normalise import home_province_code

EVENT_NAMESPACE = uuid.UUID("6f1c3f8e-6d1e-4a55-9d0e-2b8f3b1c7a10")


@dataclass(frozen=True)
class IntakePolicy:
    """How intake behaves; built from settings by the worker."""

    dedup_window: timedelta
    customer_key_secret: str | SecretStr = field(repr=False)  # settings pass a SecretStr
    source: str = "/workers/intake"


class LimitSettings(Protocol):
    """The settings the submission limits come from (``complaint_stream.settings.Settings`` has them)."""

    @property
    def max_text_chars(self) -> int: ...
    @property
    def max_future_skew_minutes(self) -> float: ...
    @property
    def max_age_days(self) -> float: ...


@dataclass(frozen=True)
class SubmissionLimits:
    """The configurable limits a submission is validated against, wherever it is validated.

    The intake stage decodes submissions with :meth:`context` and the publisher
    (``channel_api.validate_submission``) validates with it too, so a channel's
    publish refuses exactly what intake would dead-letter. Defaults are the
    schema's (:class:`~complaint_stream.schemas.Limits`).
    """

    max_text_chars: int = Limits.max_text_chars
    max_future: timedelta = Limits.max_future
    max_age: timedelta = Limits.max_age

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> SubmissionLimits:
        """``MAX_TEXT_CHARS``, ``MAX_FUTURE_SKEW_MINUTES`` and ``MAX_AGE_DAYS``: the one place they are read."""
        return cls(max_text_chars=settings.max_text_chars,
                   max_future=timedelta(minutes=settings.max_future_skew_minutes),
                   max_age=timedelta(days=settings.max_age_days))

    def context(self, now: datetime) -> dict[str, Any]:
        """The pydantic validation context of ``ChannelSubmission`` (see ``schemas/submission.py``)."""
        return {"now": now, "max_text_chars": self.max_text_chars, "max_future": self.max_future,
                "max_age": self.max_age}


@dataclass(frozen=True)
class SeenSubmission:
    """What the de-duplication table remembers about one channel reference."""

    complaint_id: str
    first_seen: datetime

    def to_json(self) -> str:
        return json.dumps({"complaint_id": self.complaint_id, "first_seen": self.first_seen.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> SeenSubmission:
        data = json.loads(text)
        return cls(data["complaint_id"], datetime.fromisoformat(data["first_seen"]))


@dataclass(frozen=True)
class Accepted:
    """A new complaint: emit ``event`` keyed by its complaint id, remember ``seen``."""

    event: Envelope[ComplaintReceived]
    seen: SeenSubmission


@dataclass(frozen=True)
class Duplicate:
    """A retry of a submission already accepted within the window; nothing is emitted."""

    of: SeenSubmission


def id_material(*fields: str) -> str:
    """The fields an id is derived from, encoded unambiguously: a canonical JSON array of strings.

    Joining them with a separator would not do: a field may contain the separator, and then
    ``("a\\x1fb", "c")`` and ``("a", "b\\x1fc")`` would hash alike. JSON escapes quotes and backslashes
    inside a string, so distinct tuples of strings always give distinct texts.
    """
    return json.dumps(fields, separators=(",", ":"))  # ASCII: a lone surrogate is escaped, not an error


#: How a channel's own complaint id is scoped: ``<channel>.<id>``. A channel name has no ``.`` and a
#: channel's id starts with a letter or digit, so the channel can always be read back, and a derived
#: id (``CMP<yyyymmdd>-…``, no ``.``) never looks like one.
CHANNEL_ID_SEPARATOR = "."


def channel_complaint_id(channel: str, channel_id: str) -> str:
    """The complaint id of a complaint whose channel allocated ``channel_id``: scoped by the channel.

    Channels allocate ids independently, so two channels may both send ``2026-000123`` for two different
    complaints; unscoped, both would become one complaint id and one CloudEvent id, and consumers that
    de-duplicate on the id would drop one. ``hotline.2026-000123`` and ``app.2026-000123`` stay apart.
    An id too long to carry its channel prefix within 64 characters becomes ``<channel>._<26 base32
    chars of its SHA-256>`` (a channel's id never starts with ``_``, so the two forms never meet).
    """
    scoped = f"{channel}{CHANNEL_ID_SEPARATOR}{channel_id}"
    if len(scoped) <= COMPLAINT_ID_MAX_LENGTH:
        return scoped
    digest = hashlib.sha256(id_material(channel, channel_id).encode()).digest()
    return f"{channel}{CHANNEL_ID_SEPARATOR}_{base64.b32encode(digest).decode()[:26]}"


def complaint_id_for(submission: Envelope[ChannelSubmission]) -> str:
    """The channel's id, scoped by its channel, when it gave one; otherwise derived from the submission event.

    Derived ids are deterministic (same submission event → same id), so a
    replay after a crash re-emits the same complaint instead of a second one.
    Shape: CMP<yyyymmdd in China time>-<12 base32 chars>, hashed from
    :func:`id_material` of the channel, the channel reference, the event's source and its id.
    """
    data = submission.data
    if data.complaint_id:
        return channel_complaint_id(data.channel.value, data.complaint_id)
    material = id_material(data.channel.value, data.channel_ref, submission.source, submission.id)
    digest = hashlib.sha256(material.encode()).digest()
    day = data.occurred_at.astimezone(CHINA_TZ).strftime("%Y%m%d")
    return f"CMP{day}-{base64.b32encode(digest).decode()[:12]}"


def event_id(complaint_id: str, stage: str) -> str:
    """Deterministic CloudEvent id of a stage's event for one complaint (consumers de-duplicate on it)."""
    return str(uuid.uuid5(EVENT_NAMESPACE, id_material(complaint_id, stage)))


def accept_submission(submission: Envelope[ChannelSubmission], seen: SeenSubmission | None,
                      now: datetime, policy: IntakePolicy) -> Accepted | Duplicate:
    """Decide what one validated submission becomes."""
    if seen is not None and now - seen.first_seen <= policy.dedup_window:
        return Duplicate(seen)
    data = submission.data
    cid = complaint_id_for(submission)
    received = ComplaintReceived(
        complaint_id=cid,
        channel=data.channel,
        channel_ref=data.channel_ref,
        text=data.text,
        customer=data.customer,
        customer_key=customer_key(data.customer.msisdn, policy.customer_key_secret),
        region=data.region,
        language=data.language,
        home_province_code=home_province_code(data.customer.msisdn),
        occurred_at=data.occurred_at,
        received_at=now,
        attachments=data.attachments,
        refers_to=data.refers_to,
        regulator=data.regulator,
    )
    event = wrap(received, source=policy.source, subject=cid, event_id=event_id(cid, "received"), time=now)
    return Accepted(event, SeenSubmission(cid, now))


def expired(seen: SeenSubmission, now: datetime, policy: IntakePolicy) -> bool:
    """True when the entry can be forgotten (outside the de-duplication window)."""
    return now - seen.first_seen > policy.dedup_window
