"""Handlers of the ``complaints`` subcommands: parse, call the library, print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from complaint_stream.domain.privacy import mask_msisdn
from complaint_stream.settings import Settings


class CommandError(RuntimeError):
    """A command failed in a way the user can act on; ``exit_code`` is the command's exit status."""

    exit_code: int = 1


# -- helpers ---------------------------------------------------------------------------

def _open_input(name: str) -> IO[Any]:
    """The file (or standard input) in binary mode: its lines are bytes, each decoded on its own so one
    line that is not UTF-8 text is reported by number instead of ending the command."""
    if name == "-":
        return getattr(sys.stdin, "buffer", sys.stdin)  # a test's StringIO has no buffer: its lines are str
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"{name}: no such file")
    return path.open("rb")


def require_broker(settings: Settings) -> None:
    """Fail clearly when the local broker is meant to be used but is not running."""
    if not settings.uses_local_broker:
        return
    from complaint_stream.kafka.local_broker import LocalBroker

    if LocalBroker.from_settings(settings).running_pid() is None:
        raise CommandError(
            f"no Kafka broker: the local broker ({settings.local_bootstrap}) is not running."
            " Start it with `complaints kafka start`, or set COMPLAINTS_KAFKA_BOOTSTRAP to your cluster."
        )


def ensure_broker(settings: Settings) -> str:
    """Start the local broker when no cluster is configured; return the bootstrap address."""
    if not settings.uses_local_broker:
        return settings.bootstrap
    from complaint_stream.kafka.local_broker import BrokerError, LocalBroker

    try:
        report = LocalBroker.from_settings(settings).start()
    except BrokerError as exc:
        raise CommandError(str(exc)) from exc
    if not report.already_running:
        print(f"started local Kafka {settings.kafka_version} at {report.bootstrap}"
              f" in {report.start_seconds:.1f}s (jars {report.jars_seconds:.1f}s)", file=sys.stderr)
    return report.bootstrap


def _mask_customer(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (mask_msisdn(v) if k == "msisdn" and isinstance(v, str) else _mask_customer(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask_customer(v) for v in obj]
    return obj


# -- kafka -----------------------------------------------------------------------------

def kafka_start(args: argparse.Namespace) -> int:
    s: Settings = args.settings
    if not s.uses_local_broker:
        print(f"an external cluster is configured ({s.kafka_bootstrap}); nothing to start")
        return 0
    from complaint_stream.kafka.local_broker import BrokerError, LocalBroker

    broker = LocalBroker.from_settings(s)
    try:
        report = broker.start()
    except BrokerError as exc:
        raise CommandError(str(exc)) from exc
    if report.already_running:
        print(f"Kafka already running at {report.bootstrap} (pid {report.pid})")
    else:
        print(f"Kafka {s.kafka_version} started at {report.bootstrap} (pid {report.pid}) in"
              f" {report.start_seconds:.1f}s; jars {report.jars_seconds:.1f}s; log {broker.layout.log_file}")
    print(report.bootstrap)
    return 0


def kafka_stop(args: argparse.Namespace) -> int:
    from complaint_stream.kafka.local_broker import LocalBroker

    stopped = LocalBroker.from_settings(args.settings).stop()
    print("Kafka stopped" if stopped else "Kafka was not running")
    return 0


def kafka_status(args: argparse.Namespace) -> int:
    s: Settings = args.settings
    if not s.uses_local_broker:
        print(f"external cluster configured: {s.kafka_bootstrap}")
        return 0
    from complaint_stream.kafka.local_broker import LocalBroker

    broker = LocalBroker.from_settings(s)
    pid = broker.running_pid()
    if pid is None:
        print(f"Kafka not running (would listen on {s.local_bootstrap}; data {broker.layout.data_dir})")
        return 3
    print(f"Kafka running at {s.local_bootstrap} (pid {pid}); data {broker.layout.data_dir}; log {broker.layout.log_file}")
    return 0


# -- topics ----------------------------------------------------------------------------

def topics_create(args: argparse.Namespace) -> int:
    require_broker(args.settings)
    from complaint_stream.kafka.admin import create_topics

    created, present = create_topics(args.settings)
    for name in created:
        print(f"created  {name}")
    for name in present:
        print(f"present  {name}")
    print(f"{len(created)} created, {len(present)} already present")
    return 0


def topics_check(args: argparse.Namespace) -> int:
    require_broker(args.settings)
    from complaint_stream.kafka.admin import check_topics

    drifts = check_topics(args.settings)
    for d in drifts:
        print(f"DRIFT {d}")
    if drifts:
        print(f"{len(drifts)} difference(s) from the catalogue")
        return 1
    print("all catalogued topics present and as declared")
    return 0


def topics_list(args: argparse.Namespace) -> int:
    from complaint_stream.topics import ALL

    for t in ALL:
        values = ", ".join(v.__name__ for v in t.values)
        print(f"{t.name}\n    partitions={t.partitions} cleanup={t.cleanup_policy}"
              f" retention={t.retention_ms // 86_400_000}d{' internal' if t.internal else ''}\n"
              f"    key: {t.key}\n    values: {values}\n    {t.description}")
    return 0


# -- publish / consume ------------------------------------------------------------------

def publish(args: argparse.Namespace) -> int:
    require_broker(args.settings)
    from complaint_stream.channel_api import ChannelPublisher, PublishSummary

    summary = PublishSummary()
    with _open_input(args.file) as fh, ChannelPublisher(args.settings) as pub:
        try:
            pub.publish_lines(fh, source_name=Path(args.file).name if args.file != "-" else "stdin", summary=summary)
        finally:  # also when the cluster became unreachable half-way: what was done so far
            for number, reason in sorted(summary.rejected):
                print(f"line {number}: rejected: {reason}", file=sys.stderr)
            print(f"sent {summary.sent}, rejected {summary.rejected_count}")
    return 0 if summary.rejected_count == 0 else 1


def format_record(rec: Any, as_json: bool) -> str:
    if as_json:
        if rec.envelope is not None:
            return rec.envelope.model_dump_json()
        return json.dumps({"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                           "undecodable": rec.error.message})
    head = (f"{rec.topic} [{rec.partition}@{rec.offset}] key={(rec.key or b'').decode('utf-8', 'replace')}")
    if rec.envelope is None:
        return f"{head}\n  UNDECODABLE: {rec.error.message}"
    env = rec.envelope
    body = json.dumps(_mask_customer(env.data.model_dump(mode="json")), ensure_ascii=False, indent=2)
    body = "\n".join("  " + line for line in body.splitlines())
    return f"{head} type={env.type} time={env.time.isoformat()}\n{body}"


def consume(args: argparse.Namespace) -> int:
    require_broker(args.settings)
    from complaint_stream.kafka.records import read_topic
    from complaint_stream.topics import UnknownTopic, lookup

    try:
        spec = lookup(args.topic)
    except UnknownTopic as exc:
        raise CommandError(str(exc.args[0])) from exc
    count = 0
    try:
        for rec in read_topic(args.settings, spec, from_beginning=args.from_beginning,
                              max_records=args.max, idle_timeout=args.timeout):
            print(format_record(rec, args.json), flush=True)
            count += 1
    except LookupError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{count} record(s) from {spec.name}", file=sys.stderr)
    return 0


# -- schema ----------------------------------------------------------------------------

def schema_export(args: argparse.Namespace) -> int:
    from complaint_stream.schemas.export import export
    from complaint_stream.topics import ALL

    files = export(Path(args.directory), ALL)
    for f in files:
        print(f)
    return 0


# -- workers, classifier, run: see later sections --------------------------------------

def worker(args: argparse.Namespace) -> int:
    from complaint_stream.workers.registry import get
    from complaint_stream.workers.runtime import run_worker

    return run_worker(get(args.name), args.settings, loglevel=args.loglevel)


def replay(args: argparse.Namespace) -> int:
    from complaint_stream.cli.replay_cmd import ReplayError, run_replay

    try:
        with _open_input(args.file) as fh:
            return run_replay(args.stage, fh, args.settings, until=args.until, policy_files=args.policy,
                              calendar=args.calendar)
    except ReplayError as exc:
        raise CommandError(str(exc)) from exc


def classify(args: argparse.Namespace) -> int:
    from complaint_stream.cli.classifier_cmds import classify_lines

    with _open_input(args.file) as fh:
        return classify_lines(fh, sys.stdout, args.settings)


def classifier_train(args: argparse.Namespace) -> int:
    from complaint_stream.cli.classifier_cmds import train

    lines: list[bytes | str] = []
    for name in args.files:
        with _open_input(name) as fh:
            lines.extend(fh)
    return train(lines, args.out, args.settings)


def classifier_corrections(args: argparse.Namespace) -> int:
    """Supervisors' category corrections (the compacted corrections topic) as training lines."""
    import json

    from complaint_stream.kafka.records import read_topic
    from complaint_stream.schemas import ClassificationCorrected
    from complaint_stream.topics import CORRECTIONS

    require_broker(args.settings)
    latest: dict[str, ClassificationCorrected] = {}
    try:
        for rec in read_topic(args.settings, CORRECTIONS, idle_timeout=args.idle):
            if rec.envelope is not None and isinstance(rec.envelope.data, ClassificationCorrected):
                latest[rec.envelope.data.complaint_id] = rec.envelope.data  # the last correction of a complaint wins
    except LookupError as exc:
        raise CommandError(str(exc.args[0])) from exc
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for c in latest.values():
            line = {"text": c.text, "channel": c.channel.value, "category": c.category.value,
                    "source": "correction", "complaint_id": c.complaint_id, "was": c.previous_category.value}
            if c.language in ("zh", "en"):
                line["lang"] = c.language
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{len(latest)} corrections", file=sys.stderr)
    return 0


def classifier_eval(args: argparse.Namespace) -> int:
    from complaint_stream.cli.classifier_cmds import evaluate_file

    with _open_input(args.file) as fh:
        return evaluate_file(fh, args.settings, folds=args.folds, as_json=args.json)


def show(args: argparse.Namespace) -> int:
    from complaint_stream.cli.case_cmds import show as show_case

    return show_case(args.settings, args.id, as_json=args.json, source=args.source, timeout=args.timeout)


def sla_show(args: argparse.Namespace) -> int:
    from complaint_stream.cli.sla_cmds import show as show_clocks

    return show_clocks(args.settings, args.id, as_json=args.json)


def command(args: argparse.Namespace) -> int:
    from complaint_stream.cli.case_cmds import command as send_command

    return send_command(args.settings, args)


def run(args: argparse.Namespace) -> int:
    from complaint_stream.cli.run_cmd import run_pipeline

    return run_pipeline(args.settings, example_file=args.file, show=args.show, keep_running=args.keep_running,
                        ensure_broker=ensure_broker)

