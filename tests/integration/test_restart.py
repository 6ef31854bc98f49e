"""Workers restarted with non-empty tables while traffic arrives: every submission comes out exactly once,
retries of what came before the restart are still recognised, and no partition is left behind."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from complaint_stream import topics
from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.kafka.clients import producer
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import encode
from tests.support.factories import submission
from tests.support.workers import running_workers, scrape, total, wait_caught_up

BEFORE, DURING, RETRIES = 300, 300, 40
CLASSIFY_INPUTS = [topics.RECEIVED.name, topics.RESOLVED.name, topics.CLASSIFY_BY_CUSTOMER.name]


def publish(settings, subs):
    p = producer(settings)
    for s in subs:
        p.send(topics.SUBMISSIONS.name, key=s.dedup_key.encode(), value=encode(submission_envelope(s)))
    p.flush()
    p.close()


def test_publishing_while_workers_restore_their_tables_loses_and_repeats_nothing(kafka_settings, tmp_path):
    now = datetime.now(UTC)
    subs = [validate_submission(submission(i, now, channel_ref=f"RST-{i:05d}"), now=now)
            for i in range(BEFORE + DURING)]
    before, during = subs[:BEFORE], subs[BEFORE:]
    retries = [validate_submission(submission(i, now, channel_ref=f"RST-{i:05d}"), now=now) for i in range(RETRIES)]

    with running_workers(kafka_settings, ["intake", "classify"], tmp_path / "first"):
        publish(kafka_settings, before)
        wait_caught_up(kafka_settings, "intake", [topics.SUBMISSIONS.name])
        wait_caught_up(kafka_settings, "classify", CLASSIFY_INPUTS)

    # Restart and publish at once: the records arrive while the workers join their groups and restore
    # the de-duplication and history tables from their changelogs.
    with running_workers(kafka_settings, ["intake", "classify"], tmp_path / "second", ready=False) as ports:
        publish(kafka_settings, during + retries)
        wait_caught_up(kafka_settings, "intake", [topics.SUBMISSIONS.name])
        wait_caught_up(kafka_settings, "classify", CLASSIFY_INPUTS)
        intake = scrape(ports["intake"])

    received = Counter(r.envelope.data.channel_ref for r in read_topic(kafka_settings, topics.RECEIVED, idle_timeout=3)
                       if r.envelope is not None and r.envelope.data.channel_ref.startswith("RST-"))
    assert set(received) == {s.channel_ref for s in subs}
    assert [ref for ref, n in received.items() if n > 1] == []
    ids = {r.envelope.data.complaint_id for r in read_topic(kafka_settings, topics.RECEIVED, idle_timeout=3)
           if r.envelope is not None and r.envelope.data.channel_ref.startswith("RST-")}
    classified = Counter(r.envelope.data.complaint_id
                         for r in read_topic(kafka_settings, topics.CLASSIFIED, idle_timeout=3)
                         if r.envelope is not None and r.envelope.data.complaint_id in ids)
    assert set(classified) == ids and max(classified.values()) == 1
    # the retries were recognised from the restored table, not accepted again
    assert total(intake, "complaints_intake_duplicates_total") == RETRIES
