"""The topic catalogue: naming, schemas, keys and co-partitioning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from complaint_stream import topics
from complaint_stream.schemas import PAYLOADS

REPO = Path(__file__).resolve().parents[3]


def test_topic_names_follow_the_naming_scheme_and_are_unique():
    names = [t.name for t in topics.ALL]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"complaints(\.[a-z][a-z-]*)+\.v[0-9]+", name), name


def test_the_catalogue_has_every_stage_the_pipeline_needs():
    short = {t.name.split(".")[-2] for t in topics.ALL}
    assert {"submissions", "deadletter", "received", "classified", "assigned", "status", "sla",
            "escalations", "resolved", "statistics", "hotspots", "commands"} <= short


def test_every_topic_carries_at_least_one_schema_and_every_event_has_a_topic():
    carried = {v for t in topics.ALL for v in t.values}
    assert all(t.values for t in topics.ALL)
    assert carried == set(PAYLOADS)


def test_complaint_keyed_topics_are_co_partitioned():
    keyed = [t for t in topics.ALL if t.key == "complaint_id"]
    assert len(keyed) >= 8
    assert {t.partitions for t in keyed} == {topics.LIFECYCLE_PARTITIONS}


def test_every_topic_has_sane_retention_cleanup_and_a_key_meaning():
    for t in topics.ALL:
        assert t.cleanup_policy in {"delete", "compact", "compact,delete"}
        assert t.retention_ms >= 24 * 3600 * 1000
        assert t.key and t.description and t.partitions >= 1


def test_intake_keeps_submissions_longer_than_the_deduplication_window():
    assert topics.SUBMISSIONS.retention_ms > 7 * 24 * 3600 * 1000


def test_min_insync_replicas_never_exceeds_the_replication_factor():
    assert topics.RECEIVED.config(1)["min.insync.replicas"] == "1"
    assert topics.RECEIVED.config(3)["min.insync.replicas"] == "2"


@pytest.mark.parametrize("short,full", [("received", "complaints.received.v1"),
                                        ("deadletter", "complaints.deadletter.v1"),
                                        ("complaints.classified.v1", "complaints.classified.v1")])
def test_lookup_accepts_short_and_full_names(short, full):
    assert topics.lookup(short).name == full


def test_lookup_of_an_unknown_topic_lists_the_known_ones():
    with pytest.raises(topics.UnknownTopic, match="complaints.received.v1"):
        topics.lookup("nope")


def test_no_topic_name_is_spelled_outside_the_catalogue():
    names = {t.name for t in topics.ALL}
    offenders = []
    for path in REPO.glob("**/*.py"):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("topics/", "tests/", ".venv/", "build/")) or "/node_modules/" in rel:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{rel}: {n}" for n in names if n in text]
    assert offenders == []
