"""Topic administration against the real broker."""

from __future__ import annotations

import dataclasses

from kafka import KafkaAdminClient

from complaint_stream import topics
from complaint_stream.kafka.admin import check_topics, create_topics
from tests.support.cli import run_cli


def test_creating_topics_twice_is_a_no_op(kafka_settings):
    created, present = create_topics(kafka_settings)  # the fixture already created them once
    assert created == []
    assert sorted(present) == sorted(t.name for t in topics.ALL)
    assert check_topics(kafka_settings) == []


def test_the_cli_reports_a_clean_catalogue(kafka_settings):
    out = run_cli(kafka_settings, "topics", "check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all catalogued topics present" in out.stdout


def test_check_detects_a_topic_with_the_wrong_partition_count(kafka_settings):
    declared = dataclasses.replace(topics.HOTSPOTS, name="complaints.drift-probe.v1", partitions=3)
    wrong = dataclasses.replace(declared, partitions=2)
    create_topics(kafka_settings, [wrong])
    drifts = check_topics(kafka_settings, [declared])
    assert [(d.what, d.expected, d.actual) for d in drifts] == [("partitions", "3", "2")]


def test_check_detects_config_drift_and_missing_topics(kafka_settings):
    declared = dataclasses.replace(topics.HOTSPOTS, name="complaints.config-probe.v1")
    changed = dataclasses.replace(declared, retention_ms=declared.retention_ms // 2)
    missing = dataclasses.replace(declared, name="complaints.never-created.v1")
    create_topics(kafka_settings, [changed])
    drifts = {(d.topic, d.what) for d in check_topics(kafka_settings, [declared, missing])}
    assert drifts == {("complaints.config-probe.v1", "retention.ms"), ("complaints.never-created.v1", "missing")}


def test_the_cli_exits_non_zero_on_drift(kafka_settings):
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    try:
        admin.delete_topics([topics.HOTSPOTS.name])
    finally:
        admin.close()
    try:
        out = run_cli(kafka_settings, "topics", "check")
        assert out.returncode == 1
        assert f"DRIFT {topics.HOTSPOTS.name}: missing" in out.stdout
    finally:
        create_topics(kafka_settings)
    assert run_cli(kafka_settings, "topics", "check").returncode == 0
