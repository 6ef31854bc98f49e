"""What every faust worker shares: the app factory, raw topics, dead-lettering and the metrics server.

Topics are read and written as raw bytes; records become models only through
``schemas.codec`` inside the agents, so that a record that fails to decode
can be dead-lettered with its original bytes instead of being dropped by
faust's own deserialiser.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import faust

from complaint_stream.domain.privacy import redact_phone_numbers
from complaint_stream.kafka.clients import effective_replication
from complaint_stream.settings import Settings
from complaint_stream.workers.metrics import Metrics, serve
from complaint_stream.schemas import CONTENT_TYPE, DecodeError, DeadLetterError, dead_letter, encode, wrap
from complaint_stream.topics import DEAD_LETTERS, LIFECYCLE_PARTITIONS, TopicSpec

log = logging.getLogger("complaint_stream.workers")
HEADERS = [("content-type", CONTENT_TYPE.encode("ascii"))]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def broker_credentials(settings: Settings) -> Any:
    proto = settings.kafka_security_protocol
    context = None
    if proto in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    if proto.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                     mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


@dataclass
class WorkerSpec:
    """A worker's identity: app id (= consumer group), metrics port, where it keeps local files."""

    app_id: str
    default_metrics_port: int


def make_app(spec: WorkerSpec, settings: Settings) -> faust.App:
    """A faust app wired to the configured cluster, with raw serialisers and in-memory tables
    (tables are rebuilt from their changelog topics on restart)."""
    rf = effective_replication(3, settings)
    datadir = Path(settings.state_dir) / "workers" / spec.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    url = ";".join(f"kafka://{h.strip()}" for h in settings.bootstrap.split(","))
    app = faust.App(
        spec.app_id,
        broker=url,
        broker_credentials=broker_credentials(settings),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_replication_factor=rf,
        topic_partitions=LIFECYCLE_PARTITIONS,
        topic_allow_declare=True,  # changelog topics of tables
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,  # seconds: batch records produced within 5 ms instead of one request each
        producer_compression_type=None,
        datadir=str(datadir),
        stream_wait_empty=False,
        broker_commit_every=100,
        broker_commit_interval=2.0,
        logging_config=None,
    )
    return app


@dataclass
class BuiltWorker:
    """A worker's faust app with the objects tests and the launcher need."""

    app: faust.App
    spec: WorkerSpec
    metrics: Metrics
    agents: dict[str, Any]
    tables: dict[str, Any]


def raw_topic(app: faust.App, spec: TopicSpec, *more: TopicSpec) -> faust.TopicT:
    """A catalogued topic (or several) as raw bytes; faust never creates or alters it."""
    names = [spec.name, *(m.name for m in more)]
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=spec.partitions, internal=False)


class Outbox:
    """Where agents send records. The faust implementation is below; agent tests pass a recording fake."""

    async def send(self, topic: TopicSpec, key: bytes | None, value: bytes) -> None:
        raise NotImplementedError


class FaustOutbox(Outbox):
    """Sends through the app's producer to catalogued topics (raw bytes, CloudEvents content-type header)."""

    def __init__(self, app: faust.App):
        self.app = app
        self._topics: dict[str, faust.TopicT] = {}

    async def send(self, topic: TopicSpec, key: bytes | None, value: bytes) -> None:
        target = self._topics.get(topic.name)
        if target is None:
            target = self._topics[topic.name] = raw_topic(self.app, topic)
        await target.send(key=key, value=value, headers=HEADERS)


class DeadLetterSink:
    """Sends rejected records to the dead-letter topic, losslessly, and counts them."""

    def __init__(self, outbox: Outbox, stage: str, metrics: Metrics, clock: Clock = utcnow):
        self.outbox = outbox
        self.stage = stage
        self.metrics = metrics
        self.clock = clock

    async def send(self, message: Any, error: DecodeError | DeadLetterError) -> None:
        err = error.to_error() if isinstance(error, DecodeError) else error
        err = err.model_copy(update={"message": redact_phone_numbers(err.message)})
        headers = [(k, v) for k, v in (message.headers or [])] if getattr(message, "headers", None) else []
        dl = dead_letter(stage=self.stage, source_topic=message.topic, value=message.value, key=message.key,
                         partition=message.partition, offset=message.offset, error=err,
                         failed_at=self.clock(), headers=headers)
        subject = (message.key or b"-").decode("utf-8", "replace") or "-"
        env = wrap(dl, source=f"/workers/{self.stage}", subject=subject[:160])
        await self.outbox.send(DEAD_LETTERS, message.key, encode(env))
        self.metrics.dead_letters.labels(self.stage, err.type).inc()
        self.metrics.records_out.labels(self.stage, DEAD_LETTERS.name).inc()
        log.warning("dead-lettered %s[%s]@%s: %s: %s", message.topic, message.partition, message.offset,
                    err.type, err.message)


    async def failed(self, message: Any, exc: BaseException) -> None:
        """Dead-letter a record whose processing raised, with the exception as the reason."""
        log.exception("%s failed on %s[%s]@%s", self.stage, message.topic, message.partition, message.offset)
        await self.send(message, DeadLetterError(type="processing_error", message=f"{type(exc).__name__}: {exc}"[:500]))


def run_worker(built: BuiltWorker, settings: Settings, loglevel: str | None = None) -> int:
    """Start the metrics endpoint and run the faust worker until it is stopped."""
    port = settings.metrics_port or built.spec.default_metrics_port
    serve(built.metrics, settings.metrics_host, port)
    log.info("metrics for %s on http://%s:%d/metrics", built.spec.app_id, settings.metrics_host, port)
    worker = faust.Worker(built.app, loglevel=(loglevel or settings.log_level).upper(), quiet=True)
    worker.execute_from_commandline()
    return 0
