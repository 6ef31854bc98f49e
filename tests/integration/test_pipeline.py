"""Intake and classification on the real broker: 1,000 submissions, 50 malformed, 30 duplicates."""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from kafka import KafkaProducer

from complaint_stream import topics
from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.privacy import customer_key
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import encode
from tests.support.factories import malformed_line, submission
from tests.support.workers import running_workers, scrape, wait_caught_up

N_VALID, N_BAD, N_DUP = 920, 50, 30


def _bad_records(now):
    """50 records a careless producer could write: broken JSON, broken envelopes, bad payloads."""
    out = []
    for i in range(N_BAD):
        kind = i % 5
        if kind == 0:
            value = malformed_line(i, now).encode()  # a raw submission without envelope, or broken JSON
        elif kind == 1:
            value = b"\xff\xfe garbage"
        else:
            good = json.loads(encode(submission_envelope(validate_submission(submission(90_000 + i, now)))))
            if kind == 2:
                good["data"]["customer"]["msisdn"] = "999"
            elif kind == 3:
                good["type"] = "com.example.unknown"
            else:
                good["data"]["text"] = "x" * 6000
            value = json.dumps(good).encode()
        out.append((f"PIPE-BAD-{i:03d}".encode(), value))
    return out


@pytest.fixture(scope="module")
def pipeline(kafka_settings, tmp_path_factory):
    from datetime import datetime

    now = datetime.now(UTC)
    subs = [validate_submission(submission(i, now, channel_ref=f"PIPE-{i:05d}")) for i in range(N_VALID)]
    records = [(s.dedup_key.encode(), encode(submission_envelope(s))) for s in subs]
    # channel retries: the same channel reference again, as a new event
    records += [(subs[i].dedup_key.encode(), encode(submission_envelope(subs[i]))) for i in range(0, 3 * N_DUP, 3)]
    records += _bad_records(now)
    assert len(records) == 1000

    log_dir = tmp_path_factory.mktemp("logs")
    with running_workers(kafka_settings, ["intake", "classify"], log_dir) as ports:
        producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
        for key, value in records:
            producer.send(topics.SUBMISSIONS.name, key=key, value=value)
        producer.flush()
        producer.close()

        wait_caught_up(kafka_settings, "intake", [topics.SUBMISSIONS.name])
        wait_caught_up(kafka_settings, "classify", [topics.RECEIVED.name, topics.RESOLVED.name,
                                                     topics.CLASSIFY_BY_CUSTOMER.name])
        intake, classify = scrape(ports["intake"]), scrape(ports["classify"])

    # The session broker's topics also hold other tests' records, hostile ones included (the fault suite
    # writes undecodable records straight onto the received topic): keep what decodes, then ours.
    def decoded(topic):
        return [r.envelope.data for r in read_topic(kafka_settings, topic, idle_timeout=3) if r.envelope is not None]

    received, classified, letters = decoded(topics.RECEIVED), decoded(topics.CLASSIFIED), decoded(topics.DEAD_LETTERS)
    return {"subs": subs, "received": received, "classified": classified, "letters": letters,
            "intake": intake, "classify": classify, "settings": kafka_settings, "log_dir": log_dir}


def test_every_valid_distinct_submission_is_received_exactly_once_with_its_content(pipeline):
    ours = [r for r in pipeline["received"] if r.channel_ref.startswith("PIPE-")]
    assert len(ours) == N_VALID
    assert len({r.channel_ref for r in ours}) == N_VALID
    by_ref = {r.channel_ref: r for r in ours}
    secret = pipeline["settings"].customer_key_secret
    for sub in pipeline["subs"]:
        r = by_ref[sub.channel_ref]
        assert (r.text, r.channel, r.customer, r.region, r.occurred_at) == (
            sub.text, sub.channel, sub.customer, sub.region, sub.occurred_at)
        assert r.customer_key == customer_key(sub.customer.msisdn, secret)


def test_every_received_complaint_is_classified_exactly_once(pipeline):
    ids = {r.complaint_id for r in pipeline["received"] if r.channel_ref.startswith("PIPE-")}
    ours = [c for c in pipeline["classified"] if c.complaint_id in ids]
    assert len(ours) == N_VALID and {c.complaint_id for c in ours} == ids
    received = {r.complaint_id: r for r in pipeline["received"]}
    for c in ours:
        r = received[c.complaint_id]
        assert c.customer_key == r.customer_key and c.channel == r.channel and c.region == r.region
        assert 0 <= c.confidence <= 1 and c.priority.value in {"P1", "P2", "P3", "P4"}
        if r.channel.value == "regulator":
            assert c.priority.value == "P1" and "regulator" in {f.value for f in c.risk_flags}


def test_the_malformed_records_are_dead_lettered_with_reasons(pipeline):
    ours = [dl for dl in pipeline["letters"] if (dl.original_key or b"").startswith(b"PIPE-BAD-")]
    assert len(ours) == N_BAD
    assert len({dl.original_key for dl in ours}) == N_BAD
    assert all(dl.stage == "intake" and dl.error.message and dl.source_offset is not None for dl in ours)
    kinds = {dl.error.type for dl in ours}
    assert {"invalid_json", "invalid_encoding", "schema_violation", "unexpected_event_type"} <= kinds


def test_the_counts_add_up_to_the_input(pipeline):
    duplicates = sum(v for k, v in pipeline["intake"].items() if k.startswith("complaints_intake_duplicates_total"))
    dead = sum(v for k, v in pipeline["intake"].items() if k.startswith("complaints_dead_letters_total"))
    ours_received = sum(1 for r in pipeline["received"] if r.channel_ref.startswith("PIPE-"))
    assert duplicates == N_DUP
    assert dead == N_BAD
    assert ours_received + N_DUP + N_BAD == 1000


def test_worker_logs_never_show_a_whole_phone_number(pipeline):
    logs = "".join(p.read_text(encoding="utf-8", errors="replace") for p in pipeline["log_dir"].glob("*.log"))
    assert "dead-lettered" in logs  # the rejected records were logged, with their reasons
    leaked = [s.customer.msisdn for s in pipeline["subs"] if s.customer.msisdn.removeprefix("+86") in logs]
    assert leaked == []
