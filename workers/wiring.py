"""What a worker declares about itself, without faust: its stage's wiring and the state codec.

Kept apart from the runtime so that ``complaints replay`` and the registry
load a stage without importing faust.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import TypeAdapter

from complaint_stream.domain.stage import Stage
from complaint_stream.topics import TopicSpec

S = TypeVar("S")


@dataclass(frozen=True)
class Binding:
    """How one stage is fed: its input topics, the table that keeps its state, and, when the
    inputs are not keyed by the stage's state key, the internal topic that re-keys them first
    (so the table is co-partitioned with the stream that reads and updates it)."""

    stage: Stage[Any]
    inputs: tuple[TopicSpec, ...]
    table: str | None = None
    repartition: TopicSpec | None = None
    #: Serve each key's state over HTTP at ``<prefix><key>`` (``/complaints/`` for the case record).
    http_prefix: str | None = None
    #: Where the table keeps its state: ``memory`` (rebuilt from the whole changelog at every start) or
    #: ``rocksdb`` (on disk under the worker's data directory, one database per partition: a restart reads
    #: only the changelog written since the offset the store persisted). For tables too big to re-read.
    store: Literal["memory", "rocksdb"] = "memory"

    @property
    def stream_topic(self) -> TopicSpec:
        return self.repartition or self.inputs[0]

    @property
    def stream_topics(self) -> tuple[TopicSpec, ...]:
        """What the processing agent reads: the re-keying topic, or every input when they are all keyed by
        the state key already (then they must be co-partitioned: same key, same partition count)."""
        if self.repartition is not None:
            return (self.repartition,)
        counts = {t.partitions for t in self.inputs}
        if len(counts) != 1:
            raise ValueError(f"inputs of {self.stage.name} are not co-partitioned: partition counts {sorted(counts)}")
        return self.inputs


class StateCodec(Generic[S]):
    """A stage's state as bytes in the table and its changelog: one pydantic ``TypeAdapter``
    over the domain type (dataclasses, tuples, datetimes), instead of JSON written per table."""

    def __init__(self, state_type: Any):
        self._adapter: TypeAdapter[S] = TypeAdapter(state_type)

    def dumps(self, state: S) -> bytes:
        return self._adapter.dump_json(state)

    def loads(self, raw: bytes) -> S:
        return self._adapter.validate_json(raw)
