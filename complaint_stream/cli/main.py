"""``complaints``: one console command with subcommands; each has ``--help``.

Handlers parse arguments, build settings and hand on to the library; they hold no domain logic.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from complaint_stream.cli import commands
from complaint_stream.schemas import CancelComplaint, ReopenComplaint
from complaint_stream.settings import SettingsError, load_settings
from complaint_stream.workers.registry import WORKERS

Handler = Callable[[argparse.Namespace], int]


def _add(sub: Any, name: str, handler: Handler | None, help_: str, description: str | None = None) -> Any:
    """A subcommand; a group of subcommands (``handler=None``) requires one of its actions."""
    p = sub.add_parser(name, help=help_, description=description or help_)
    if handler is not None:
        p.set_defaults(handler=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="complaints",
        description="Complaint Stream: Kafka-driven complaint handling for mobile operators."
                    " Settings come from COMPLAINTS_* environment variables or a TOML file (--config).",
    )
    parser.add_argument("--config", help="TOML settings file (default: $COMPLAINTS_CONFIG or ./complaints.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _add(sub, "run", commands.run, "run the pipeline locally end to end",
               "Start (or reuse) the broker, create topics, start the workers, publish the example"
               " complaints and show what comes out of the pipeline.")
    run.add_argument("--file", default=None, help="JSON lines of submissions (default: the bundled examples)")
    run.add_argument("--show", type=int, default=25, help="how many output events to print per topic")
    run.add_argument("--keep-running", action="store_true", help="leave the workers running until Ctrl-C")

    kafka = _add(sub, "kafka", None, "manage the local single-node Kafka broker")
    ksub = kafka.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add(ksub, "start", commands.kafka_start, "provision (first time) and start the local broker; idempotent")
    _add(ksub, "stop", commands.kafka_stop, "stop the local broker cleanly")
    _add(ksub, "status", commands.kafka_status, "say whether the local broker runs and where")

    top = _add(sub, "topics", None, "manage the catalogued topics")
    tsub = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add(tsub, "create", commands.topics_create, "create every catalogued topic that is missing; idempotent")
    _add(tsub, "check", commands.topics_check, "report missing topics and drift; exit 1 on any")
    _add(tsub, "list", commands.topics_list, "print the catalogue")

    pub = _add(sub, "publish", commands.publish, "send channel submissions (JSON lines) to the intake topic")
    pub.add_argument("file", help="a JSON-lines file, or - for standard input")

    con = _add(sub, "consume", commands.consume, "print the events of a catalogued topic")
    con.add_argument("topic", help="full or short topic name (received, classified, deadletter ...)")
    con.add_argument("--from-beginning", action="store_true", help="start at the oldest record (default: only new)")
    con.add_argument("--max", type=int, default=None, metavar="N", help="stop after N records")
    con.add_argument("--json", action="store_true", help="one JSON object per line instead of pretty output")
    con.add_argument("--timeout", type=float, default=5.0, help="stop after this many seconds without a record")

    sch = _add(sub, "schema", None, "event schemas")
    ssub = sch.add_subparsers(dest="action", required=True, metavar="ACTION")
    exp = _add(ssub, "export", commands.schema_export, "write a JSON Schema per event and an AsyncAPI 3.0 document")
    exp.add_argument("directory")

    wrk = _add(sub, "worker", commands.worker, "run one stream worker (its own consumer group)")
    wrk.add_argument("name", choices=list(WORKERS), help="; ".join(f"{w.name}: {w.description}"
                                                             for w in WORKERS.values()))
    wrk.add_argument("--loglevel", default=None, help="log level (default: COMPLAINTS_LOG_LEVEL)")

    rep = _add(sub, "replay", commands.replay, "run recorded events through a stage's pure code, no broker",
               "Feed JSON lines of CloudEvents (as `consume --json` prints them) through a stage in event"
               " time and print its output events as JSON lines; a summary goes to stderr.")
    rep.add_argument("stage", choices=list(WORKERS), help="which stage")
    rep.add_argument("file", help="a JSON-lines file, or - for standard input")
    rep.add_argument("--until", default=None, metavar="TIME",
                     help="ISO 8601 time up to which the stage's timers fire after the last event")
    rep.add_argument("--policy", action="append", default=[], metavar="FILE",
                     help="TOML file of settings (the keys of complaints.toml) to replay with; repeatable. For the"
                          " sla stage a .json file is an SLA policy (clocks, targets, escalation ladder): the"
                          " what-if of a policy change")
    rep.add_argument("--calendar", default=None, metavar="FILE",
                     help="sla: a working calendar file (days added to or overriding the official ones)")

    shw = _add(sub, "show", commands.show, "print one complaint's case record: status, resolution, timeline",
               "Ask the lifecycle worker (GET /complaints/ID on its metrics port) and, when it is not reachable or"
               " does not hold the complaint, read the worker's table changelog. Phone numbers are masked.")
    shw.add_argument("id", metavar="ID", help="complaint id")
    shw.add_argument("--json", action="store_true", help="the record as JSON (phone number and email masked)")
    shw.add_argument("--from", dest="source", choices=("worker", "changelog"), default=None,
                     help="only ask the worker, or only read the changelog (default: the worker, then the changelog)")
    shw.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                     help="give up reading the changelog after this long (default: 30)")

    sla = _add(sub, "sla", None, "SLA clocks (时限) of the SLA worker")
    ssub = sla.add_subparsers(dest="action", required=True, metavar="ACTION")
    sls = _add(ssub, "show", commands.sla_show, "print one complaint's clocks: elapsed, paused, remaining, next step",
               "Ask the SLA worker (GET /sla/ID on its metrics port) for the complaint's clocks and print, for each,"
               " its state, target, counted time (working time for a working-time clock), time paused, time"
               " remaining and the next warning or breach.")
    sls.add_argument("id", metavar="ID", help="complaint id")
    sls.add_argument("--json", action="store_true", help="the clocks as one JSON object")

    que = _add(sub, "queues", _queues, "print every team's queue, agents present and load (dispatch worker)",
               "Ask the dispatch worker (GET /teams/TEAM on its metrics port) for each team of the roster and print"
               " its queue length, the oldest wait, agents present (available) / agents, load / capacity and"
               " whether it is within its working hours now. A team the worker does not hold prints as not on"
               " this instance; a worker that does not answer is an error (exit 1).")
    que.add_argument("--json", action="store_true", help='one JSON object: {"teams": [...], "at": TIME}')
    que.add_argument("--team", action="extend", nargs="+", default=None, metavar="ID",
                     help="only these teams (repeatable; default: every team of the roster)")
    que.add_argument("--timeout", type=float, default=3.0, metavar="S",
                     help="give up on the worker's answer for a team after this long (default: 3)")

    cmd = _add(sub, "command", None, "publish a supervisor's command about a complaint",
               "Publish one command to the commands topic, keyed by the complaint id; wait for the broker's"
               " acknowledgement and print the event id.")
    cmdsub = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    note = _add(cmdsub, "note", commands.command, "add a note (备注)")
    note.add_argument("--text", required=True, help="the note")
    prio = _add(cmdsub, "priority", commands.command, "change the priority (调整优先级)")
    prio.add_argument("--to", required=True, metavar="PRIORITY", help="P1, P2, P3 or P4")
    recl = _add(cmdsub, "reclassify", commands.command, "correct the category (改类)")
    recl.add_argument("--to", required=True, metavar="CATEGORY", help="a category (network, billing, ...)")
    merge = _add(cmdsub, "merge", commands.command, "merge MERGED into SURVIVOR (合并); MERGED ends cancelled")
    cancel = _add(cmdsub, "cancel", commands.command, "cancel the complaint (撤销)")
    cancel.add_argument("--code", default=None,
                        help=f"reason code (default: {CancelComplaint.model_fields['reason_code'].default})")
    reopen = _add(cmdsub, "reopen", commands.command, "reopen a resolved or closed complaint (重新处理)")
    reopen.add_argument("--code", default=None,
                        help=f"reason code (default: {ReopenComplaint.model_fields['reason_code'].default})")
    reas = _add(cmdsub, "reassign", commands.command, "move the complaint to another team or agent (改派)")
    reas.add_argument("--team", required=True)
    reas.add_argument("--agent", default=None, help="agent id (default: the team decides)")
    for p in (note, prio, recl, merge, cancel, reopen, reas):
        if p is merge:
            p.add_argument("id", metavar="SURVIVOR", help="the complaint that stays open and keeps both timelines")
            p.add_argument("merged", metavar="MERGED", help="the complaint that ends, merged into SURVIVOR")
        else:
            p.add_argument("id", metavar="ID", help="complaint id")
        p.add_argument("--by", required=True, metavar="WHO", help="who asks (recorded on the case timeline)")
        if p is not note:
            p.add_argument("--reason", required=True, help="why (recorded on the case timeline)")

    cls = _add(sub, "classify", commands.classify, "classify JSON lines (text, channel) from a file or stdin")
    cls.add_argument("file", nargs="?", default="-", help="a JSON-lines file, or - for standard input (default)")

    clf = _add(sub, "classifier", None, "train and evaluate the classifier")
    csub = clf.add_subparsers(dest="action", required=True, metavar="ACTION")
    tr = _add(csub, "train", commands.classifier_train, "train the n-gram model on labelled JSON lines")
    tr.add_argument("files", nargs="+", metavar="FILE", help="JSON lines with text and category (several allowed)")
    tr.add_argument("--out", default=None, help="model path (.npz; default: COMPLAINTS_CLASSIFIER_MODEL or a file in the"
                    " state directory)")
    cor = _add(csub, "corrections", commands.classifier_corrections,
               "supervisors' category corrections (complaints command reclassify) as training lines",
               "Read the compacted corrections topic and print one JSON line per corrected complaint (text with phone"
               " numbers masked, channel, the corrected category): input for `complaints classifier train`.")
    cor.add_argument("--out", default=None, help="write to this file instead of standard output")
    cor.add_argument("--idle", type=float, default=3.0, help="stop after this many seconds without a record")
    ev = _add(csub, "eval", commands.classifier_eval, "per-category precision/recall/F1, macro-F1, risk P/R")
    ev.add_argument("file")
    ev.add_argument("--folds", type=int, default=5, help="cross-validation folds for the rules+model figures")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _queues(args: argparse.Namespace) -> int:
    from complaint_stream.cli.queues_cmd import handler

    return handler(args)


#: Exit codes besides 0 (success) and 1 (the command failed, or some input lines were rejected).
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: the Kafka cluster could not be reached or failed a request
EXIT_NOPERM = 77  # sysexits EX_NOPERM: the cluster refused the credentials or permissions
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output went away (`complaints consume ... | head`)


def describe_failure(exc: BaseException, settings: Any) -> tuple[str, int] | None:
    """One line and an exit code for a failure a user can act on; None for a bug (let it raise)."""
    if isinstance(exc, SettingsError):
        return f"configuration error: {exc}", EXIT_CONFIG
    from complaint_stream.domain.policy_files import PolicyFileError

    if isinstance(exc, PolicyFileError):  # an operator-edited rules/priority/... file: every problem, one per line
        return f"policy file error: {exc}", EXIT_CONFIG
    if isinstance(exc, commands.CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, UnicodeDecodeError):
        return f"input is not UTF-8 text: {exc.reason} (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})", 1
    if not type(exc).__module__.startswith(("kafka", "complaint_stream.kafka")):
        return (str(exc), 1) if isinstance(exc, OSError) else None
    from kafka.errors import KafkaError

    from complaint_stream.kafka.clients import KafkaAuthFailed, KafkaUnavailable, is_auth_error

    if isinstance(exc, KafkaUnavailable):
        return str(exc), EXIT_UNAVAILABLE
    if isinstance(exc, KafkaAuthFailed):
        return str(exc), EXIT_NOPERM
    if isinstance(exc, KafkaError):
        where = f"Kafka at {settings.bootstrap}" if settings is not None else "Kafka"
        return f"{where}: {exc}", EXIT_NOPERM if is_auth_error(exc) else EXIT_UNAVAILABLE
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_settings(config_file=args.config)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        failure = describe_failure(exc, getattr(args, "settings", None))
        if failure is None:
            raise
        message, code = failure
        print(f"complaints: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
