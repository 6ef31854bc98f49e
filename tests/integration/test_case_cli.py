"""`complaints command` and `complaints show` against the real broker, through the real CLI (a subprocess).

Commands are read back from the commands topic. `show` reads case records this test writes to the
lifecycle worker's table changelog itself, as the worker writes them (key: the complaint id, value: the
state codec's JSON, a tombstone when forgotten); no worker runs.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta

import pytest
from kafka.errors import TopicAlreadyExistsError
from prometheus_client import CollectorRegistry

from complaint_stream.cli.case_cmds import COMMAND_SOURCE, changelog_topic, partition_of
from complaint_stream.domain.lifecycle.view import record_json, render_timeline
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.kafka.clients import admin, producer
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import AddNote, CaseRecord, MergeComplaints
from complaint_stream.topics import CASE_LINKS, COMMANDS
from complaint_stream.workers.metrics import serve
from complaint_stream.workers.wiring import StateCodec
from tests.support import cases as c
from tests.support.cli import run_cli
from tests.support.workers import running_workers

CODEC = StateCodec(CaseRecord)
CUSTOMER = 7  # the phone number of every complaint here: c.phone(7)
RAW_PHONE = c.phone(CUSTOMER).removeprefix("+86")


def _unique() -> int:
    return random.randrange(10**10, 10**11)  # ids of this run only: the broker is shared by the session


@pytest.fixture(scope="module")
def changelog(kafka_settings) -> str:
    """The lifecycle table's changelog topic, compacted, as faust declares it (created here if missing)."""
    topic = changelog_topic()
    client = admin(kafka_settings)
    try:
        if topic not in set(client.list_topics()):
            try:
                client.create_topics({topic: {"num_partitions": COMMANDS.partitions, "replication_factor": 1,
                                              "configs": {"cleanup.policy": "compact"}}}, wait_for_metadata=True)
            except TopicAlreadyExistsError:  # the lifecycle worker of another test declared it meanwhile
                pass
    finally:
        client.close()
    return topic


def _write(settings, topic: str, key: str, value: bytes | None) -> int:
    prod = producer(settings)
    try:
        return prod.send(topic, key=key.encode(), value=value).get(timeout=30).partition
    finally:
        prod.close()


def _case(n: int) -> tuple[CaseRecord, CaseRecord]:
    """A case as first opened, and as it is once assigned, noted and resolved with a refund."""
    at = c.T0
    opened = c.opened(n, at, customer=CUSTOMER, text=f"电话{RAW_PHONE}一直没信号")
    first: dict[str, CaseRecord] = {}
    list(run_in_event_time(c.stage(), opened, state=first, feedback=[CASE_LINKS]))
    later = [*opened, c.assigned(n, at + timedelta(minutes=5)),
             c.status(n, "inProgress", at + timedelta(minutes=10)), c.note(n, at + timedelta(minutes=15)),
             c.resolve(n, at + timedelta(hours=1), refund_fen=2550)]
    final: dict[str, CaseRecord] = {}
    list(run_in_event_time(c.stage(), later, state=final, feedback=[CASE_LINKS]))
    return first[c.cid(n)], final[c.cid(n)]


def _no_worker(settings):
    return settings.with_overrides(metrics_port=free_port())  # nothing listens there


# -- complaints command -------------------------------------------------------------------------

def test_a_note_command_is_published_keyed_by_the_complaint_and_acknowledged(kafka_settings):
    cid = c.cid(_unique())
    out = run_cli(kafka_settings, "command", "note", cid, "--text", "已电话联系客户，约明天上门", "--by", "sup-7")
    assert out.returncode == 0, out.stderr
    event_id = out.stdout.strip()
    assert str(uuid.UUID(event_id)) == event_id and out.stdout.count("\n") == 1
    assert f"{COMMANDS.name}[{partition_of(cid.encode(), COMMANDS.partitions)}]@" in out.stderr

    mine = [r for r in read_topic(kafka_settings, COMMANDS, from_beginning=True, idle_timeout=3.0)
            if r.key == cid.encode()]
    assert len(mine) == 1 and mine[0].error is None
    env = mine[0].envelope
    assert (env.id, env.source, env.subject, env.type) == (event_id, COMMAND_SOURCE, cid, AddNote.event_type)
    assert isinstance(env.data, AddNote) and env.data.complaint_id == cid
    assert (env.data.note.author, env.data.note.text) == ("sup-7", "已电话联系客户，约明天上门")
    assert mine[0].partition == partition_of(cid.encode(), COMMANDS.partitions)


def test_a_merge_is_keyed_by_the_survivor_and_a_bad_priority_sends_nothing(kafka_settings):
    survivor, merged = c.cid(_unique()), c.cid(_unique())
    out = run_cli(kafka_settings, "command", "merge", survivor, merged, "--by", "sup-7", "--reason", "same outage")
    assert out.returncode == 0, out.stderr
    bad = run_cli(kafka_settings, "command", "priority", merged, "--to", "P0", "--by", "sup-7", "--reason", "x")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "complaints: unknown priority 'P0': expected one of P1, P2, P3, P4\n"

    records = list(read_topic(kafka_settings, COMMANDS, from_beginning=True, idle_timeout=3.0))
    assert not [r for r in records if r.key == merged.encode()]
    mine = [r for r in records if r.key == survivor.encode()]
    assert len(mine) == 1 and mine[0].envelope.id == out.stdout.strip()
    data = mine[0].envelope.data
    assert isinstance(data, MergeComplaints)
    assert (data.complaint_id, data.merged_id, data.requested_by, data.reason) == (survivor, merged, "sup-7",
                                                                                   "same outage")


# -- complaints show ------------------------------------------------------------------------------

def test_show_reads_the_last_value_of_the_key_from_the_changelog(kafka_settings, changelog):
    first, final = _case(_unique())
    cid = final.complaint_id
    p1 = _write(kafka_settings, changelog, cid, CODEC.dumps(first))
    p2 = _write(kafka_settings, changelog, cid, CODEC.dumps(final))
    assert p1 == p2 == partition_of(cid.encode(), COMMANDS.partitions)  # as the worker's TableStore puts it
    settings = _no_worker(kafka_settings)

    out = run_cli(settings, "show", cid)
    assert out.returncode == 0, out.stderr
    assert out.stdout == render_timeline(final)  # the last value wins
    assert "is not reachable" in out.stderr and "reading the changelog" in out.stderr
    assert "status                resolved" in out.stdout and "refund                25.50 yuan" in out.stdout

    as_json = run_cli(settings, "show", cid, "--json", "--from", "changelog")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data == record_json(final) and data["received"]["customer"]["msisdn"] == "138****0007"
    for text in (out.stdout, out.stderr, as_json.stdout, as_json.stderr):
        assert RAW_PHONE not in text


def test_show_reads_the_changelog_when_the_worker_does_not_hold_the_complaint(kafka_settings, changelog):
    _, final = _case(_unique())
    cid = final.complaint_id
    _write(kafka_settings, changelog, cid, CODEC.dumps(final))
    port = free_port()  # the worker's real HTTP server, holding nothing (another instance has the partition)
    server = serve(CollectorRegistry(), "127.0.0.1", port, lambda: (True, "ok"), views={"/complaints/": {}.get})
    try:
        settings = kafka_settings.with_overrides(metrics_port=port)
        out = run_cli(settings, "show", cid)
        assert out.returncode == 0, out.stderr
        assert out.stdout == render_timeline(final) and f"{cid} is not on the lifecycle worker" in out.stderr
        only_worker = run_cli(settings, "show", cid, "--from", "worker")
        assert only_worker.returncode == 1 and only_worker.stdout == ""
        assert f"no case record for {cid} on the lifecycle worker" in only_worker.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_show_of_a_forgotten_and_of_an_unknown_complaint(kafka_settings, changelog):
    _, final = _case(_unique())
    cid = final.complaint_id
    _write(kafka_settings, changelog, cid, CODEC.dumps(final))
    _write(kafka_settings, changelog, cid, None)  # the worker forgot the case: a tombstone
    settings = _no_worker(kafka_settings)

    forgotten = run_cli(settings, "show", cid, "--from", "changelog")
    assert forgotten.returncode == 1 and forgotten.stdout == ""
    assert forgotten.stderr.startswith(f"complaints: no case record for {cid}: it left the worker's table")
    assert forgotten.stderr.count("\n") == 1

    unknown = c.cid(_unique())
    out = run_cli(settings, "show", unknown)
    assert out.returncode == 1 and out.stdout == ""
    assert f"complaints: no case record for {unknown} (not in the lifecycle worker's table changelog" in out.stderr

    no_worker = run_cli(settings, "show", unknown, "--from", "worker")
    assert no_worker.returncode == 69 and "is not reachable" in no_worker.stderr


def test_show_finds_a_case_that_left_the_workers_memory_on_the_archive_topic(kafka_settings, changelog):
    from complaint_stream.schemas import CaseArchived, wrap
    from complaint_stream.topics import CASE_ARCHIVE

    _, final = _case(_unique())
    cid = final.complaint_id
    _write(kafka_settings, changelog, cid, CODEC.dumps(final))
    _write(kafka_settings, changelog, cid, None)  # out of the worker's table ...
    archived = CaseArchived(complaint_id=cid, record=final, archived_at=c.T0 + timedelta(days=40))
    _write(kafka_settings, CASE_ARCHIVE.name, cid, wrap(archived, source="/workers/lifecycle", subject=cid)
           .to_json_bytes())  # ... onto the archive
    out = run_cli(_no_worker(kafka_settings), "show", cid, "--from", "changelog", "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["complaint_id"] == cid and shown["resolution"]["refund_fen"] == 2550
    assert RAW_PHONE not in out.stdout


def test_the_worker_recovers_case_records_under_either_key_form(kafka_settings, changelog, tmp_path):
    """Changelog keys are the complaint id's UTF-8 bytes; a JSON-string key (faust's default for a table
    with str keys) must read too. A key the worker could not decode used to stall its recovery for good:
    the partition waited for an offset it had already passed, and the worker never became ready."""
    _, raw_final = _case(_unique())
    _, json_final = _case(_unique())
    _write(kafka_settings, changelog, raw_final.complaint_id, CODEC.dumps(raw_final))
    prod = producer(kafka_settings)
    try:
        cid = json_final.complaint_id
        prod.send(changelog, key=json.dumps(cid).encode(), value=CODEC.dumps(json_final),
                  partition=partition_of(cid.encode(), COMMANDS.partitions)).get(timeout=30)
    finally:
        prod.close()
    with running_workers(kafka_settings, ["lifecycle"], tmp_path) as ports:  # waits for /readyz: recovered
        settings = kafka_settings.with_overrides(metrics_port=ports["lifecycle"])
        for final in (raw_final, json_final):
            out = run_cli(settings, "show", final.complaint_id, "--json", "--from", "worker")
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout) == record_json(final)
