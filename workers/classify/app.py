"""The classification worker's faust app.

Two agents:

* ``rekey`` reads received complaints and resolved complaints (both keyed by
  complaint id) and forwards the unchanged bytes to
  ``topics.CLASSIFY_BY_CUSTOMER`` keyed by customer key;
* ``classify`` reads that topic. Its table ``classify-customer-history``
  (customer key -> recent complaints) is therefore co-partitioned with the
  stream that reads and updates it, and one customer's complaints and
  closings are processed in order by one instance.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CollectorRegistry

from complaint_stream.bootstrap import build_classifier, build_priority_rules, build_triage_policy
from complaint_stream.domain.repeats import PastComplaint
from complaint_stream.domain.triage import complaint_closed, triage
from complaint_stream.settings import Settings
from complaint_stream.workers.metrics import Metrics
from complaint_stream.schemas import ComplaintReceived, ComplaintResolved, DecodeError, decode, encode
from complaint_stream.topics import CLASSIFIED, CLASSIFY_BY_CUSTOMER, RECEIVED, RESOLVED
from complaint_stream.workers.runtime import (
    BuiltWorker, Clock, DeadLetterSink, FaustOutbox, Outbox, WorkerSpec, make_app, raw_topic, utcnow,
)

log = logging.getLogger("complaint_stream.workers.classify")
SPEC = WorkerSpec(app_id="complaints-classify", default_metrics_port=9402)
STAGE = "classify"
INBOUND = (ComplaintReceived, ComplaintResolved)


def _load(raw: str | None) -> tuple[PastComplaint, ...]:
    return () if not raw else tuple(PastComplaint.from_dict(d) for d in json.loads(raw))


def _dump(history: tuple[PastComplaint, ...]) -> str:
    return json.dumps([h.to_dict() for h in history])


def create_app(settings: Settings, *, clock: Clock = utcnow, registry: CollectorRegistry | None = None,
               outbox: Outbox | None = None, classifier: Any = None) -> BuiltWorker:
    app = make_app(SPEC, settings)
    outbox = outbox or FaustOutbox(app)
    metrics = Metrics(STAGE, registry)
    version = "injected"
    if classifier is None:
        classifier, version = build_classifier(settings)
    priority_rules = build_priority_rules(settings)
    policy = build_triage_policy(settings, version)
    dead_letters = DeadLetterSink(outbox, STAGE, metrics, clock)
    history = app.Table("classify-customer-history", default=None, partitions=CLASSIFY_BY_CUSTOMER.partitions,
                        key_type=str, value_type=str)  # values: JSON list of PastComplaint

    @app.agent(raw_topic(app, RECEIVED, RESOLVED), name="rekey")
    async def rekey(stream):
        async for event in stream.events():
            msg = event.message
            metrics.records_in.labels(STAGE, msg.topic).inc()
            try:
                env = decode(msg.value, INBOUND)
                await outbox.send(CLASSIFY_BY_CUSTOMER, env.data.customer_key.encode(), msg.value)
                metrics.records_out.labels(STAGE, CLASSIFY_BY_CUSTOMER.name).inc()
            except DecodeError as exc:
                await dead_letters.send(msg, exc)
            yield None

    @app.agent(raw_topic(app, CLASSIFY_BY_CUSTOMER), name="classify")
    async def classify(stream):
        async for event in stream.events():
            msg = event.message
            metrics.records_in.labels(STAGE, CLASSIFY_BY_CUSTOMER.name).inc()
            with metrics.processing.labels(STAGE).time():
                try:
                    env = decode(msg.value, INBOUND)
                    data = env.data
                    key = data.customer_key
                    now = clock()
                    if isinstance(data, ComplaintReceived):
                        result = triage(data, _load(history.get(key)), classifier, priority_rules, policy, now)
                        history[key] = _dump(result.history)
                        await outbox.send(CLASSIFIED, data.complaint_id.encode(), encode(result.event))
                        _count(metrics, result.event.data)
                    else:
                        history[key] = _dump(complaint_closed(_load(history.get(key)), data, now, policy))
                except DecodeError as exc:
                    await dead_letters.send(msg, exc)
                except Exception as exc:  # noqa: BLE001 - one bad record must never stop the worker
                    await dead_letters.failed(msg, exc)
            yield None

    return BuiltWorker(app=app, spec=SPEC, metrics=metrics, agents={"rekey": rekey, "classify": classify},
                       tables={"history": history})


def _count(metrics: Metrics, c) -> None:
    metrics.classified.labels(c.category.value, c.priority.value).inc()
    metrics.records_out.labels(STAGE, CLASSIFIED.name).inc()
    for flag in c.risk_flags:
        metrics.risk_flags.labels(flag.value).inc()
    if c.repeat_of:
        metrics.repeats.inc()
    if c.needs_review:
        metrics.needs_review.inc()
    log.info("classified %s as %s %s conf=%.2f%s%s", c.complaint_id, c.category.value, c.priority.value,
             c.confidence, " repeat" if c.repeat_of else "", " review" if c.needs_review else "")
