"""``complaints show`` and ``complaints command``: one case record, and supervisors' commands.

``show`` asks the lifecycle worker (``GET /complaints/{id}`` on its metrics port) and, when it is not
reachable or does not hold the complaint (another instance may), reads the worker's table changelog
(``complaints-lifecycle-lifecycle-cases-changelog``): the one partition the key lives in, from its
beginning to its end offset, without a consumer group; the last value of the key wins and a tombstone
means the case was forgotten. It prints the record with its phone numbers masked
(:mod:`complaint_stream.domain.lifecycle.view`).

``command`` publishes one supervisor command to the commands topic, keyed by the complaint id, in a
CloudEvents envelope, waits for the broker's acknowledgement and prints the event id.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from complaint_stream.cli.commands import CommandError, require_broker
from complaint_stream.domain.lifecycle.view import record_json, render_timeline
from complaint_stream.schemas import (
    AddNote,
    CancelComplaint,
    CaseRecord,
    Category,
    ChangePriority,
    ComplaintEvent,
    ComplaintId,
    MergeComplaints,
    Priority,
    ReassignComplaint,
    ReclassifyComplaint,
    ReopenComplaint,
    wrap,
)
from complaint_stream.schemas.codec import field_errors
from complaint_stream.settings import Settings
from complaint_stream.workers.registry import WORKERS

#: The lifecycle worker's table (``complaint_stream.workers.lifecycle.binding``; a unit test keeps them equal).
LIFECYCLE_TABLE = "lifecycle-cases"
#: ``source`` of the envelopes of commands sent from here.
COMMAND_SOURCE = "/supervisors/cli"
#: How long ``show`` waits for the worker's answer before it reads the changelog instead.
WORKER_TIMEOUT_SECONDS = 3.0
#: How long ``command`` waits for the broker's acknowledgement.
ACK_TIMEOUT_SECONDS = 30.0
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE, as complaint_stream.cli.main.EXIT_UNAVAILABLE

_ID = TypeAdapter(ComplaintId)


class InvalidArguments(CommandError):
    """An argument the command cannot use (an unknown category or priority, a malformed id): exit 2."""

    exit_code = EXIT_USAGE


class CaseNotFound(CommandError):
    """No case record for the id (never seen, or forgotten): exit 1."""


class WorkerUnavailable(CommandError):
    """The lifecycle worker's HTTP endpoint did not answer (only with ``--from worker``): exit 69."""

    exit_code = EXIT_UNAVAILABLE


def complaint_id(value: str, what: str = "complaint id") -> str:
    """``value`` when it is a well-formed complaint id, else :class:`InvalidArguments`."""
    try:
        return _ID.validate_python(value)
    except ValidationError:
        raise InvalidArguments(f"invalid {what} {value!r}: 3-64 characters, letters, digits, '.', '_' or '-',"
                               " starting with a letter or digit") from None


def changelog_topic() -> str:
    """The changelog topic of the lifecycle worker's table (faust: ``<app id>-<table>-changelog``)."""
    return f"{WORKERS['lifecycle'].app_id}-{LIFECYCLE_TABLE}-changelog"


def _decode(raw: bytes, where: str) -> CaseRecord:
    try:
        return CaseRecord.model_validate_json(raw)
    except ValidationError as exc:  # field_errors: no input values (personal data) in the message
        detail = "; ".join(f"{f.loc or '<record>'}: {f.msg}" for f in field_errors(exc)[:3])
        raise CommandError(f"{where} holds a case record that does not validate: {detail}") from None


# -- the worker's HTTP endpoint --------------------------------------------------------------

def worker_view_url(settings: Settings, worker: str, prefix: str, key: str) -> str:
    """``http://<metrics_host>:<port><prefix><key>`` of a worker's state view; a wildcard bind address is
    asked on loopback, the port is ``metrics_port`` or the worker's default."""
    host = settings.metrics_host.strip() or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = settings.metrics_port or WORKERS[worker].metrics_port
    return f"http://{host}:{port}{prefix}{urllib.parse.quote(key, safe='')}"


def worker_url(settings: Settings, cid: str) -> str:
    """``http://<metrics_host>:<port>/complaints/<id>`` on the lifecycle worker."""
    return worker_view_url(settings, "lifecycle", "/complaints/", cid)


class _NotHere(Exception):
    """The worker answered 404: it does not hold the complaint (another instance may)."""


def from_worker(settings: Settings, cid: str, timeout: float = WORKER_TIMEOUT_SECONDS) -> CaseRecord:
    """The record as the worker holds it. Raises :class:`_NotHere` on 404 and :class:`WorkerUnavailable`
    when the worker does not answer (or answers anything else)."""
    url = worker_url(settings, cid)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotHere(url) from None
        raise WorkerUnavailable(f"the lifecycle worker at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WorkerUnavailable(f"the lifecycle worker at {url} is not reachable: {reason}") from None
    return _decode(body, f"the lifecycle worker at {url}")


# -- the changelog -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChangelogRead:
    """What the changelog partition of a key says: its last value (``None``: a tombstone) if any."""

    topic: str
    partition: int
    records: int  # records read from the partition
    found: bool
    value: bytes | None


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2), and so the worker's table, gives the key."""
    from kafka.partitioner.default import murmur2

    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


def read_changelog(settings: Settings, cid: str, timeout: float, topic: str | None = None) -> ChangelogRead:
    """Read the key's partition of the changelog (or of ``topic``, a compacted topic keyed the same way) from
    its beginning up to its end offset (taken when the read starts), within ``timeout`` seconds."""
    from kafka import TopicPartition

    from complaint_stream.kafka.clients import consumer as make_consumer

    topic = topic or changelog_topic()
    key = cid.encode("utf-8")
    keys = {key, json.dumps(cid).encode("utf-8")}  # UTF-8 keys; JSON strings in changelogs of before 2026-12
    deadline = time.monotonic() + timeout
    ms = max(1, int(timeout * 1000))
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        parts = consumer.partitions_for_topic(topic)
        metadata_deadline = min(deadline, time.monotonic() + 2)
        while not parts and time.monotonic() < metadata_deadline:
            time.sleep(0.2)  # a topic created a moment ago may not be in the metadata yet
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise CaseNotFound(f"no case record for {cid}: the topic {topic} does not exist"
                               " (has the lifecycle worker run against this cluster?)")
        tp = TopicPartition(topic, partition_of(key, len(parts)))
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp], timeout_ms=ms)[tp]
        found, value, count = False, None, 0
        while True:
            position = consumer.position(tp, timeout_ms=ms)
            if position is not None and position >= end:
                break
            if time.monotonic() > deadline:
                raise WorkerUnavailable(f"reading {topic}[{tp.partition}] took longer than {timeout:g} s"
                                        f" (at offset {position} of {end}); try a longer --timeout")
            for records in consumer.poll(timeout_ms=500).values():
                for msg in records:
                    if msg.offset >= end:
                        continue
                    count += 1
                    if msg.key in keys:
                        found, value = True, msg.value
        return ChangelogRead(topic, tp.partition, count, found, value)
    finally:
        consumer.close()


def from_changelog(settings: Settings, cid: str, timeout: float) -> CaseRecord:
    require_broker(settings)
    read = read_changelog(settings, cid, timeout)
    where = f"{read.topic}[{read.partition}]"
    if not read.found:
        raise CaseNotFound(f"no case record for {cid} (not in the lifecycle worker's table changelog {where})")
    if read.value is None:  # left the worker's memory: archived
        from complaint_stream.schemas import CaseArchived, DecodeError, decode
        from complaint_stream.topics import CASE_ARCHIVE

        archive = read_changelog(settings, cid, timeout, topic=CASE_ARCHIVE.name)
        if not archive.found or archive.value is None:
            raise CaseNotFound(f"no case record for {cid}: it left the worker's table ({where}) and is not on"
                               f" the archive topic {archive.topic}[{archive.partition}]")
        try:
            return decode(archive.value, [CaseArchived]).data.record
        except DecodeError as exc:
            raise CaseNotFound(f"the archived record of {cid} does not decode: {exc.message}") from exc
    return _decode(read.value, where)


# -- show ----------------------------------------------------------------------------------------

def show(settings: Settings, raw_id: str, *, as_json: bool = False, source: str | None = None,
         timeout: float = 30.0) -> int:
    """Print one case record (text view, or JSON with ``as_json``). ``source``: ``worker``, ``changelog``
    or ``None`` (the worker, then the changelog when it is not reachable or does not hold it)."""
    cid = complaint_id(raw_id)
    record: CaseRecord | None = None
    if source in (None, "worker"):
        try:
            record = from_worker(settings, cid)
        except _NotHere as here:
            if source == "worker":
                raise CaseNotFound(f"no case record for {cid} on the lifecycle worker at {here}"
                                   " (another instance may hold it: try --from changelog)") from None
            print(f"{cid} is not on the lifecycle worker at {here}; reading the changelog", file=sys.stderr)
        except WorkerUnavailable as exc:
            if source == "worker":
                raise
            print(f"{exc}; reading the changelog", file=sys.stderr)
    if record is None:
        record = from_changelog(settings, cid, timeout)
    if as_json:
        print(json.dumps(record_json(record), ensure_ascii=False, indent=2))
    else:
        print(render_timeline(record), end="")
    return 0


# -- command -------------------------------------------------------------------------------------

def _enum(kind: type[Category] | type[Priority], value: str, what: str) -> Any:
    for member in kind:
        if value.strip().lower() == member.value.lower():
            return member
    known = ", ".join(m.value for m in kind)
    raise InvalidArguments(f"unknown {what} {value!r}: expected one of {known}")


def build_command(args: argparse.Namespace, now: datetime) -> ComplaintEvent:
    """The payload of ``complaints command ACTION ...``; :class:`InvalidArguments` when it is not valid."""
    action = args.action
    cid = complaint_id(args.id)
    by, reason = args.by, getattr(args, "reason", "")
    fields: dict[str, Any] = {"complaint_id": cid}
    model: type[ComplaintEvent]
    if action == "note":
        model, fields["note"] = AddNote, {"author": by, "text": args.text, "at": now}
    elif action == "priority":
        model = ChangePriority
        fields.update(priority=_enum(Priority, args.to, "priority"), requested_by=by, reason=reason)
    elif action == "reclassify":
        model = ReclassifyComplaint
        fields.update(category=_enum(Category, args.to, "category"), requested_by=by, reason=reason)
    elif action == "merge":
        merged = complaint_id(args.merged, "complaint id (merged)")
        if merged == cid:
            raise InvalidArguments(f"cannot merge {cid} into itself")
        model = MergeComplaints
        fields.update(merged_id=merged, requested_by=by, reason=reason)
    elif action == "cancel":
        model = CancelComplaint
        fields.update(requested_by=by, reason=reason, **({"reason_code": args.code} if args.code else {}))
    elif action == "reopen":
        model = ReopenComplaint
        fields.update(requested_by=by, reason=reason, **({"reason_code": args.code} if args.code else {}))
    elif action == "reassign":
        model = ReassignComplaint
        fields.update(team=args.team, agent_id=args.agent, requested_by=by, reason=reason)
    else:  # pragma: no cover - argparse allows only the actions above
        raise InvalidArguments(f"unknown action {action!r}")
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{_option(f.loc)}: {f.msg}" for f in field_errors(exc))
        raise InvalidArguments(f"invalid {action} command: {problems}") from None


#: Payload fields as the options that set them.
_OPTIONS = {"requested_by": "--by", "note.author": "--by", "note.text": "--text", "reason": "--reason",
            "reason_code": "--code", "team": "--team", "agent_id": "--agent", "merged_id": "MERGED",
            "complaint_id": "ID"}


def _option(loc: str) -> str:
    return _OPTIONS.get(loc, loc)


def publish_command(settings: Settings, payload: ComplaintEvent) -> tuple[str, Any]:
    """Send the command keyed by its complaint id; wait for the acknowledgement. (event id, metadata)."""
    from complaint_stream.kafka.records import EnvelopeProducer
    from complaint_stream.topics import COMMANDS

    cid = payload.complaint_id
    env = wrap(payload, source=COMMAND_SOURCE, subject=cid)
    with EnvelopeProducer(settings) as producer:
        metadata = producer.send(COMMANDS, cid, env).get(timeout=ACK_TIMEOUT_SECONDS)
    return env.id, metadata


def command(settings: Settings, args: argparse.Namespace) -> int:
    payload = build_command(args, datetime.now(UTC))  # validated before any connection is made
    require_broker(settings)
    from complaint_stream.topics import COMMANDS

    event_id, md = publish_command(settings, payload)
    print(f"{payload.event_type} for {payload.complaint_id} acknowledged:"
          f" {COMMANDS.name}[{md.partition}]@{md.offset}", file=sys.stderr)
    print(event_id)
    return 0
