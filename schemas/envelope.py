"""The CloudEvents 1.0 envelope that every record on every topic carries (structured JSON mode)."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import Field, create_model

from complaint_stream.schemas.base import AwareDatetime, EventModel, Payload

D = TypeVar("D", bound=Payload)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class Envelope(EventModel, Generic[D]):
    """CloudEvents 1.0 attributes around one payload. ``subject`` is the complaint id."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, description="URI-reference of the producer, e.g. /channels/hotline.")
    type: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    subject: str = Field(min_length=1, max_length=160)
    datacontenttype: Literal["application/json"] = "application/json"
    data: D


def wrap(payload: D, *, source: str, subject: str, event_id: str | None = None,
         time: datetime | None = None) -> Envelope[D]:
    """Put a payload into a new envelope of its own event type."""
    model = envelope_type(type(payload))
    return cast(Envelope[D], model(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        data=payload,
    ))


@functools.cache
def envelope_type(payload_cls: type[Payload]) -> type[Envelope[Any]]:
    """The concrete envelope model of one payload class, built once.

    A subclass of ``Envelope[payload_cls]`` whose ``type`` is the literal event type, so a
    union of envelopes is discriminated by ``type`` without trying each member.
    """
    if not payload_cls.event_type:
        raise TypeError(f"{payload_cls.__qualname__} has no event_type")
    generic = cast(type[Envelope[Any]], Envelope[payload_cls])  # type: ignore[valid-type]
    literal: Any = Literal.__getitem__(payload_cls.event_type)
    return create_model(
        f"Envelope[{payload_cls.__name__}]",
        __base__=generic,
        __module__=__name__,
        __doc__=f"CloudEvents 1.0 envelope of {payload_cls.__name__} ({payload_cls.event_type}).",
        type=(literal, Field(min_length=1, max_length=128)),
    )
