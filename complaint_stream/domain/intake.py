"""Intake decisions (受理): accept a validated submission as a new complaint, or recognise a retry.

Pure: takes the decoded submission, what the de-duplication state knows about
its channel reference, the time and the policy; returns a decision.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.privacy import customer_key
from complaint_stream.schemas import (
    ChannelSubmission,
    ComplaintReceived,
    Envelope,
    wrap,
)

EVENT_NAMESPACE = uuid.UUID("6f1c3f8e-6d1e-4a55-9d0e-2b8f3b1c7a10")


@dataclass(frozen=True)
class IntakePolicy:
    """How intake behaves; built from settings by the worker."""

    dedup_window: timedelta
    customer_key_secret: str | SecretStr = field(repr=False)  # settings pass a SecretStr
    source: str = "/workers/intake"


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


def complaint_id_for(submission: Envelope[ChannelSubmission]) -> str:
    """The channel's id when it gave one; otherwise derived from the submission event.

    Derived ids are deterministic (same submission event → same id), so a
    replay after a crash re-emits the same complaint instead of a second one.
    Shape: CMP<yyyymmdd in China time>-<12 base32 chars>.
    """
    data = submission.data
    if data.complaint_id:
        return data.complaint_id
    digest = hashlib.sha256(f"{data.dedup_key}\x1f{submission.source}\x1f{submission.id}".encode()).digest()
    day = data.occurred_at.astimezone(CHINA_TZ).strftime("%Y%m%d")
    return f"CMP{day}-{base64.b32encode(digest).decode()[:12]}"


def event_id(complaint_id: str, stage: str) -> str:
    """Deterministic CloudEvent id of a stage's event for one complaint (consumers de-duplicate on it)."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{complaint_id}/{stage}"))


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
        occurred_at=data.occurred_at,
        received_at=now,
        attachments=data.attachments,
    )
    event = wrap(received, source=policy.source, subject=cid, event_id=event_id(cid, "received"), time=now)
    return Accepted(event, SeenSubmission(cid, now))


def expired(seen: SeenSubmission, now: datetime, policy: IntakePolicy) -> bool:
    """True when the entry can be forgotten (outside the de-duplication window)."""
    return now - seen.first_seen > policy.dedup_window
