"""The shape every processing stage has: a pure state machine.

A stage turns one event and the state kept for that event's key into a new
state and the events it emits::

    apply(state, event, now) -> (state, outputs)
    due(state, now)          -> (state, outputs)     # timers, when the stage has them

``state`` is ``None`` when nothing is kept for the key yet; returning ``None``
forgets the key. Stages import no faust, Kafka client or prometheus_client
(an import-linter contract enforces it): the generic runtime in
``complaint_stream.workers.runtime`` drives them from Kafka, and
:func:`run_in_event_time` drives them from a file (``complaints replay``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from complaint_stream.schemas import Envelope, Payload
from complaint_stream.topics import TopicSpec

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Output:
    """One event a stage emits: where it goes, under which record key."""

    topic: TopicSpec
    key: str
    event: Envelope[Any]


class Stage(Protocol[S]):
    """A pure processing stage. ``state_type`` is what the runtime's codec stores per key
    (``None``: the stage keeps no state)."""

    name: str
    consumes: tuple[type[Payload], ...]
    #: Every topic its outputs may go to (the runtime refuses any other, and a test checks the catalogue).
    produces: tuple[TopicSpec, ...]
    state_type: Any
    #: Seconds between two ``due`` sweeps over every key (``None``: no timers).
    timer_interval: float | None

    def state_key(self, event: Envelope[Any]) -> str:
        """The key whose state this event reads and changes."""
        ...

    def decode_context(self, now: datetime) -> dict[str, Any] | None:
        """Validation context for this stage's input (e.g. the time limits of a submission)."""
        ...

    def prepare(self, events: Sequence[Envelope[Any]]) -> None:
        """Called with a batch's events before they are applied one by one: a stage may compute what
        is a pure function of an event alone (a classification) for the whole batch at once. It must
        not change what ``apply`` decides, only how fast."""
        ...

    def apply(self, state: S | None, event: Envelope[Any], now: datetime) -> tuple[S | None, Sequence[Output]]:
        ...

    def due(self, state: S, now: datetime) -> tuple[S | None, Sequence[Output]]:
        ...


class StageBase(Generic[S]):
    """Defaults for the optional parts of a stage: no decode context, no timers."""

    timer_interval: float | None = None

    def decode_context(self, now: datetime) -> dict[str, Any] | None:
        return None

    def prepare(self, events: Sequence[Envelope[Any]]) -> None:
        return None

    def due(self, state: S, now: datetime) -> tuple[S | None, Sequence[Output]]:
        return state, ()


class UndeclaredOutput(RuntimeError):
    """A stage emitted to a topic it does not declare in ``produces``: a bug in the stage."""


def check_outputs(stage: Stage[Any], outputs: Sequence[Output]) -> Sequence[Output]:
    for out in outputs:
        if out.topic not in stage.produces:
            raise UndeclaredOutput(f"stage {stage.name} emitted to {out.topic.name}, which it does not declare")
    return outputs


def event_time(event: Envelope[Any]) -> datetime:
    """When an event happened, for replays: the CloudEvent ``time``."""
    return event.time


def run_in_event_time(stage: Stage[Any], events: Iterable[Envelope[Any]], *,
                      until: datetime | None = None,
                      state: dict[str, Any] | None = None) -> Iterator[Output]:
    """Drive a stage without a broker, in event time.

    Events are applied in the order of their ``time`` (stable for equal times),
    each with ``now`` = its own time, as a live worker would have seen them
    with no lag. Before each event, and finally up to ``until``, timers fire
    for every key whose sweep falls due, as the runtime's periodic sweep would.
    ``state`` (key -> state) may be passed in to start from, and is updated.
    """
    table: dict[str, Any] = {} if state is None else state
    ordered = sorted(events, key=event_time)
    interval = stage.timer_interval
    next_sweep: datetime | None = None

    def sweep_until(t: datetime) -> Iterator[Output]:
        nonlocal next_sweep
        if interval is None:
            return
        step = timedelta(seconds=interval)
        if next_sweep is None:
            next_sweep = t + step
            return
        while next_sweep <= t:
            for key in list(table):
                new, outputs = stage.due(table[key], next_sweep)
                _store(table, key, new)
                yield from check_outputs(stage, outputs)
            next_sweep += step

    stage.prepare(ordered)
    for event in ordered:
        now = event_time(event)
        yield from sweep_until(now)
        key = stage.state_key(event)
        new, outputs = stage.apply(table.get(key), event, now)
        _store(table, key, new)
        yield from check_outputs(stage, outputs)
    if until is not None:
        yield from sweep_until(until)


def _store(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
