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

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

    def next_due(self, state: S) -> datetime | None:
        """The earliest time ``due`` may change ``state`` or emit anything: never later than that (earlier
        only costs the runtime a look); ``None``: not before an event changes the state. The runtime's
        sweep skips a key until then instead of decoding every state at every interval."""
        ...


#: ``next_due`` of a stage that cannot tell: look at every sweep.
ALWAYS = datetime.min.replace(tzinfo=UTC)


class StageBase(Generic[S]):
    """Defaults for the optional parts of a stage: no decode context, no timers."""

    timer_interval: float | None = None
    #: True when the stage's outputs depend on the order in which keys of different input partitions meet
    #: (the dispatcher: a team's agents go to its complaints first come, first served). Any order is a
    #: correct run, so a replay in event time is not the oracle of a live run for such a stage.
    order_dependent: bool = False

    def decode_context(self, now: datetime) -> dict[str, Any] | None:
        return None

    def prepare(self, events: Sequence[Envelope[Any]]) -> None:
        return None

    def due(self, state: S, now: datetime) -> tuple[S | None, Sequence[Output]]:
        return state, ()

    def next_due(self, state: S) -> datetime | None:
        return ALWAYS


class Refused(Exception):
    """A stage's rules refuse a valid event: it is not applied (the state stays as it was) and the runtime
    dead-letters it with the rule it broke (``DeadLetterKind.REFUSED``, message ``<rule>: <detail>``)."""

    def __init__(self, rule: str, detail: str = ""):
        super().__init__(f"{rule}: {detail}" if detail else rule)
        self.rule = rule
        self.detail = detail


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
                      state: dict[str, Any] | None = None,
                      on_refused: Callable[[Envelope[Any], Refused], None] | None = None,
                      feedback: Iterable[TopicSpec] = ()) -> Iterator[Output]:
    """Drive a stage without a broker, in event time.

    Events are applied in the order of their ``time`` (stable for equal times),
    each with ``now`` = its own time, as a live worker would have seen them
    with no lag. Before each event, and finally up to ``until``, timers fire
    for every key whose sweep falls due, as the runtime's periodic sweep would.
    ``state`` (key -> state) may be passed in to start from, and is updated. An event the stage
    refuses (:class:`Refused`) changes nothing and goes to ``on_refused`` (raised when there is none).
    Outputs to a topic in ``feedback`` (one the stage also reads, such as the lifecycle's links between
    cases) are yielded and also applied in turn, at their own time, as the worker would read them back.
    """
    table: dict[str, Any] = {} if state is None else state
    loop_topics = {t.name for t in feedback}
    queue: list[tuple[datetime, int, Envelope[Any]]] = []
    order = itertools.count()
    for event in events:
        heapq.heappush(queue, (event_time(event), next(order), event))
    interval = stage.timer_interval
    step = timedelta(seconds=interval) if interval is not None else None
    first_sweep: datetime | None = None
    last_sweep: datetime | None = None
    rank: dict[str, int] = {key: n for n, key in enumerate(table)}  # the table's (insertion) order
    # When each key's timer is next worth a look (the stage's next_due), as the runtime's index: a sweep
    # looks only at the keys due by its instant, so a replay over weeks costs what falls due.
    due_at: dict[str, datetime] = {}
    due_heap: list[tuple[datetime, int, str]] = []

    def note(key: str) -> None:
        if step is None:
            return
        if key not in table:
            due_at.pop(key, None)
            return
        when = stage.next_due(table[key])
        if when is None:
            due_at.pop(key, None)
            return
        due_at[key] = when
        heapq.heappush(due_heap, (when, next(order), key))

    def store(key: str, new: Any) -> None:
        if key not in table and new is not None:
            rank[key] = next(order)
        _store(table, key, new)
        note(key)

    def emit(outputs: Sequence[Output], now: datetime) -> Iterator[Output]:
        for out in check_outputs(stage, outputs):
            if out.topic.name in loop_topics:
                heapq.heappush(queue, (max(event_time(out.event), now), next(order), out.event))
            yield out

    def sweep_instant(when: datetime) -> datetime:
        """The first sweep of the runtime's fixed interval at or after ``when``, after the last one done."""
        assert step is not None and first_sweep is not None
        earliest = first_sweep if last_sweep is None else last_sweep + step
        if when <= earliest:
            return earliest
        return first_sweep + step * -((first_sweep - when) // step)  # the grid's ceiling

    def sweep_until(t: datetime) -> Iterator[Output]:
        nonlocal first_sweep, last_sweep
        if step is None:
            return
        if first_sweep is None:
            first_sweep = t + step
            return
        while due_heap:
            when, _n, key = due_heap[0]
            if due_at.get(key) != when:  # stale: the key was changed or forgotten since
                heapq.heappop(due_heap)
                continue
            at = sweep_instant(when)
            if at > t:
                return
            due_keys = []
            while due_heap and sweep_instant(due_heap[0][0]) <= at:
                when, _n, key = heapq.heappop(due_heap)
                if due_at.get(key) == when:
                    due_keys.append(key)
                    del due_at[key]
            due_keys.sort(key=rank.__getitem__)  # in the table's order, as the runtime's sweep
            for key in due_keys:
                if key in table:
                    new, outputs = stage.due(table[key], at)
                    store(key, new)
                    yield from emit(outputs, at)
            last_sweep = at

    def apply(event: Envelope[Any], now: datetime) -> Iterator[Output]:
        key = stage.state_key(event)
        try:
            new, outputs = stage.apply(table.get(key), event, now)
        except Refused as refusal:
            if on_refused is None:
                raise
            on_refused(event, refusal)
            return
        store(key, new)
        yield from emit(outputs, now)

    for key in list(table):
        note(key)
    stage.prepare([e for _t, _n, e in sorted(queue)])
    while queue:
        now, _n, event = heapq.heappop(queue)
        yield from sweep_until(now)
        yield from apply(event, now)
    if until is not None:
        yield from sweep_until(until)
        while queue:  # what the last sweep fed back
            now, _n, event = heapq.heappop(queue)
            yield from apply(event, now)


def _store(table: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
