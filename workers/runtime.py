"""The one generic runtime that drives every stage from Kafka (faust-streaming).

A worker is a stage (a pure state machine, :mod:`complaint_stream.domain.stage`)
plus its wiring (:class:`Binding`: input topics, state table, optional
re-keying topic). For each batch of raw records the runtime

1. decodes every record by the stage's declared value types (a dead letter,
   with the original bytes, when it cannot),
2. reads the state of the record's key from the changelog-backed table, calls
   ``stage.apply``, writes the new state back,
3. hands each output to the producer without waiting for it,
4. waits for every send of the batch to be acknowledged by the broker, and
   dead-letters the input of any output that could not be delivered,

and only then lets faust acknowledge the batch's offsets: an offset is
committed only after everything its record produced is on the broker
(at-least-once; deterministic event ids make the repeats harmless).
A stage's timers (``due``) run as a periodic sweep over the keys of this instance that fall due: a
:class:`~complaint_stream.workers.due_index.DueIndex` of each key's ``next_due``, kept as states are
stored, and rebuilt after a rebalance from the due each stored value carries in front of its bytes.

Records are read and written as raw bytes so that one that fails to decode
is dead-lettered with its original bytes instead of being dropped by faust's
own deserialiser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import faust
from aiokafka.partitioner import murmur2
from faust.serializers import codecs
from faust.types import TP
from prometheus_client import CollectorRegistry

from complaint_stream import redacted_logs
from complaint_stream.domain.privacy import redact_phone_numbers
from complaint_stream.domain.stage import Output, Refused, check_outputs
from complaint_stream.kafka.clients import admin, effective_replication
from complaint_stream.schemas import (
    CONTENT_TYPE,
    DEAD_LETTER_KEY_HEAD,
    DeadLetterError,
    DeadLetterKind,
    DecodeError,
    Envelope,
    dead_letter,
    decoder_for,
    encode,
    wrap,
)
from complaint_stream.settings import Settings
from complaint_stream.topics import DEAD_LETTERS, TopicSpec
from complaint_stream.workers import faust_fixes, reconnect
from complaint_stream.workers.due_index import UNKNOWN, Due, DueIndex, pack, state_bytes, unpack
from complaint_stream.workers.metrics import RuntimeMetrics, serve
from complaint_stream.workers.registry import WorkerEntry
from complaint_stream.workers.wiring import Binding, StateCodec

log = logging.getLogger("complaint_stream.workers")
HEADERS = [("content-type", CONTENT_TYPE.encode("ascii"))]
Clock = Callable[[], datetime]
S = TypeVar("S")


def utcnow() -> datetime:
    return datetime.now(UTC)


#: A worker's domain metrics: called with an input event and what it produced, or with ``None`` and what a
#: timer produced.
Observer = Callable[[Envelope[Any] | None, Sequence[Output]], None]
#: Sends one changelog record (topic name, partition, key, value) and returns an awaitable of its ack.
ChangelogSend = Callable[[str, int, bytes, bytes | None], Awaitable[Awaitable[Any]]]


# -- faust app -----------------------------------------------------------------------------

def broker_credentials(settings: Settings) -> Any:
    proto = settings.kafka_security_protocol
    context = None
    if proto in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    if proto.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username,
                                     password=settings.kafka_sasl_password.get_secret_value(),
                                     mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


#: The faust store URL of each ``Binding.store``.
STORES = {"memory": "memory://", "rocksdb": "rocksdb://"}


def worker_datadir(app_id: str, settings: Settings) -> Path:
    """The worker's faust data directory (RocksDB tables live under it): ``<state_dir>/workers/<app id>``, and
    below it ``instances/<worker_instance>`` when the instance is named, so that two instances of a worker on
    one host never open the same RocksDB files (each database holds a lock while open)."""
    path = Path(settings.state_dir) / "workers" / app_id
    if settings.worker_instance:
        path = path / "instances" / re.sub(r"[^A-Za-z0-9._-]", "_", settings.worker_instance)
    return path


def make_app(app_id: str, settings: Settings, *, store: str = "memory") -> faust.App:
    """A faust app wired to the configured cluster, with raw serialisers and tables kept in ``store``
    (:data:`STORES`: in memory, rebuilt from their changelog topics on restart, or in RocksDB under the
    worker's data directory). Installs :mod:`faust_fixes` first."""
    faust_fixes.apply()
    reconnect.install_connect_backoff()
    datadir = worker_datadir(app_id, settings)
    datadir.mkdir(parents=True, exist_ok=True)
    url = ";".join(f"kafka://{h.strip()}" for h in settings.bootstrap.split(","))
    return faust.App(
        app_id,
        broker=url,
        broker_credentials=broker_credentials(settings),
        store=STORES[store],
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_replication_factor=effective_replication(3, settings),
        topic_allow_declare=True,  # changelog topics of tables
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_compression_type=None,
        datadir=str(datadir),
        stream_wait_empty=False,
        broker_commit_every=settings.commit_every,
        consumer_group_instance_id=(f"{app_id}-{settings.worker_instance}" if settings.worker_instance else None),
        broker_session_timeout=settings.consumer_session_timeout_seconds,
        broker_heartbeat_interval=settings.consumer_heartbeat_seconds,
        broker_commit_interval=settings.commit_interval_seconds,
        logging_config=None,
    )


def raw_topic(app: faust.App, spec: TopicSpec, *more: TopicSpec) -> faust.TopicT:
    """A catalogued topic (or several) as raw bytes; faust never creates or alters it."""
    names = [spec.name, *(m.name for m in more)]
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=spec.partitions, internal=False)


# -- sending -------------------------------------------------------------------------------

class Outbox:
    """Where the runtime sends records. ``send`` hands a record to the producer and returns an
    awaitable that completes when the broker has it. Agent tests pass a recording fake."""

    async def send(self, topic: TopicSpec, key: bytes | None, value: bytes) -> Awaitable[Any]:
        raise NotImplementedError

    async def send_changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> Awaitable[Any]:
        """A state change to a table's changelog partition. Test outboxes keep no changelog: done at once."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class FaustOutbox(Outbox):
    """The app's producer (aiokafka underneath): batched, acks=all, idempotent ids in the events."""

    def __init__(self, app: faust.App):
        self.app = app

    async def send(self, topic: TopicSpec, key: bytes | None, value: bytes) -> Awaitable[Any]:
        producer = self.app.producer
        return await producer.send(topic.name, key, value, None, None, HEADERS)

    async def send_changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> Awaitable[Any]:
        try:
            return await self.app.producer.send(topic, key, value, partition, None, None)
        except Exception as exc:  # refused before queueing: a failed future, as a broker rejection
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
            return fut


async def send_or_fail(outbox: Outbox, topic: TopicSpec, key: bytes | None, value: bytes) -> Awaitable[Any]:
    """``outbox.send``, with a send that raises at once (aiokafka refuses a record over
    ``max_request_size`` before queueing it) turned into a failed future, as a broker rejection is."""
    try:
        return await outbox.send(topic, key, value)
    except Exception as exc:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_exception(exc)
        return fut


class BatchFailed(RuntimeError):
    """A batch could not be settled record by record: it must not be acknowledged (see
    :func:`exit_unacknowledged`). Raised for a failure the runtime has no per-record answer to."""


class DeliveryFailed(BatchFailed):
    """A record and its dead letter both failed to reach the broker: the batch must not be acknowledged,
    so the worker stops at once (:func:`exit_unacknowledged`) and a restart processes the batch again."""


EXIT_DELIVERY_FAILED = 70  # EX_SOFTWARE: a supervisor restarts the worker


def exit_unacknowledged(exc: BatchFailed) -> NoReturn:
    """Stop the process without acknowledging the batch. Raising out of the agent would not do: faust's
    ``take_events`` acknowledges a batch in a ``finally`` clause, so its offsets would be committed and
    the records lost. ``os._exit`` skips that (and every other) cleanup; the offsets stay uncommitted."""
    log.critical("%s; exiting (code %d) without acknowledging the batch, a restart processes it again",
                 exc, EXIT_DELIVERY_FAILED)
    logging.shutdown()
    os._exit(EXIT_DELIVERY_FAILED)


class DeadLetterSink:
    """Builds the dead letter of a rejected record (original bytes + reason) and hands it to the outbox."""

    def __init__(self, outbox: Outbox, stage: str, metrics: RuntimeMetrics, clock: Clock = utcnow):
        self.outbox = outbox
        self.stage = stage
        self.metrics = metrics
        self.clock = clock

    async def send(self, message: Any, error: DecodeError | DeadLetterError) -> Awaitable[Any]:
        # dead_letter() masks phone numbers in the reason and bounds its size: the one place that does
        headers = list(message.headers or ()) if getattr(message, "headers", None) else []
        letter = dead_letter(stage=self.stage, source_topic=message.topic, value=message.value, key=message.key,
                             partition=message.partition, offset=message.offset, error=error,
                             failed_at=self.clock(), headers=headers)
        err = letter.error
        # the subject is the original key as text, masked: a channel may key records by phone number
        subject = redact_phone_numbers((message.key or b"-")[:DEAD_LETTER_KEY_HEAD].decode("utf-8", "replace")) or "-"
        env = wrap(letter, source=f"/workers/{self.stage}", subject=subject[:160])
        self.metrics.dead_letters.labels(self.stage, err.type.value).inc()
        self.metrics.records_out.labels(self.stage, DEAD_LETTERS.name).inc()
        log.warning("dead-lettered %s[%s]@%s: %s: %s", message.topic, message.partition, message.offset,
                    err.type, err.message)
        key = message.key if message.key is None else message.key[:DEAD_LETTER_KEY_HEAD]
        return await send_or_fail(self.outbox, DEAD_LETTERS, key, encode(env))

    async def failed(self, message: Any, exc: BaseException, kind: str = "processing_error") -> Awaitable[Any]:
        """Dead-letter a record whose processing raised, with the exception as the reason."""
        reason = redact_phone_numbers(f"{type(exc).__name__}: {exc}")
        log.error("%s failed on %s[%s]@%s: %s", self.stage, message.topic, message.partition, message.offset, reason)
        return await self.send(message, DeadLetterError(type=kind, message=reason[:500]))


# -- state ---------------------------------------------------------------------------------

class StateStore:
    """Where a stage's state lives: key -> stored value (the codec's bytes, behind the due prefix of
    :mod:`~complaint_stream.workers.due_index` for a stage with timers). The faust table below in workers;
    a dict in tests."""

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def put(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def all_keys(self) -> list[str]:
        raise NotImplementedError

    def size(self) -> int:
        """How many keys this instance holds (may be an estimate)."""
        return len(self.all_keys())

    def view(self, key: str) -> bytes | None:
        """``get`` for a reader outside the event loop (the HTTP views' thread): opens nothing."""
        return self.get(key)

    def scan(self, chunk: int) -> Iterator[list[tuple[str, bytes]]]:
        """Every (key, stored value) of the keys this instance owns, in lists of up to ``chunk``: a consumer
        may yield to the event loop between two lists (each list reads the values as they are then)."""
        keys = self.all_keys()
        for start in range(0, len(keys), chunk):
            values = [(key, self.get(key)) for key in keys[start:start + chunk]]
            yield [(key, value) for key, value in values if value is not None]

    async def flush(self) -> None:
        """Make the changes since the last flush durable (the changelog); raise when they cannot be."""
        return None


class DictStore(StateStore):
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def all_keys(self) -> list[str]:
        return list(self.data)

    def size(self) -> int:
        return len(self.data)


class StateKeyCodec(codecs.Codec):
    """How a state table's keys are written to its changelog: the key's UTF-8 bytes, as the stream
    topics' keys (and the CLI's ``complaints show``) have them.

    Reading never fails. A key that is a JSON string (faust's default key serializer for a table, which
    changelogs written before this codec have) reads as that string; any other bytes read as their UTF-8
    text (undecodable bytes kept as surrogate escapes). A key faust cannot decode during recovery is
    dropped by its changelog reader *without* recording its offset, and the partition's recovery then
    waits forever for an offset it has already passed: one such record stalls a worker at start-up."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.encode("utf-8", "surrogateescape") if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> str:
        if s[:1] == b'"':
            try:
                decoded = json.loads(s)
            except ValueError:
                decoded = None
            if isinstance(decoded, str):
                return decoded
        return bytes(s).decode("utf-8", "surrogateescape")


#: The name :class:`StateKeyCodec` is registered under (faust resolves serializers by name).
STATE_KEY_SERIALIZER = "complaint_stream_state_key"
codecs.register(STATE_KEY_SERIALIZER, StateKeyCodec())


#: RocksDB settings per partition's database. faust's defaults (a 2 GiB block cache, 500 MiB compressed
#: cache and three 64 MiB write buffers, for each partition) would let six partitions take gigabytes; the
#: states are small and read by key, so a modest cache serves them (bench/bench_sla.py measures).
ROCKSDB_OPTIONS = {"block_cache_size": 32 * 2**20, "block_cache_compressed_size": 8 * 2**20,
                   "write_buffer_size": 16 * 2**20, "max_write_buffer_number": 2}


def state_table(app: faust.App, name: str, partitions: int, *, rocksdb: bool = False) -> Any:
    """A stage's table: str keys (written with :class:`StateKeyCodec`), raw values (the stage's codec)."""
    table: Any = app.Table(name, default=None, partitions=partitions, key_type=str, value_type=bytes,
                           options=dict(ROCKSDB_OPTIONS) if rocksdb else None)
    # faust picks JSON for str keys and takes no serializer argument; its changelog topic (made when the
    # table was registered) carries the serializer, so it is made again.
    table.key_serializer = STATE_KEY_SERIALIZER
    table.changelog_topic = table._new_changelog_topic()
    return table


_STATE_KEYS = StateKeyCodec()


class TableStore(StateStore):
    """A faust table: in memory (rebuilt from its changelog topic on start and rebalance) or in RocksDB
    (``Binding.store``; one database per partition, read from the changelog only past the offset it
    persisted).

    Each change goes to the changelog partition the producer's partitioner gives the key
    (murmur2, as Kafka's default), which is the stream partition when the stream topic is keyed
    by the state key. That is what lets timers change state outside a stream, and recovery hand a
    key's state to the instance that owns its stream partition.

    Both stores are written and read here by that partition, never through faust's ``Table`` mapping:
    faust's RocksDB store picks the database of a write from the *current stream event* (there is none in a
    timer, and in a batch it is the last record's), so writes go to the partition's database directly, under
    the key's bytes as :class:`StateKeyCodec` writes them on the changelog (what recovery puts there too).
    The in-memory store is told each key's partition as recovery would tell it, so that the keys of a
    partition this instance no longer holds leave it when recovery completes.
    """

    def __init__(self, table: Any, partitions: int, send: ChangelogSend | None = None):
        self.table = table
        self.partitions = partitions
        self._send = send
        self._pending: list[tuple[int, str, bytes | None]] = []
        self._rocksdb: bool | None = None

    @property
    def rocksdb(self) -> bool:
        """Whether the table is kept in faust's RocksDB store (decided by the app's ``store``)."""
        if self._rocksdb is None:
            from faust.stores import rocksdb as rocksdb_store

            self._rocksdb = isinstance(self.table.data, rocksdb_store.Store)
        return self._rocksdb

    def partition(self, key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % self.partitions

    @staticmethod
    def raw_key(key: str) -> bytes:
        """The key as the changelog (and the RocksDB store) has it."""
        return _STATE_KEYS.dumps(key)

    def _db(self, key: str) -> Any:
        return self.table.data._db_for_partition(self.partition(key))  # opened when not yet

    def get(self, key: str) -> bytes | None:
        if self.rocksdb:
            value = self._db(key).get(self.raw_key(key))
        else:
            value = self.table.data.get(key)
        return None if value is None else bytes(value)

    def view(self, key: str) -> bytes | None:
        if not self.rocksdb:
            return self.get(key)
        db = self.table.data._dbs.get(self.partition(key))  # from another thread: never open a database
        value = None if db is None else db.get(self.raw_key(key))
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes) -> None:
        if self.rocksdb:
            self._db(key).put(self.raw_key(key), value)
        else:
            data = self.table.data
            data[key] = value
            key_partition = getattr(data, "_key_partition", None)
            if key_partition is not None:
                key_partition[key] = self.partition(key)
        self._changed(key, value)

    def delete(self, key: str) -> None:
        if self.rocksdb:
            db, raw = self._db(key), self.raw_key(key)
            if db.get(raw) is None:
                return
            db.delete(raw)
        else:
            data = self.table.data
            if key not in data:
                return
            del data[key]
            key_partition = getattr(data, "_key_partition", None)
            if key_partition is not None:
                key_partition.pop(key, None)
        self._changed(key, None)

    def _changed(self, key: str, value: bytes | None) -> None:
        if self._send is None:  # faust's own path: its producer buffer (flushed before every commit)
            self.table.send_changelog(self.partition(key), key, value)
        else:
            self._pending.append((self.partition(key), key, value))

    async def flush(self) -> None:
        """Send the changes to the changelog with the app's producer and wait for the broker's acks.

        faust's ``send_changelog`` queues each change in a buffer of 100 that a background task drains
        one record at a time, and stalls the stream while it is over 100: a batch of 500 state changes
        stalled the lifecycle worker 12-19 times per 2,000 complaints (1.2-2.2 s). Sending the batch's
        changes straight to the producer batches them like any output, and waiting for them surfaces a
        changelog write that fails (raised: the batch is not acknowledged) instead of losing it.

        With RocksDB, once every change is acknowledged each partition's database records the offset of
        its last one (faust's ``set_persisted_offset``, as its own ``Table._on_changelog_sent`` does): the
        database holds everything up to there, so recovery after a restart reads only what follows."""
        pending, self._pending = self._pending, []
        if not pending or self._send is None:
            return
        topic = self.table.changelog_topic
        name = topic.get_topic_name()
        futures = []
        for partition, key, value in pending:
            # the key as the table's key serializer writes it (StateKeyCodec), so recovery reads it
            raw_key, _headers = topic.prepare_key(key, self.table.key_serializer)
            futures.append(await self._send(name, partition, raw_key, value))
        results = await asyncio.gather(*futures, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise DeliveryFailed(f"{len(failures)} of {len(pending)} changelog writes failed: {failures[0]!r}")
        if self.rocksdb:
            self._persist_offsets(name, [(partition, getattr(result, "offset", None))
                                         for (partition, _key, _value), result in zip(pending, results)])

    def _persist_offsets(self, topic: str, acked: Iterable[tuple[int, Any]]) -> None:
        last: dict[int, int] = {}
        for partition, offset in acked:
            if isinstance(offset, int) and offset >= 0 and offset > last.get(partition, -1):
                last[partition] = offset
        data = self.table.data
        for partition, offset in last.items():
            if partition in data._dbs:  # not one revoked (and closed) while the writes were in flight
                data.set_persisted_offset(TP(topic, partition), offset)

    def all_keys(self) -> list[str]:
        if self.rocksdb:
            return [_STATE_KEYS.loads(raw) for raw in self.table.data._iterkeys()]
        return list(self.table.data.keys())

    def size(self) -> int:
        if self.rocksdb:  # RocksDB's estimate: counting would read every key
            return sum(int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
                       for db in self.table.data._dbs_for_actives())
        return len(self.table.data)

    def active_partitions(self) -> set[int]:
        """The table's partitions this instance holds as active (not standby) replica."""
        name = self.table.changelog_topic.get_topic_name()
        return {tp.partition for tp in self.table.app.assignor.assigned_actives() if tp.topic == name}

    def scan(self, chunk: int) -> Iterator[list[tuple[str, bytes]]]:
        """The keys of the active partitions with their stored values, ``chunk`` at a time. Nothing is held
        across two lists: the in-memory store's keys are listed once and each list reads their values then;
        a RocksDB database is looked up again for each list and read from just past the last key."""
        actives = self.active_partitions()
        if self.rocksdb:
            for partition in sorted(actives):
                yield from self._scan_rocksdb(partition, chunk)
            return
        data = self.table.data
        values: Any = getattr(data, "data", data)  # the store's dict
        key_partition: dict[str, int] = getattr(data, "_key_partition", {})
        keys = list(values)
        for start in range(0, len(keys), chunk):
            out = []
            for key in keys[start:start + chunk]:
                value = values.get(key)
                if value is None:
                    continue
                owner = key_partition.get(key)
                if (self.partition(key) if owner is None else owner) in actives:  # not a standby's
                    out.append((key, value))
            yield out

    def _scan_rocksdb(self, partition: int, chunk: int) -> Iterator[list[tuple[str, bytes]]]:
        data = self.table.data
        skip = {data.offset_key}
        after: bytes | None = None
        while True:
            db = data._dbs.get(partition)
            if db is None:  # revoked meanwhile
                return
            out: list[tuple[bytes, bytes]] = []
            items = db.items() if after is None else db.items(from_key=after)
            done = True
            for raw, value in items:
                if raw == after or raw in skip:
                    continue
                out.append((raw, value))
                if len(out) >= chunk:
                    done = False
                    break
            del items, db  # hold no database between two lists: a revoked one must be able to close
            if out:
                after = out[-1][0]
                yield [(_STATE_KEYS.loads(raw), bytes(value)) for raw, value in out]
            if done:
                return


# -- the loop ------------------------------------------------------------------------------

@dataclass
class Pending:
    """The sends one batch has in flight, each with the input record it came from."""

    sends: list[tuple[Any, Awaitable[Any]]] = field(default_factory=list)

    def add(self, message: Any, fut: Awaitable[Any]) -> None:
        self.sends.append((message, fut))


class Ownership:
    """The partitions this instance holds, and the consumer generation they were fetched in, as faust's
    rebalance signals tell.

    After every rebalance faust reads each assigned partition again from its committed offset (its table
    recovery seeks every partition there), and a batch is committed only once it is acknowledged. So every
    record of a batch taken before a rebalance comes again, in the new generation, to whichever instance holds
    its partition now, this one included. faust drops such records from its stream iterator
    (``Message.generation_id``), but not those ``take_events`` had already buffered: without a check here
    they reach the stage after the rebalance, and a record would be handled twice (a dead letter, an output
    written twice) or, if its partition went to another instance, applied to keys whose state this instance
    no longer holds (faust's in-memory store drops the keys of partitions it no longer holds when recovery
    completes): a retry then met no state and became a second complaint (seen in the two-instance fault test).

    So a record is this batch's only if its partition is held and it was fetched in the current generation
    (:meth:`mine`); while a revocation waits for its assignment (Kafka's eager protocol revokes every
    partition before it assigns them again), a record waits for the rebalance to settle first. The others are
    left: never acknowledged here (the runner's ``disown``), since faust would record the acknowledgement
    and a stale one could be committed past a record nobody processed. Likewise the state a batch staged for
    a partition that moved away while it waited for the broker is not written, and the batch's records of that
    partition are left to the new owner (their outputs, already sent, come again from it with the same ids)."""

    def __init__(self, topics: Iterable[str], key_partition: Callable[[str], int] | None = None,
                 generation: Callable[[], int | None] | None = None, also: Iterable[str] = ()):
        #: The topics whose partitions are the state's (co-partitioned with the table).
        self.topics = frozenset(topics)
        #: Every topic this instance consumes (the state's and those it only forwards).
        self.consumed = self.topics | frozenset(also)
        #: The consumer's generation now (faust's ``app.consumer_generation_id``); ``None``: not checked.
        self.generation = generation
        #: The partition of a state key (the table's); ``None``: a stage without state.
        self.key_partition = key_partition
        self.tps: set[tuple[str, int]] = set()
        self.partitions: set[int] = set()
        self._settled: asyncio.Event | None = None
        self._revoked = False  # between a revocation and the next assignment

    def _event(self) -> asyncio.Event:
        if self._settled is None:  # made in the event loop (faust's app is built before the loop runs)
            self._settled = asyncio.Event()
            if not self._revoked:
                self._settled.set()
        return self._settled

    def assigned(self, tps: Iterable[Any]) -> None:
        self.tps = {(tp.topic, tp.partition) for tp in tps if tp.topic in self.consumed}
        self.partitions = {partition for topic, partition in self.tps if topic in self.topics}
        self._revoked = False
        self._event().set()

    def revoked(self, tps: Iterable[Any]) -> None:
        self.tps -= {(tp.topic, tp.partition) for tp in tps}
        self.partitions = {partition for topic, partition in self.tps if topic in self.topics}
        self._revoked = True
        self._event().clear()

    async def settled(self) -> None:
        """Return once no revocation waits for its assignment."""
        await self._event().wait()

    def holds(self, message: Any) -> bool:
        """Whether this instance holds the record's partition now (see :meth:`settled` when it does not)."""
        return (message.topic, message.partition) in self.tps

    def stale(self, message: Any) -> bool:
        """Whether the record was fetched in an earlier generation than now (it comes again)."""
        fetched = getattr(message, "generation_id", None)
        now = None if self.generation is None else self.generation()
        return fetched is not None and now is not None and fetched != now

    async def mine(self, message: Any) -> bool:
        """Whether the record is this batch's to handle: its partition held (once a rebalance in progress
        has settled) and the record fetched in the current generation. Otherwise it comes again (see the
        class) and must be left."""
        if not self.holds(message):
            await self.settled()  # a rebalance: wait for it to say whose the partition is
            if not self.holds(message):
                return False
        return not self.stale(message)

    def holds_key(self, key: str) -> bool:
        """Whether this instance holds the partition of a state key now."""
        return self.key_partition is None or self.key_partition(key) in self.partitions

    def partition_of(self, key: str) -> int:
        assert self.key_partition is not None
        return self.key_partition(key)


class StageRunner:
    """Runs one stage over batches of raw records: decode, apply, store, send, settle."""

    def __init__(self, binding: Binding, *, table: StateStore | None, outbox: Outbox, dead_letters: DeadLetterSink,
                 metrics: RuntimeMetrics, clock: Clock, observe: Observer | None = None):
        self.binding = binding
        self.stage = binding.stage
        self.table = table
        self.codec: StateCodec[Any] | None = StateCodec(self.stage.state_type) if table is not None else None
        self.outbox = outbox
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.clock = clock
        self.observe = observe
        #: Called with (key, new state or None) as each state is stored: gauges of what the state holds.
        self.observe_state: Callable[[str, Any], None] | None = None
        self.worker = self.stage.name
        self._decode = decoder_for(self.stage.consumes)
        self._staged: dict[str, tuple[Any, Any]] = {}  # key -> (stored state, new state) of the current batch
        #: The stream partitions this instance holds (a worker's, from its rebalance signals); ``None``: every
        #: record is this runner's (a runner driven directly, as in tests).
        self.ownership: Ownership | None = None
        #: Withholds faust's acknowledgement of records left after a rebalance (build_worker's ``disown``).
        self.disown: Callable[[Sequence[Any]], None] | None = None
        self._lock = asyncio.Lock()
        #: Whether the stage has timers: its states are stored behind their ``next_due`` (due_index.pack)
        #: and noted in :attr:`due`.
        self.timers = bool(self.stage.timer_interval) and table is not None
        #: key -> the stage's ``next_due`` of its stored state (see :class:`DueIndex`): the sweep takes the
        #: keys due, and those whose due is unknown, instead of looking at every key.
        self.due = DueIndex()
        #: The next sweep first marks every key the index does not know as unknown (one pass over the keys,
        #: no state decoded): a new runner over a store that may hold keys already, and after forget_due().
        #: A worker's runner has it off (reset_due): the index is rebuilt from the stored values instead.
        self._scan_all = True
        self._rebuild: asyncio.Task[int] | None = None
        self.swept: int = 0  # keys the last sweep looked at: those due and those unknown (not the whole table)
        self.rebuilt: int = 0  # keys the last complete rebuild of the index read (their prefixes only)

    def decode(self, message: Any, now: datetime) -> Envelope[Any]:
        return self._decode(message.value, self.stage.decode_context(now))

    async def forward_batch(self, messages: Sequence[Any]) -> None:
        """Re-key: send each record's original bytes to the re-keying topic under its state key."""
        target = self.binding.repartition
        assert target is not None
        pending = Pending()
        now = self.clock()
        left: list[Any] = []  # records that come again after a rebalance (see Ownership)
        for msg in messages:
            self.metrics.records_in.labels(self.worker, msg.topic).inc()
            if not await self._mine(msg):
                left.append(msg)
                continue
            try:
                env = self.decode(msg, now)
                key = self.stage.state_key(env)
            except DecodeError as exc:
                pending.add(msg, await self.dead_letters.send(msg, exc))
                continue
            except Exception as exc:
                pending.add(msg, await self.dead_letters.failed(msg, exc))
                continue
            pending.add(msg, await send_or_fail(self.outbox, target, key.encode(), msg.value))
            self.metrics.records_out.labels(self.worker, target.name).inc()
        await self.settle(pending)
        self._leave(left)

    async def _mine(self, msg: Any) -> bool:
        return self.ownership is None or await self.ownership.mine(msg)

    def _leave(self, left: Sequence[Any]) -> None:
        """Records left to whoever holds their partition now: counted, and never acknowledged here."""
        if left:
            self.metrics.records_left.labels(self.worker).inc(len(left))
            if self.disown is not None:
                self.disown(left)

    async def process_batch(self, messages: Sequence[Any]) -> None:
        async with self._lock:  # a timer sweep never interleaves with a batch over the same states
            await self._process_batch(messages)

    async def _process_batch(self, messages: Sequence[Any]) -> None:
        started = time.perf_counter()
        pending = Pending()
        now = self.clock()
        decoded: list[tuple[Any, Envelope[Any]]] = []
        left: list[Any] = []  # records that come again after a rebalance (see Ownership)
        for msg in messages:
            self.metrics.records_in.labels(self.worker, msg.topic).inc()
            if not await self._mine(msg):
                left.append(msg)
                continue
            try:
                decoded.append((msg, self.decode(msg, now)))
            except DecodeError as exc:
                pending.add(msg, await self.dead_letters.send(msg, exc))
            except Exception as exc:
                pending.add(msg, await self.dead_letters.failed(msg, exc))
        try:
            self.stage.prepare([env for _msg, env in decoded])
        except Exception:  # a batch optimisation only: apply asks again per record
            log.exception("%s: preparing a batch failed; records are processed one by one", self.worker)
        for msg, env in decoded:
            if not await self._mine(msg):  # a rebalance while the batch was under way
                left.append(msg)
                continue
            try:
                outputs = check_outputs(self.stage, self.apply(env, now))
                encoded = [(out, msg.value if out.event is env else encode(out.event), out.key.encode())
                           for out in outputs]
            except Refused as refusal:  # valid, but the stage's rules refuse it: not applied
                pending.add(msg, await self.dead_letters.send(
                    msg, DeadLetterError(type=DeadLetterKind.REFUSED, message=str(refusal)[:500])))
                continue
            except Exception as exc:  # one bad record must never stop the worker
                pending.add(msg, await self.dead_letters.failed(msg, exc))
                continue
            for out, value, key in encoded:
                pending.add(msg, await send_or_fail(self.outbox, out.topic, key, value))
                self.metrics.records_out.labels(self.worker, out.topic.name).inc()
            if self.observe is not None:
                try:
                    self.observe(env, outputs)
                except Exception:
                    log.exception("%s: domain metrics failed on %s", self.worker, env.id)
        self.metrics.batch_records.labels(self.worker).observe(len(messages))
        try:
            await self.settle(pending)
        except BaseException:
            self._staged.clear()  # not acknowledged: the batch is processed again from the stored state
            raise
        left += await self.flush_state(messages)
        self._leave(left)
        if self.table is not None:
            await self.table.flush()  # the new states are durable before faust acknowledges the batch
        self.metrics.batch_seconds.labels(self.worker).observe(time.perf_counter() - started)

    def apply(self, env: Envelope[Any], now: datetime) -> Sequence[Output]:
        """Apply one event. The new state is staged, not stored: :meth:`flush_state` stores the batch's
        states once its outputs are on the broker, so a crash in between leaves the old state and the
        batch is applied again (at-least-once; the outputs repeat with the same ids) instead of finding
        the new state recovered from the changelog and producing nothing."""
        if self.table is None:
            _, outputs = self.stage.apply(None, env, now)
            return outputs
        key = self.stage.state_key(env)
        if key in self._staged:
            state = self._staged[key][1]
        else:
            state = self.load(key)
        new, outputs = self.stage.apply(state, env, now)
        if key in self._staged:
            self._staged[key] = (self._staged[key][0], new)
        elif new is not state:
            self._staged[key] = (state, new)
        return outputs

    def load(self, key: str) -> Any:
        """The stored state of ``key`` (``None``: none), decoded."""
        assert self.codec is not None and self.table is not None
        raw = self.table.get(key)
        return None if raw is None else self.codec.loads(unpack(raw)[1])

    async def flush_state(self, messages: Sequence[Any] = ()) -> list[Any]:
        """Store the states staged by this batch (after its outputs were acknowledged). A state of a partition
        that moved away meanwhile is not stored; the batch's records of that partition are returned, to be left
        to the new owner, which processes them again and stores the state."""
        staged, self._staged = self._staged, {}
        ownership = self.ownership
        moved: set[int] = set()
        if ownership is not None and not all(ownership.holds_key(key) for key in staged):
            await ownership.settled()
            kept = {key: change for key, change in staged.items() if ownership.holds_key(key)}
            moved = {ownership.partition_of(key) for key in staged if key not in kept}
            staged = kept
        for key, (old, new) in staged.items():
            self.store(key, old, new)
        if not moved or ownership is None:
            return []
        return [m for m in messages if m.topic in ownership.topics and m.partition in moved]

    def store(self, key: str, old: Any, new: Any) -> None:
        """Store ``new`` for ``key`` (``None``: forget it), noting its ``next_due``; a stage with timers stores
        it behind that due (:func:`~complaint_stream.workers.due_index.pack`)."""
        assert self.codec is not None and self.table is not None
        due = self._index(key, new)
        if self.observe_state is not None:
            try:
                self.observe_state(key, new)
            except Exception:  # metrics never stop the stage
                log.exception("%s: observing the state of %s failed", self.worker, key[:80])
        if new is None:
            if old is not None:
                self.table.delete(key)
        elif new != old:
            raw = self.codec.dumps(new)
            self.table.put(key, pack(due, raw) if self.timers else raw)

    def _index(self, key: str, state: Any) -> Due:
        """Note when the sweep must next look at ``key`` (stages without timers keep no index)."""
        if not self.timers:
            return UNKNOWN
        if state is None:
            self.due.discard(key)
            return None
        try:
            due: Due = self.stage.next_due(state)
        except Exception:  # unknown: the next sweep looks (and its due() reports what is wrong)
            log.exception("%s: next_due of %s failed; the key is looked at every sweep", self.worker, key[:80])
            due = UNKNOWN
        self.due.set(key, due)
        return due

    # -- the timer index ---------------------------------------------------------------------------

    def forget_due(self) -> None:
        """Drop the timer index: the next sweep looks at every key (decoding each state)."""
        self._cancel_rebuild()
        self.due.clear()
        self._scan_all = True

    def reset_due(self) -> None:
        """Drop the timer index until :meth:`rebuild_due` fills it again from the stored values (partitions
        revoked: until the table is recovered, nothing this instance noted holds). Meanwhile the sweep looks
        only at keys stored since."""
        self._cancel_rebuild()
        self.due.clear()
        self._scan_all = False

    def schedule_rebuild(self) -> asyncio.Task[int]:
        """Start :meth:`rebuild_due` in the background (the table's recovery callback must not wait for it);
        a rebuild in progress is superseded."""
        self._cancel_rebuild()
        task = self._rebuild = asyncio.ensure_future(self._rebuild_or_look_at_all())
        return task

    async def _rebuild_or_look_at_all(self) -> int:
        try:
            return await self.rebuild_due()
        except Exception:  # the store could not be read: rather decode every state once than miss a timer
            log.exception("%s: rebuilding the timer index failed; the next sweep looks at every key", self.worker)
            self._rebuild = None  # forget_due() without cancelling this very task
            self.due.clear()
            self._scan_all = True
            return 0

    def _cancel_rebuild(self) -> None:
        task, self._rebuild = self._rebuild, None
        if task is not None and not task.done():
            task.cancel()

    async def rebuild_due(self, chunk: int = 10_000) -> int:
        """Fill the timer index from the table's stored values: one pass that reads each value's due prefix
        (:meth:`DueIndex.rebuild`) and decodes no state; a value without one is unknown (the next sweep looks
        at it). It yields to the event loop every ``chunk`` keys, so batches,
        sweeps and heartbeats go on meanwhile (a key they store is not overwritten by what the pass read
        before). Returns how many keys it read; a rebuild superseded by another, or by a reset, stops."""
        if not self.timers:
            return 0
        assert self.table is not None
        started = time.perf_counter()
        generation = self.due.begin_rebuild()
        self._scan_all = False
        count = 0
        for items in self.table.scan(chunk):
            if not self.due.rebuild(generation, items):
                return count
            count += len(items)
            await asyncio.sleep(0)
        if self.due.end_rebuild(generation):
            self.rebuilt = count
            log.info("%s: timer index rebuilt from %d stored values in %.2f s (%d of unknown due)", self.worker,
                     count, time.perf_counter() - started, self.due.unknown)
        return count

    # -- timers ------------------------------------------------------------------------------------

    async def sweep(self) -> None:
        async with self._lock:
            await self._sweep()

    async def _sweep(self) -> None:
        """Fire the stage's timers for the keys that are due (and those whose due is unknown): the work is
        theirs, not every key's. A key's outputs are sent and acknowledged before its new state is stored
        (at-least-once: a crash in between fires the timer again, with the same deterministic event ids); a
        key whose timer raises or whose outputs are not delivered keeps its state and is marked unknown, so
        the next sweep tries it again. A key whose state is gone (deleted, its partition revoked) is dropped
        from the index."""
        if self.table is None or self.codec is None:
            return
        now = self.clock()
        if self._scan_all:
            self._scan_all = False
            for key in self.table.all_keys():
                if key not in self.due:
                    self.due.set(key, UNKNOWN)
        keys = self.due.pop_due(now)
        self.swept = len(keys)
        fired: list[tuple[str, Any, Any, list[Awaitable[Any]], Sequence[Output]]] = []
        for key in keys:
            raw = self.table.get(key)
            if raw is None:
                self.due.discard(key)
                continue
            try:
                state = self.codec.loads(unpack(raw)[1])
                new, outputs = self.stage.due(state, now)
                check_outputs(self.stage, outputs)
            except Exception:
                self.metrics.timer_failures.labels(self.worker).inc()
                log.exception("%s: timer of %s failed; tried again at the next sweep", self.worker, key[:80])
                self.due.set(key, UNKNOWN)
                continue
            sends = []
            for out in outputs:
                sends.append(await send_or_fail(self.outbox, out.topic, out.key.encode(), encode(out.event)))
                self.metrics.records_out.labels(self.worker, out.topic.name).inc()
            fired.append((key, state, new, sends, outputs))
        for key, state, new, sends, outputs in fired:
            results = await asyncio.gather(*sends, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                self.metrics.timer_failures.labels(self.worker).inc()
                log.error("%s: timer outputs of %s not delivered (%s); tried again at the next sweep",
                          self.worker, key[:80], redact_phone_numbers(repr(failures[0]))[:300])
                self.due.set(key, UNKNOWN)
                continue
            self.store(key, state, new)
            if self.observe is not None and outputs:
                try:
                    self.observe(None, outputs)
                except Exception:  # metrics never stop the stage
                    log.exception("%s: observing timer outputs of %s failed", self.worker, key[:80])
        try:
            await self.table.flush()
        except DeliveryFailed as exc:  # the timers fire again from the recovered state: same ids
            self.metrics.timer_failures.labels(self.worker).inc()
            log.error("%s: timer state changes not written to the changelog: %s", self.worker, exc)
        self.metrics.table_entries.labels(self.worker, self.binding.table or "-").set(self.table.size())

    async def settle(self, pending: Pending) -> None:
        """Wait for every send of the batch; dead-letter the input of any that failed."""
        if not pending.sends:
            return
        results = await asyncio.gather(*(fut for _, fut in pending.sends), return_exceptions=True)
        retry = Pending()
        failed_inputs: set[int] = set()
        for (msg, _), result in zip(pending.sends, results):
            if isinstance(result, BaseException) and id(msg) not in failed_inputs:
                failed_inputs.add(id(msg))
                retry.add(msg, await self.dead_letters.failed(msg, result, kind="delivery_failed"))
        if retry.sends:
            again = await asyncio.gather(*(fut for _, fut in retry.sends), return_exceptions=True)
            for (msg, _), result in zip(retry.sends, again):
                if isinstance(result, BaseException):
                    raise DeliveryFailed(f"{msg.topic}[{msg.partition}]@{msg.offset}: neither the outputs nor"
                                         f" the dead letter reached the broker: {result!r}") from result


def batches(stream: Any, settings: Settings) -> Any:
    """The stream in batches of raw records; faust acknowledges a batch after the loop body."""
    return stream.take_events(settings.batch_max_records, within=settings.batch_max_wait_ms / 1000)


def _unexpected(exc: Exception) -> BatchFailed:
    failure = BatchFailed(f"a batch failed outside any record ({type(exc).__name__}: {exc});"
                          " its records may be partly handled")
    failure.__cause__ = exc
    return failure


def _agent_loop(handle: Callable[[list[Any]], Awaitable[None]], settings: Settings,
                on_failed: Callable[[BatchFailed], None],
                disown: Callable[[Sequence[Any]], None] | None = None) -> Callable[[Any], Awaitable[None]]:
    """An agent body: the stream in batches, each handed to ``handle``; a batch that cannot be settled
    record by record goes to ``on_failed`` (which stops the process) instead of being acknowledged.

    A batch cancelled half-way (the worker stopping: SIGTERM) is ``disown``-ed: faust's ``take_events``
    acknowledges every event of a batch in a ``finally``, even when the body was cancelled, and a graceful
    stop commits what was acknowledged, so the batch's outputs would be on the broker while its states were
    never stored, and nobody would process it again (a retry then met no de-duplication state)."""

    async def loop(stream: Any) -> None:
        async for events in batches(stream, settings):
            messages = _messages(events)
            try:
                await handle(messages)
            except asyncio.CancelledError:
                if disown is not None:
                    disown(messages)
                raise
            except BatchFailed as exc:
                on_failed(exc)
            except Exception as exc:  # a runtime bug: which records were handled is unknown
                on_failed(_unexpected(exc))

    return loop


def _messages(events: Iterable[Any]) -> list[Any]:
    return [e.message for e in events]


@dataclass
class BuiltWorker:
    """A worker's faust app with what tests, the launcher and the health endpoint need."""

    app: faust.App
    name: str
    metrics: RuntimeMetrics
    runner: StageRunner
    agents: dict[str, Any]
    inputs: frozenset[str] = frozenset()

    readiness_state: tuple[bool, str] = (False, "starting")

    def views(self) -> dict[str, Callable[[str], bytes | None]]:
        """HTTP views of the state (``Binding.http_prefix``): a key's state as JSON, as this instance holds
        it (an instance holds only the keys of its partitions)."""
        prefix = self.runner.binding.http_prefix
        table, codec = self.runner.table, self.runner.codec
        if prefix is None or table is None or codec is None:
            return {}

        def view(key: str) -> bytes | None:  # the codec's JSON, without the due prefix
            return state_bytes(table.view(key))

        return {prefix: view}

    def readiness(self) -> tuple[bool, str]:
        """Ready once the worker has partitions and its tables are recovered. Safe from any thread:
        it reads what :meth:`refresh_readiness` last computed inside the event loop (faust creates
        its consumer and recovery services lazily, and must not be touched from another thread)."""
        return self.readiness_state

    async def refresh_readiness(self) -> None:
        app = self.app
        recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # faust's TableManager, not in its ABC
        if not recovery.completed.is_set() or app.in_recovery:
            self.readiness_state = (False, "recovering tables")
        elif app.rebalancing:
            self.readiness_state = (False, "rebalancing")
        else:
            assigned = [tp for tp in app.consumer.assignment() if tp.topic in self.inputs]
            self.readiness_state = ((True, f"{len(assigned)} partitions") if assigned
                                    else (False, "no partitions assigned"))


def build_worker(name: str, app_id: str, binding: Binding, settings: Settings, *,
                 metrics: RuntimeMetrics, observe: Observer | None = None, clock: Clock = utcnow,
                 outbox: Outbox | None = None,
                 on_delivery_failed: Callable[[BatchFailed], None] = exit_unacknowledged) -> BuiltWorker:
    """The faust app of one stage: agents that feed it in batches, its table, its timers.
    ``on_delivery_failed`` must not return normally (tests pass one that records and raises)."""
    app = make_app(app_id, settings, store=binding.store)
    outbox = outbox or FaustOutbox(app)
    stage = binding.stage
    table = None
    if binding.table is not None:
        partitions = binding.stream_topic.partitions
        table = TableStore(state_table(app, binding.table, partitions, rocksdb=binding.store == "rocksdb"),
                           partitions, outbox.send_changelog)
    runner = StageRunner(binding, table=table, outbox=outbox,
                         dead_letters=DeadLetterSink(outbox, stage.name, metrics, clock),
                         metrics=metrics, clock=clock, observe=observe)
    agents: dict[str, Any] = {}

    def disown_batch(messages: Sequence[Any]) -> None:  # late-bound: runner.disown is set below
        if runner.disown is not None:
            runner.disown(messages)

    if binding.repartition is not None:
        rekey = _agent_loop(runner.forward_batch, settings, on_delivery_failed,
                            disown=disown_batch)

        agents["rekey"] = app.agent(raw_topic(app, *binding.inputs), name=f"{stage.name}-rekey", concurrency=1)(rekey)

    # late-bound, so a test may replace runner.process_batch after the worker is built
    process = _agent_loop(lambda messages: runner.process_batch(messages), settings, on_delivery_failed,
                          disown=disown_batch)

    # concurrency 1: records of a partition are applied in order, one batch at a time (the stage owns its state)
    agents["process"] = app.agent(raw_topic(app, *binding.stream_topics), name=stage.name, concurrency=1)(process)

    if table is not None and stage.timer_interval:
        app.timer(interval=stage.timer_interval, name=f"{stage.name}-timers")(runner.sweep)
        # A rebalance moves keys between instances, and another may have changed a key meanwhile: what this
        # instance noted about its keys' timers no longer holds once partitions are revoked. Once the table
        # is recovered the index is rebuilt from the stored values' due prefixes (in the background, in
        # chunks), without decoding the states.
        runner.reset_due()

        async def partitions_revoked(_sender: Any, /, *_args: Any, signal: Any = None, **_kwargs: Any) -> None:
            runner.reset_due()

        async def table_recovered() -> None:
            runner.schedule_rebuild()

        app.on_partitions_revoked.connect(partitions_revoked)
        table.table.on_recover(table_recovered)
    # records fetched before a rebalance are left: they come again to whoever holds their partition (see Ownership)
    ownership = runner.ownership = Ownership((t.name for t in binding.stream_topics),
                                             key_partition=None if table is None else table.partition,
                                             generation=lambda: app.consumer_generation_id,
                                             also=(t.name for t in binding.inputs))

    def disown(messages: Sequence[Any]) -> None:
        """Mark the records acknowledged already, so faust's acknowledgement after the batch records nothing
        (``Consumer.ack`` and ``Message.ack`` skip a message marked acked) and no offset of theirs is ever
        committed by this instance."""
        unacked = getattr(app.consumer, "_unacked_messages", None)
        for message in messages:
            message.acked = True
            if unacked is not None:
                unacked.discard(message)

    runner.disown = disown

    async def held_partitions_revoked(_sender: Any, /, *args: Any, signal: Any = None, **_kwargs: Any) -> None:
        ownership.revoked(args[0])

    async def held_partitions_assigned(_sender: Any, /, *args: Any, signal: Any = None, **_kwargs: Any) -> None:
        ownership.assigned(args[0])
        metrics.rebalances.labels(name).inc()
        log.info("%s: %d partitions assigned (consumer generation %s)", name, len(ownership.tps),
                 app.consumer_generation_id)

    app.on_partitions_revoked.connect(held_partitions_revoked)
    app.on_partitions_assigned.connect(held_partitions_assigned)
    inputs = frozenset(t.name for t in (*binding.inputs, *binding.stream_topics))
    built = BuiltWorker(app=app, name=name, metrics=metrics, runner=runner, agents=agents, inputs=inputs)
    app.timer(interval=0.25, name=f"{stage.name}-readiness")(built.refresh_readiness)
    return built


def create_worker(entry: WorkerEntry, settings: Settings, *, clock: Clock = utcnow,
                  registry: CollectorRegistry | None = None, outbox: Outbox | None = None,
                  binding: Binding | None = None,
                  on_delivery_failed: Callable[[BatchFailed], None] = exit_unacknowledged) -> BuiltWorker:
    """Build a registered worker: its module's binding and domain metrics on the generic runtime."""
    module = entry.load()
    metrics = RuntimeMetrics(entry.name, registry)
    domain = module.DomainMetrics(metrics.registry)
    built = build_worker(entry.name, entry.app_id, binding or module.binding(settings), settings,
                         metrics=metrics, observe=domain.observe, clock=clock, outbox=outbox,
                         on_delivery_failed=on_delivery_failed)
    built.runner.observe_state = getattr(domain, "observe_state", None)  # optional: gauges from the state
    return built


def declare_changelog(built: BuiltWorker, settings: Settings) -> None:
    """Create the state table's changelog topic before the consumer subscribes (compacted, one partition per
    stream partition), as faust would declare it. Left to faust, it is created during the first group join,
    after the consumer took its metadata: the consumer sees the topic only at its next metadata refresh
    (5 min), and that change rebalances the group, so records processed but not yet committed are
    processed again (their dead letters repeated) minutes into the worker's life."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    store = built.runner.table
    if not isinstance(store, TableStore):
        return
    name = store.table.changelog_topic.get_topic_name()
    client = admin(settings)
    try:
        if name in set(client.list_topics()):
            return
        try:
            client.create_topics([NewTopic(name, store.partitions, effective_replication(3, settings),
                                           topic_configs={"cleanup.policy": "compact"})])
        except TopicAlreadyExistsError:  # another instance made it meanwhile
            pass
    finally:
        client.close()


def run_worker(entry: WorkerEntry, settings: Settings, loglevel: str | None = None) -> int:
    """Serve metrics and health, then run the worker until it is stopped. Refuses to start against a
    non-local cluster with the built-in development customer-key secret."""
    settings.refuse_unsafe_worker_start()
    # A cluster out of reach is one line naming it (exit 69, within KAFKA_CONNECT_TIMEOUT_SECONDS) for the
    # supervisor to act on, not faust's traceback; once running, the worker rides out broker outages.
    admin(settings).close()
    redacted_logs.install()
    reconnect.rate_limit_loggers()
    built = create_worker(entry, settings)
    declare_changelog(built, settings)
    port = settings.metrics_port or entry.metrics_port
    serve(built.metrics.registry, settings.metrics_host, port, built.readiness, views=built.views())
    log.info("worker %s: metrics and health on http://%s:%d/ (metrics, healthz, readyz)",
             entry.name, settings.metrics_host, port)
    worker = faust.Worker(built.app, loglevel=(loglevel or settings.log_level).upper(), quiet=True)
    worker.execute_from_commandline()
    return 0
