"""The CloudEvents 1.0 envelope that every record on every topic carries (structured JSON mode)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from complaint_stream.schemas.base import EventModel, Payload

D = TypeVar("D", bound=Payload)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class Envelope(EventModel, Generic[D]):
    """CloudEvents 1.0 attributes around one payload. ``subject`` is the complaint id."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, description="URI-reference of the producer, e.g. /channels/hotline.")
    type: str = Field(min_length=1, max_length=128)
    time: datetime
    subject: str = Field(min_length=1, max_length=160)
    datacontenttype: Literal["application/json"] = "application/json"
    data: D


def wrap(payload: D, *, source: str, subject: str, event_id: str | None = None,
         time: datetime | None = None) -> Envelope[D]:
    """Put a payload into a new envelope of its own event type."""
    return Envelope[type(payload)](  # type: ignore[misc]
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        time=time or datetime.now(timezone.utc),
        subject=subject,
        data=payload,
    )


def envelope_type(payload_cls: type[D]) -> type[Envelope[Any]]:
    """The concrete envelope model of one payload class (cached by pydantic)."""
    return Envelope[payload_cls]  # type: ignore[valid-type]
