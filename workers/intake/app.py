"""The intake worker's faust app: submissions in; received complaints and dead letters out.

State: ``intake-seen`` maps ``<channel>:<channel_ref>`` to the complaint id and
first-seen time. It is co-partitioned with the submissions topic (same key,
same partition count) and backed by a changelog topic.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client import CollectorRegistry

from complaint_stream.domain.intake import Accepted, IntakePolicy, SeenSubmission, accept_submission, expired
from complaint_stream.domain.privacy import mask_msisdn
from complaint_stream.settings import Settings
from complaint_stream.workers.metrics import Metrics
from complaint_stream.schemas import ChannelSubmission, DecodeError, decode, encode
from complaint_stream.topics import RECEIVED, SUBMISSIONS
from complaint_stream.workers.runtime import (
    BuiltWorker, Clock, DeadLetterSink, FaustOutbox, Outbox, WorkerSpec, make_app, raw_topic, utcnow,
)

log = logging.getLogger("complaint_stream.workers.intake")
SPEC = WorkerSpec(app_id="complaints-intake", default_metrics_port=9401)
STAGE = "intake"


def create_app(settings: Settings, *, clock: Clock = utcnow, registry: CollectorRegistry | None = None,
               outbox: Outbox | None = None) -> BuiltWorker:
    app = make_app(SPEC, settings)
    outbox = outbox or FaustOutbox(app)
    metrics = Metrics(STAGE, registry)
    policy = IntakePolicy(dedup_window=timedelta(days=settings.dedup_window_days),
                          customer_key_secret=settings.customer_key_secret)
    submissions = raw_topic(app, SUBMISSIONS)
    dead_letters = DeadLetterSink(outbox, STAGE, metrics, clock)
    seen = app.Table("intake-seen", default=None, partitions=SUBMISSIONS.partitions,
                     key_type=str, value_type=str)  # values: SeenSubmission as JSON text
    context_limits = {"max_text_chars": settings.max_text_chars,
                      "max_future": timedelta(minutes=settings.max_future_skew_minutes),
                      "max_age": timedelta(days=settings.max_age_days)}

    @app.agent(submissions, name="intake")
    async def intake(stream):
        async for event in stream.events():
            msg = event.message
            metrics.records_in.labels(STAGE, SUBMISSIONS.name).inc()
            with metrics.processing.labels(STAGE).time():
                try:
                    now = clock()
                    env = decode(msg.value, [ChannelSubmission], context={"now": now, **context_limits})
                    key = env.data.dedup_key
                    raw_seen = seen.get(key)
                    decision = accept_submission(env, None if raw_seen is None else SeenSubmission.from_json(raw_seen),
                                                 now, policy)
                    if isinstance(decision, Accepted):
                        seen[key] = decision.seen.to_json()
                        cid = decision.seen.complaint_id
                        await outbox.send(RECEIVED, cid.encode(), encode(decision.event))
                        metrics.accepted.labels(env.data.channel.value).inc()
                        metrics.records_out.labels(STAGE, RECEIVED.name).inc()
                        log.info("accepted %s from %s %s customer %s", cid, env.data.channel.value,
                                 env.data.channel_ref, mask_msisdn(env.data.customer.msisdn))
                    else:
                        metrics.duplicates.labels(env.data.channel.value).inc()
                        log.info("duplicate of %s: %s", decision.of.complaint_id, key)
                except DecodeError as exc:
                    await dead_letters.send(msg, exc)
                except Exception as exc:  # noqa: BLE001 - one bad record must never stop the worker
                    await dead_letters.failed(msg, exc)
            yield None

    @app.timer(interval=3600.0)
    async def forget_expired():
        """Drop de-duplication entries older than the window (on this instance's partitions)."""
        now = clock()
        stale = [k for k, v in list(seen.items()) if v and expired(SeenSubmission.from_json(v), now, policy)]
        for key in stale:
            del seen[key]
        metrics.table_entries.labels(STAGE, "intake-seen").set(len(seen))

    return BuiltWorker(app=app, spec=SPEC, metrics=metrics, agents={"intake": intake}, tables={"seen": seen})
