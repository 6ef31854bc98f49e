"""Producing envelopes to catalogued topics and reading them back (kafka-python)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from complaint_stream.kafka.clients import KafkaUnavailable
from complaint_stream.kafka.clients import consumer as make_consumer
from complaint_stream.kafka.clients import producer as make_producer
from complaint_stream.schemas import CONTENT_TYPE, DecodeError, Envelope, decode, encode
from complaint_stream.settings import Settings
from complaint_stream.topics import TopicSpec

HEADERS = [("content-type", CONTENT_TYPE.encode("ascii"))]


def human_size(n: int) -> str:
    """``1.2 MiB``, ``1 MiB``, ``512 KiB``, ``300 bytes``."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


class RecordTooLarge(ValueError):
    """A record larger than one produce request may be (the producer's ``max_request_size``); never sent."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"record of {human_size(size)} exceeds the {human_size(limit)} limit"
                         f" ({size} > {limit} bytes)")
        self.size = size
        self.limit = limit


class EnvelopeProducer:
    """Send envelopes to catalogued topics with a key; idempotent, acks=all."""

    def __init__(self, settings: Settings, **producer_options: Any):
        self._settings = settings
        self._producer = make_producer(settings, **producer_options)

    @property
    def max_request_size(self) -> int:
        return int(self._producer.config["max_request_size"])

    def send(self, topic: TopicSpec, key: str, envelope: Envelope[Any]):
        """Hand one record to the producer; return its future (failures of delivery come back through it).

        Raises :class:`RecordTooLarge` for a record too large to send, and :class:`KafkaUnavailable`
        when the topic's metadata does not arrive within the connect timeout."""
        if type(envelope.data) not in topic.values:
            raise TypeError(f"{type(envelope.data).__name__} does not belong on {topic.name}")
        return self._send(topic, key.encode("utf-8"), encode(envelope))

    def _send(self, topic: TopicSpec, key: bytes, value: bytes):
        from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

        try:
            return self._producer.send(topic.name, key=key, value=value, headers=HEADERS)
        except MessageSizeTooLargeError as exc:
            # kafka-python counts the record's framing too: take its figure when it gives one
            found = re.search(r"(\d+) bytes", str(exc))
            size = int(found.group(1)) if found else len(key) + len(value)
            raise RecordTooLarge(size, self.max_request_size) from exc
        except KafkaTimeoutError as exc:
            s = self._settings
            raise KafkaUnavailable(
                f"Kafka at {s.bootstrap} gave no metadata for topic {topic.name} within"
                f" {s.kafka_connect_timeout_seconds:g} s (is the topic missing? `complaints topics create`)"
            ) from exc

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = 30) -> None:
        self._producer.close(timeout=timeout)

    def __enter__(self) -> EnvelopeProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ConsumedRecord:
    """One record read from a topic: where it was, its key, and the decoded envelope (or why not)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    envelope: Envelope[Any] | None
    error: DecodeError | None


def read_topic(settings: Settings, topic: TopicSpec, *, from_beginning: bool = True,
               max_records: int | None = None, idle_timeout: float = 5.0,
               total_timeout: float | None = None, from_offsets: Mapping[int, int] | None = None,
               to_end: bool = False) -> Iterator[ConsumedRecord]:
    """Tail a topic without a consumer group; stop after ``max_records`` or ``idle_timeout`` s of silence.

    ``from_offsets`` ({partition: offset}, e.g. :func:`end_offsets` taken earlier) starts each partition
    there instead (a partition it does not name: from the beginning). ``to_end`` stops once every partition
    reached the end it had when reading began (no idle wait: for a topic nobody writes to any more)."""
    from kafka import TopicPartition

    consumer = make_consumer(settings, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=int(idle_timeout * 1000))
    try:
        parts = consumer.partitions_for_topic(topic.name)
        deadline = time.monotonic() + 10
        while not parts and time.monotonic() < deadline:
            time.sleep(0.2)
            parts = consumer.partitions_for_topic(topic.name)
        if not parts:
            raise LookupError(f"topic {topic.name} does not exist; run `complaints topics create`")
        tps = [TopicPartition(topic.name, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        for tp in tps:
            if from_offsets is not None and tp.partition in from_offsets:
                consumer.seek(tp, from_offsets[tp.partition])
        remaining: set[int] = set()
        ends: dict[int, int] = {}
        if to_end:
            ends = {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
            remaining = {tp.partition for tp in tps if consumer.position(tp) < ends[tp.partition]}
            if not remaining:
                return
        start = time.monotonic()
        seen = 0
        for msg in consumer:
            envelope, error = None, None
            try:
                envelope = decode(msg.value, topic.values)
            except DecodeError as exc:
                error = exc
            yield ConsumedRecord(msg.topic, msg.partition, msg.offset, msg.timestamp, msg.key,
                                 msg.value, envelope, error)
            seen += 1
            if max_records is not None and seen >= max_records:
                return
            if to_end and msg.offset + 1 >= ends[msg.partition]:
                remaining.discard(msg.partition)
                if not remaining:
                    return
            if total_timeout is not None and time.monotonic() - start > total_timeout:
                return
    finally:
        consumer.close()
