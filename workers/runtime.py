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
A stage's timers (``due``) run as a periodic sweep over this instance's keys.

Records are read and written as raw bytes so that one that fails to decode
is dead-lettered with its original bytes instead of being dropped by faust's
own deserialiser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import faust
from aiokafka.partitioner import murmur2
from faust.serializers import codecs
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
from complaint_stream.workers.metrics import RuntimeMetrics, serve
from complaint_stream.workers.registry import WorkerEntry
from complaint_stream.workers.wiring import Binding, StateCodec

log = logging.getLogger("complaint_stream.workers")
HEADERS = [("content-type", CONTENT_TYPE.encode("ascii"))]
Clock = Callable[[], datetime]
S = TypeVar("S")


def utcnow() -> datetime:
    return datetime.now(UTC)


Observer = Callable[[Envelope[Any], Sequence[Output]], None]
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


def make_app(app_id: str, settings: Settings) -> faust.App:
    """A faust app wired to the configured cluster, with raw serialisers and in-memory tables
    (rebuilt from their changelog topics on restart). Installs :mod:`faust_fixes` first."""
    faust_fixes.apply()
    reconnect.install_connect_backoff()
    datadir = Path(settings.state_dir) / "workers" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    url = ";".join(f"kafka://{h.strip()}" for h in settings.bootstrap.split(","))
    return faust.App(
        app_id,
        broker=url,
        broker_credentials=broker_credentials(settings),
        store="memory://",
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
    """Where a stage's state lives: key -> encoded state. The faust table below in workers; a dict in tests."""

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def put(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def all_keys(self) -> list[str]:
        raise NotImplementedError

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


def state_table(app: faust.App, name: str, partitions: int) -> Any:
    """A stage's table: str keys (written with :class:`StateKeyCodec`), raw values (the stage's codec)."""
    table: Any = app.Table(name, default=None, partitions=partitions, key_type=str, value_type=bytes)
    # faust picks JSON for str keys and takes no serializer argument; its changelog topic (made when the
    # table was registered) carries the serializer, so it is made again.
    table.key_serializer = STATE_KEY_SERIALIZER
    table.changelog_topic = table._new_changelog_topic()
    return table


class TableStore(StateStore):
    """A faust table (in memory, rebuilt from its changelog topic on start and rebalance).

    Each change goes to the changelog partition the producer's partitioner gives the key
    (murmur2, as Kafka's default), which is the stream partition when the stream topic is keyed
    by the state key. That is what lets timers change state outside a stream, and recovery hand a
    key's state to the instance that owns its stream partition.
    """

    def __init__(self, table: Any, partitions: int, send: ChangelogSend | None = None):
        self.table = table
        self.partitions = partitions
        self._send = send
        self._pending: list[tuple[int, str, bytes | None]] = []

    def partition(self, key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % self.partitions

    def get(self, key: str) -> bytes | None:
        value = self.table.data.get(key)
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes) -> None:
        self.table.data[key] = value
        self._changed(key, value)

    def delete(self, key: str) -> None:
        if key in self.table.data:
            del self.table.data[key]
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
        changelog write that fails (raised: the batch is not acknowledged) instead of losing it."""
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

    def all_keys(self) -> list[str]:
        return list(self.table.data.keys())


# -- the loop ------------------------------------------------------------------------------

@dataclass
class Pending:
    """The sends one batch has in flight, each with the input record it came from."""

    sends: list[tuple[Any, Awaitable[Any]]] = field(default_factory=list)

    def add(self, message: Any, fut: Awaitable[Any]) -> None:
        self.sends.append((message, fut))


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
        self._lock = asyncio.Lock()
        #: key -> the stage's ``next_due`` of its stored state; a key not here (restored from the changelog,
        #: or its ``next_due`` failed) is looked at by the next sweep.
        self._due: dict[str, datetime | None] = {}
        self.swept: int = 0  # states the last sweep decoded (the rest were not due)

    def decode(self, message: Any, now: datetime) -> Envelope[Any]:
        return self._decode(message.value, self.stage.decode_context(now))

    async def forward_batch(self, messages: Sequence[Any]) -> None:
        """Re-key: send each record's original bytes to the re-keying topic under its state key."""
        target = self.binding.repartition
        assert target is not None
        pending = Pending()
        now = self.clock()
        for msg in messages:
            self.metrics.records_in.labels(self.worker, msg.topic).inc()
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

    async def process_batch(self, messages: Sequence[Any]) -> None:
        async with self._lock:  # a timer sweep never interleaves with a batch over the same states
            await self._process_batch(messages)

    async def _process_batch(self, messages: Sequence[Any]) -> None:
        started = time.perf_counter()
        pending = Pending()
        now = self.clock()
        decoded: list[tuple[Any, Envelope[Any]]] = []
        for msg in messages:
            self.metrics.records_in.labels(self.worker, msg.topic).inc()
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
        self.flush_state()
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
        assert self.codec is not None
        key = self.stage.state_key(env)
        if key in self._staged:
            state = self._staged[key][1]
        else:
            raw = self.table.get(key)
            state = None if raw is None else self.codec.loads(raw)
        new, outputs = self.stage.apply(state, env, now)
        if key in self._staged:
            self._staged[key] = (self._staged[key][0], new)
        elif new is not state:
            self._staged[key] = (state, new)
        return outputs

    def flush_state(self) -> None:
        """Store the states staged by this batch (after its outputs were acknowledged)."""
        staged, self._staged = self._staged, {}
        for key, (old, new) in staged.items():
            self.store(key, old, new)

    def store(self, key: str, old: Any, new: Any) -> None:
        assert self.codec is not None and self.table is not None
        self._index(key, new)
        if self.observe_state is not None:
            try:
                self.observe_state(key, new)
            except Exception:  # metrics never stop the stage
                log.exception("%s: observing the state of %s failed", self.worker, key[:80])
        if new is None:
            if old is not None:
                self.table.delete(key)
        elif new != old:
            self.table.put(key, self.codec.dumps(new))

    def forget_due(self) -> None:
        """Drop the timer index: the next sweep looks at every key (after a rebalance)."""
        self._due = {}

    def _index(self, key: str, state: Any) -> None:
        """Note when the sweep must next look at ``key`` (stages without timers keep no index)."""
        if not self.stage.timer_interval:
            return
        if state is None:
            self._due.pop(key, None)
            return
        try:
            self._due[key] = self.stage.next_due(state)
        except Exception:  # unknown: the next sweep looks (and its due() reports what is wrong)
            self._due.pop(key, None)
            log.exception("%s: next_due of %s failed; the key is looked at every sweep", self.worker, key[:80])

    async def sweep(self) -> None:
        async with self._lock:
            await self._sweep()

    async def _sweep(self) -> None:
        """Fire the stage's timers for every key this instance holds. A key's outputs are sent and
        acknowledged before its new state is stored (at-least-once: a crash in between fires the timer
        again, with the same deterministic event ids); a key whose timer raises or whose outputs are not
        delivered keeps its state and is tried again at the next sweep."""
        if self.table is None or self.codec is None:
            return
        now = self.clock()
        fired: list[tuple[str, Any, Any, list[Awaitable[Any]]]] = []
        keys = self.table.all_keys()
        index = self._due
        if len(index) > len(keys):  # keys deleted elsewhere or partitions revoked: drop what they left
            present = set(keys)
            self._due = index = {k: at for k, at in index.items() if k in present}
        self.swept = 0
        for key in keys:
            if key in index:
                at = index[key]
                if at is None or at > now:
                    continue
            self.swept += 1
            raw = self.table.get(key)
            if raw is None:
                continue
            try:
                state = self.codec.loads(raw)
                new, outputs = self.stage.due(state, now)
                check_outputs(self.stage, outputs)
            except Exception:
                self.metrics.timer_failures.labels(self.worker).inc()
                log.exception("%s: timer of %s failed; tried again at the next sweep", self.worker, key[:80])
                continue
            sends = []
            for out in outputs:
                sends.append(await send_or_fail(self.outbox, out.topic, out.key.encode(), encode(out.event)))
                self.metrics.records_out.labels(self.worker, out.topic.name).inc()
            fired.append((key, state, new, sends))
        for key, state, new, sends in fired:
            results = await asyncio.gather(*sends, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                self.metrics.timer_failures.labels(self.worker).inc()
                log.error("%s: timer outputs of %s not delivered (%s); tried again at the next sweep",
                          self.worker, key[:80], redact_phone_numbers(repr(failures[0]))[:300])
                continue
            self.store(key, state, new)
        try:
            await self.table.flush()
        except DeliveryFailed as exc:  # the timers fire again from the recovered state: same ids
            self.metrics.timer_failures.labels(self.worker).inc()
            log.error("%s: timer state changes not written to the changelog: %s", self.worker, exc)
        self.metrics.table_entries.labels(self.worker, self.binding.table or "-").set(len(self.table.all_keys()))

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
                on_failed: Callable[[BatchFailed], None]) -> Callable[[Any], Awaitable[None]]:
    """An agent body: the stream in batches, each handed to ``handle``; a batch that cannot be settled
    record by record goes to ``on_failed`` (which stops the process) instead of being acknowledged."""

    async def loop(stream: Any) -> None:
        async for events in batches(stream, settings):
            try:
                await handle(_messages(events))
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
        return {prefix: table.get}

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
    app = make_app(app_id, settings)
    outbox = outbox or FaustOutbox(app)
    stage = binding.stage
    table = None
    if binding.table is not None:
        partitions = binding.stream_topic.partitions
        table = TableStore(state_table(app, binding.table, partitions), partitions, outbox.send_changelog)
    runner = StageRunner(binding, table=table, outbox=outbox,
                         dead_letters=DeadLetterSink(outbox, stage.name, metrics, clock),
                         metrics=metrics, clock=clock, observe=observe)
    agents: dict[str, Any] = {}

    if binding.repartition is not None:
        rekey = _agent_loop(runner.forward_batch, settings, on_delivery_failed)

        agents["rekey"] = app.agent(raw_topic(app, *binding.inputs), name=f"{stage.name}-rekey", concurrency=1)(rekey)

    # late-bound, so a test may replace runner.process_batch after the worker is built
    process = _agent_loop(lambda messages: runner.process_batch(messages), settings, on_delivery_failed)

    # concurrency 1: records of a partition are applied in order, one batch at a time (the stage owns its state)
    agents["process"] = app.agent(raw_topic(app, *binding.stream_topics), name=stage.name, concurrency=1)(process)

    if table is not None and stage.timer_interval:
        app.timer(interval=stage.timer_interval, name=f"{stage.name}-timers")(runner.sweep)

        # a rebalance moves keys between instances, and another may have changed a key meanwhile: what this
        # instance noted about its keys' timers no longer holds, so the next sweep looks at every key again
        async def forget_due(_sender: Any, /, *_args: Any, signal: Any = None, **_kwargs: Any) -> None:
            runner.forget_due()

        app.on_partitions_revoked.connect(forget_due)
        app.on_partitions_assigned.connect(forget_due)
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
