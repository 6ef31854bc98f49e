"""Publishing channel submissions and reading them back, with our consumer and a foreign one (kcat)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from complaint_stream import topics
from complaint_stream.channel_api import ChannelPublisher, SubmissionRejected
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import ChannelSubmission
from tests.support.cli import run_cli
from tests.support.factories import mixed_lines, submission


def _drain(settings, spec):
    return list(read_topic(settings, spec, from_beginning=True, idle_timeout=3.0))


@pytest.fixture(scope="module")
def published(kafka_settings, tmp_path_factory):
    """1,000 submissions with 20 malformed lines, sent through the real CLI."""
    lines, bad_lines = mixed_lines(980, 20)
    path = tmp_path_factory.mktemp("publish") / "submissions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = run_cli(kafka_settings, "publish", str(path))
    return {"lines": lines, "bad": bad_lines, "out": out}


def _ours(records):
    """Records of this module's file (keys <channel>:REF-nnnnnn); other modules share the topic."""
    return [r for r in records if b":REF-" in (r.key or b"")]


def test_publish_reports_every_bad_line_by_number_and_sends_the_rest(published):
    out = published["out"]
    assert out.returncode == 1  # some lines were rejected
    assert "sent 980, rejected 20" in out.stdout
    reported = [int(line.split(":")[0].removeprefix("line ")) for line in out.stderr.splitlines()
                if line.startswith("line ")]
    assert reported == published["bad"]


def test_exactly_the_valid_submissions_arrive_with_their_content(kafka_settings, published):
    records = _ours(_drain(kafka_settings, topics.SUBMISSIONS))
    assert len(records) == 980
    assert all(r.error is None for r in records)
    bad = set(published["bad"])
    expected = {}
    for number, line in enumerate(published["lines"], start=1):
        if number not in bad:
            sub = ChannelSubmission.model_validate(json.loads(line))
            expected[sub.dedup_key] = sub
    got = {r.key.decode(): r.envelope.data for r in records}
    assert got == expected  # same keys, and each payload equal field by field
    assert all(r.envelope.subject == r.key.decode() for r in records)


def test_kcat_reads_the_same_records(kafka_settings, published):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat must be installed (make test installs it)"
    proc = subprocess.run([kcat, "-C", "-b", kafka_settings.bootstrap, "-t", topics.SUBMISSIONS.name,
                           "-e", "-q", "-J"], capture_output=True, timeout=60, check=True)
    # other modules put deliberately broken bytes on this topic; kcat prints them raw
    seen = [json.loads(line) for line in proc.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    assert len(seen) == len(_drain(kafka_settings, topics.SUBMISSIONS))
    seen = [m for m in seen if ":REF-" in (m["key"] or "")]
    ours = _ours(_drain(kafka_settings, topics.SUBMISSIONS))
    assert len(seen) == len(ours) == 980
    assert {(m["key"], m["payload"]) for m in seen} == {(r.key.decode(), r.value.decode()) for r in ours}


def test_the_channel_api_submits_one_complaint_and_rejects_a_bad_one(kafka_settings):
    with ChannelPublisher(kafka_settings) as pub:
        env = pub.submit(submission(5_000_001, channel_ref="API-ONE"))
        with pytest.raises(SubmissionRejected, match="customer.msisdn"):
            pub.submit(submission(5_000_002, customer={"msisdn": "999"}))
    keys = [r.key for r in _drain(kafka_settings, topics.SUBMISSIONS)]
    assert keys.count(env.data.dedup_key.encode()) == 1


def test_consume_prints_records_as_json_lines_and_masks_phones_when_pretty(kafka_settings, published):
    out = run_cli(kafka_settings, "consume", "submissions", "--from-beginning", "--max", "3", "--json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(events) == 3 and all(e["type"] == ChannelSubmission.event_type for e in events)
    pretty = run_cli(kafka_settings, "consume", "submissions", "--from-beginning", "--max", "2")
    assert pretty.returncode == 0 and "****" in pretty.stdout
    assert not any(e["data"]["customer"]["msisdn"] in pretty.stdout for e in events)


def test_consume_of_an_unknown_topic_is_a_clear_error(kafka_settings):
    out = run_cli(kafka_settings, "consume", "no-such-topic")
    assert out.returncode == 1 and "no catalogued topic 'no-such-topic'" in out.stderr


def test_rejected_lines_are_dead_lettered_with_their_original_bytes(kafka_settings, published):
    from complaint_stream.schemas import DeadLetter

    letters = [r.envelope.data for r in _drain(kafka_settings, topics.DEAD_LETTERS)
               if r.envelope and isinstance(r.envelope.data, DeadLetter) and r.envelope.data.stage == "publish"
               and r.envelope.data.original_headers[0][1]]
    by_line = {}
    for dl in letters:
        import base64
        origin = base64.b64decode(dl.original_headers[0][1]).decode()
        if origin.startswith("submissions.jsonl:"):
            by_line[int(origin.rsplit(":", 1)[1])] = dl
    assert sorted(by_line) == published["bad"]
    for number, dl in by_line.items():
        assert dl.original_value.decode("utf-8") == published["lines"][number - 1]
        assert dl.error.type in {"invalid_json", "schema_violation"} and dl.error.message


def test_read_from_offsets_to_the_end_gives_exactly_what_was_written_since(kafka_settings, published):
    """``from_offsets`` starts each partition where an earlier look ended; ``to_end`` stops at the end the
    topic had when reading began, without waiting out the idle timeout."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    from complaint_stream.kafka.clients import client_config

    consumer = KafkaConsumer(**client_config(kafka_settings))
    try:
        parts = sorted(consumer.partitions_for_topic(topics.SUBMISSIONS.name))
        before = {tp.partition: off for tp, off in consumer.end_offsets(
            [TopicPartition(topics.SUBMISSIONS.name, p) for p in parts]).items()}
    finally:
        consumer.close()
    publisher = ChannelPublisher(kafka_settings)
    refs = [f"SINCE-{i}" for i in range(12)]
    try:
        for i, ref in enumerate(refs):
            publisher.submit(submission(900_000 + i, channel_ref=ref))
    finally:
        publisher.close()
    t0 = time.monotonic()
    records = list(read_topic(kafka_settings, topics.SUBMISSIONS, from_offsets=before, to_end=True,
                              idle_timeout=30.0))
    took = time.monotonic() - t0
    got = sorted(r.envelope.data.channel_ref for r in records if r.envelope is not None)
    assert got == sorted(refs)
    assert all(r.offset >= before.get(r.partition, 0) for r in records)
    assert took < 30.0, "reading waited for the idle timeout instead of stopping at the end"
