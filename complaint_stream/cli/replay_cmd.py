"""``complaints replay STAGE FILE``: recorded events through a stage's pure code, without a broker.

Input: JSON lines of CloudEvents, as ``complaints consume --json`` prints them
(events of types the stage does not consume are skipped and counted). Output:
the stage's events as JSON lines on standard output, in the same format, so
replays chain (``complaints replay intake subs.jsonl | complaints replay classify -``);
a summary goes to standard error.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from complaint_stream.domain.stage import Refused, Stage, run_in_event_time
from complaint_stream.schemas import DecodeError, Envelope, decode
from complaint_stream.settings import Settings
from complaint_stream.topics import TopicSpec


class Writes(Protocol):
    def write(self, text: str, /) -> Any: ...


class ReplayError(ValueError):
    """The replay's arguments are unusable (a bad time, a bad policy file)."""


def parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ReplayError(f"--until: not an ISO 8601 time: {text!r}") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def with_policy(settings: Settings, policy_files: Iterable[str]) -> Settings:
    """Overlay TOML files of settings (the keys of complaints.toml) on the settings."""
    for name in policy_files:
        try:
            overrides = tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ReplayError(f"--policy {name}: {exc}") from exc
        unknown = sorted(set(overrides) - set(type(settings).model_fields))
        if unknown:
            raise ReplayError(f"--policy {name}: unknown setting(s) {', '.join(unknown)}")
        settings = settings.with_overrides(**overrides)
    return settings


def _stated_time(raw: bytes) -> datetime:
    """The event's own time, the ``now`` a live worker would have validated it at (the wall clock when
    the line has none: decoding then says what is wrong with it)."""
    try:
        stated = json.loads(raw).get("time")
        return parse_time(stated) if isinstance(stated, str) else datetime.now(UTC)
    except (ValueError, AttributeError, ReplayError):
        return datetime.now(UTC)


def read_events(stage: Stage[Any], lines: Iterable[bytes | str], report: Counter[str],
                errors: TextIO) -> list[Envelope[Any]]:
    """Decode each line (bytes from a binary file, or text) on its own: one that is not UTF-8 or not an
    event is reported by number (``invalid_encoding``, ``invalid_json`` ...) and the rest still go."""
    events = []
    for number, line in enumerate(lines, start=1):
        raw = (line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")).rstrip(b"\r\n")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
        if not raw.strip():
            continue
        try:
            events.append(decode(raw, stage.consumes, context=stage.decode_context(_stated_time(raw))))
        except DecodeError as exc:
            if exc.kind == "unexpected_event_type":
                report["skipped (not consumed by this stage)"] += 1
                continue
            report["rejected"] += 1
            print(f"line {number}: rejected: {exc.kind}: {exc.message}", file=errors)
    return events


def replay(stage: Stage[Any], lines: Iterable[bytes | str], out: Writes, errors: TextIO,
           until: datetime | None = None, feedback: Iterable[TopicSpec] = ()) -> int:
    """Replay ``lines`` through ``stage``; outputs to ``feedback`` topics are applied too (and printed).
    An event the stage's rules refuse is reported on standard error with its rule, as the worker would
    dead-letter it, and counted; it does not make the replay fail."""
    report: Counter[str] = Counter()
    events = read_events(stage, lines, report, errors)
    produced: Counter[str] = Counter()

    def refused(event: Envelope[Any], refusal: Refused) -> None:
        report["refused"] += 1
        print(f"event {event.id} ({event.type}): refused: {refusal}", file=errors)

    for output in run_in_event_time(stage, events, until=until, on_refused=refused, feedback=feedback):
        out.write(output.event.model_dump_json() + "\n")
        produced[output.topic.name] += 1
    parts = [f"{len(events)} event(s) in"] + [f"{n} {what}" for what, n in sorted(report.items())]
    parts += [f"{n} to {topic}" for topic, n in sorted(produced.items())] or ["no output"]
    print(f"replay {stage.name}: " + ", ".join(parts), file=errors)
    return 1 if report["rejected"] else 0


def stage_files(name: str, settings: Settings, policy_files: Iterable[str],
                calendar: str | None) -> tuple[Settings, list[str]]:
    """The sla stage's own files: a ``.json`` ``--policy`` is an SLA policy and ``--calendar`` its working
    calendar, each checked now (one line per problem); the other policy files are TOML settings."""
    toml = [f for f in policy_files if not f.endswith(".json")]
    own = [f for f in policy_files if f.endswith(".json")]
    if (own or calendar) and name != "sla":
        raise ReplayError("a .json --policy and --calendar are the sla stage's (use TOML settings for the others)")
    if len(own) > 1:
        raise ReplayError("--policy: one SLA policy file at a time")
    overrides = {k: v for k, v in (("sla_policy", own[0] if own else None), ("sla_calendar", calendar)) if v}
    if overrides:
        from complaint_stream.bootstrap import load_sla_policy
        from complaint_stream.domain.policy_files import PolicyFileError

        settings = settings.with_overrides(**overrides)
        try:
            load_sla_policy(settings)
        except (PolicyFileError, OSError) as exc:
            raise ReplayError(f"--policy/--calendar: {exc}") from exc
    return settings, toml


def run_replay(name: str, file: Iterable[bytes | str], settings: Settings, *, until: str | None,
               policy_files: Iterable[str], calendar: str | None = None) -> int:
    """Replay the named stage; a stage whose outputs go to another's internal topic (the router's work for
    the teams' dispatcher) is replayed together with that one, which also reads the input lines (agents'
    presence): ``complaints replay assign`` prints the work and the assignments it leads to."""
    from complaint_stream.workers.registry import WORKERS, get

    settings, policy_files = stage_files(name, settings, policy_files, calendar)
    settings = with_policy(settings, policy_files)
    stop = None if until is None else parse_time(until)
    bindings = [get(name).load().binding(settings)]
    while True:
        internal = {t.name for t in bindings[-1].stage.produces if t.internal}
        following = [e.load().binding(settings) for e in WORKERS.values()
                     if any(t.name in internal for t in e.load().binding(settings).inputs)
                     and e.name != bindings[-1].stage.name]
        if not following:
            break
        bindings.append(following[0])
    lines = [line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass") for line in file]
    status = 0
    for binding in bindings:
        stage = binding.stage
        produced = {t.name for t in stage.produces}
        feedback = [t for t in binding.inputs if t.name in produced]  # its own internal topic (lifecycle links)
        out = _Tee(sys.stdout)
        status |= replay(stage, lines, out, sys.stderr, until=stop, feedback=feedback)
        lines = [*lines, *out.lines]  # what the next stage reads: the input and this stage's outputs
    return status


class _Tee:
    """Standard output that also keeps what was written, line by line, for the next stage of a chain."""

    def __init__(self, out: TextIO):
        self.out = out
        self.lines: list[bytes] = []

    def write(self, text: str) -> None:
        self.out.write(text)
        self.lines.append(text.encode("utf-8"))
