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


# --- producers, consumers and the generated README table ---------------------------------------

def test_complaint_keyed_topics_come_from_one_helper_with_the_same_layout():
    keyed = [t for t in topics.ALL if t.key == "complaint_id"]
    assert {t.name for t in keyed} == {t.name for t in (topics.RECEIVED, topics.CLASSIFIED, topics.ASSIGNED,
                                                        topics.STATUS, topics.SLA_EVENTS, topics.ESCALATIONS,
                                                        topics.RESOLVED, topics.COMMANDS, topics.CASES,
                                                        topics.NOTIFICATIONS)}
    for t in keyed:
        rebuilt = topics.lifecycle_topic(t.name, t.description, t.values, producers=t.producers,
                                         consumers=t.consumers, retention_ms=t.retention_ms)
        assert rebuilt == t
    # what a regulator appeal may need keeps 2 years; customer messages (personal data) 30 days; the rest 90
    appeal = {topics.RECEIVED.name, topics.CLASSIFIED.name, topics.RESOLVED.name}
    assert {t.name for t in keyed if t.retention_ms == topics.APPEAL_RETENTION_MS} == appeal
    assert topics.APPEAL_RETENTION_MS >= 2 * 365 * 24 * 3600 * 1000
    assert topics.NOTIFICATIONS.retention_ms == 30 * 24 * 3600 * 1000
    assert {t.retention_ms for t in keyed if t.name not in appeal and t is not topics.NOTIFICATIONS} == {
        topics.LIFECYCLE_RETENTION_MS}
    assert topics.CORRECTIONS.retention_ms == topics.APPEAL_RETENTION_MS


def test_every_topic_has_a_writer_and_a_reader_and_a_worker_on_one_side():
    for t in topics.ALL:
        assert t.producers and t.consumers, t.name
        assert t.producing_workers or t.consuming_workers, t.name
        assert len(set(t.producers)) == len(t.producers) and len(set(t.consumers)) == len(t.consumers)
        assert all(isinstance(p, (topics.Worker, topics.External)) for p in (*t.producers, *t.consumers))


def test_workers_and_external_parties_are_kept_apart():
    assert not {str(w) for w in topics.Worker} & {str(e) for e in topics.External}
    assert [w for w in topics.Worker if not w.planned] == [topics.Worker.INTAKE, topics.Worker.CLASSIFY,
                                                           topics.Worker.LIFECYCLE, topics.Worker.ASSIGN,
                                                           topics.Worker.DISPATCH, topics.Worker.SLA]
    assert {str(w) for w in topics.Worker} == {"intake", "classify", "lifecycle", "assign", "dispatch", "sla",
                                               "stats"}


def test_the_built_workers_read_and_write_what_the_pipeline_does():
    def names(specs):
        return {t.name for t in specs}

    assert names(topics.consumed_by("intake")) == names([topics.SUBMISSIONS])
    assert names(topics.produced_by("intake")) == names([topics.RECEIVED, topics.DEAD_LETTERS])
    assert names(topics.consumed_by("classify")) == names([topics.RECEIVED, topics.RESOLVED,
                                                           topics.CLASSIFY_BY_CUSTOMER])
    assert names(topics.produced_by(topics.Worker.CLASSIFY)) == names([topics.CLASSIFY_BY_CUSTOMER,
                                                                       topics.CLASSIFIED, topics.DEAD_LETTERS])
    assert names(topics.consumed_by("assign")) == names([topics.CLASSIFIED, topics.COMMANDS, topics.CASES,
                                                         topics.ASSIGN_LINKS])
    assert names(topics.produced_by("assign")) == names([topics.ASSIGN_WORK, topics.ASSIGN_LINKS, topics.DEAD_LETTERS])
    assert names(topics.consumed_by("dispatch")) == names([topics.ASSIGN_WORK, topics.AGENTS])
    assert names(topics.produced_by("dispatch")) == names([topics.ASSIGNED, topics.DEAD_LETTERS])
    assert names(topics.consumed_by("sla")) == names([topics.CASES])
    assert names(topics.produced_by("sla")) == names([topics.SLA_EVENTS, topics.ESCALATIONS, topics.DEAD_LETTERS])


def test_internal_topics_are_written_by_one_worker_and_read_by_workers_only():
    """A worker's own re-keying or links topic, or the one between the two halves of assignment: nothing
    outside the pipeline writes or reads it."""
    internal = [t for t in topics.ALL if t.internal]
    assert {t.name for t in internal} == {topics.CLASSIFY_BY_CUSTOMER.name, topics.CASE_LINKS.name,
                                          topics.ASSIGN_WORK.name, topics.ASSIGN_LINKS.name}
    for t in internal:
        assert len(t.producers) == 1 and isinstance(t.producers[0], topics.Worker)
        assert t.consumers and all(isinstance(c, topics.Worker) for c in t.consumers)
    assert topics.ASSIGN_WORK.producers == (topics.Worker.ASSIGN,)
    assert topics.ASSIGN_WORK.consumers == (topics.Worker.DISPATCH,)


def test_the_readme_topic_table_is_the_rendered_catalogue():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = topics.render_topic_table()
    assert table in readme
    assert topics.replace_topic_table(readme) == readme, (
        "README.md's topic table differs from the catalogue; regenerate it with\n"
        "  python -c \"from pathlib import Path; from complaint_stream.topics import replace_topic_table as r;"
        " p = Path('README.md'); p.write_text(r(p.read_text()))\""
    )


def test_the_rendered_table_has_one_row_per_topic_and_marks_external_parties():
    rows = topics.render_topic_table().splitlines()[2:]
    assert len(rows) == len(topics.ALL)
    status = next(r for r in rows if f"`{topics.STATUS.name}`" in r)
    assert status.split(" | ")[3:] == ["*agents*, *CRM*", "lifecycle |"]


def test_replacing_the_table_keeps_the_rest_of_the_document():
    doc = "# T\n\nbefore\n\n| topic | key | carries | written by | read by |\n|---|\n| old | row |\n\nafter\n"
    out = topics.replace_topic_table(doc)
    assert out.startswith("# T\n\nbefore\n\n") and out.endswith("\n\nafter\n")
    assert "old" not in out and topics.render_topic_table() in out
    with pytest.raises(ValueError, match="no table with the header line"):
        topics.replace_topic_table("# nothing here\n")
