"""``complaints run``: the whole pipeline on this machine, fed with the example complaints."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from complaint_stream.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "complaints.jsonl"


def retime(lines: Iterable[str], now: datetime, run_tag: str) -> list[str]:
    """Make the bundled examples current: shift times so the newest is a minute ago, and tag channel
    references with this run so a second run is not (correctly) swallowed as duplicates of the first.
    Lines that are not JSON objects pass through unchanged."""
    objs: list[object] = []
    for line in lines:
        try:
            objs.append(json.loads(line))
        except json.JSONDecodeError:
            objs.append(line)
    times = [datetime.fromisoformat(o["occurred_at"]) for o in objs
             if isinstance(o, dict) and isinstance(o.get("occurred_at"), str)]
    shift = (now - timedelta(minutes=1)) - max(times) if times else timedelta(0)
    out = []
    for o in objs:
        if isinstance(o, dict):
            if isinstance(o.get("occurred_at"), str):
                o["occurred_at"] = (datetime.fromisoformat(o["occurred_at"]) + shift).isoformat()
            if isinstance(o.get("channel_ref"), str):
                o["channel_ref"] = f"{o['channel_ref']}-{run_tag}"
            out.append(json.dumps(o, ensure_ascii=False))
        else:
            out.append(str(o).rstrip("\n"))
    return out


def _metric(port: int, name: str) -> float:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def run_pipeline(settings: Settings, *, example_file: str | None, show: int, keep_running: bool,
                 ensure_broker: Callable[[Settings], str]) -> int:
    from complaint_stream.channel_api import ChannelPublisher, validate_submission
    from complaint_stream.kafka.admin import create_topics
    from complaint_stream.kafka.records import read_topic
    from complaint_stream.topics import CASES, CLASSIFIED, DEAD_LETTERS, NOTIFICATIONS

    # SIGTERM ends the run like Ctrl-C does, so the workers it started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bootstrap = ensure_broker(settings)
    print(f"Kafka at {bootstrap}")
    created, present = create_topics(settings)
    print(f"topics: {len(created)} created, {len(present)} present")

    marks = {t.name: sum(1 for _ in read_topic(settings, t, idle_timeout=1.0))
             for t in (CLASSIFIED, DEAD_LETTERS, CASES, NOTIFICATIONS)}
    from complaint_stream.workers.launcher import WorkerFailed, start_workers, stop_workers, wait_ready
    from complaint_stream.workers.registry import WORKERS

    ports = {name: settings.metrics_port + i for i, name in enumerate(WORKERS)} if settings.metrics_port else None
    procs = start_workers(settings, WORKERS, Path(settings.state_dir) / "logs", ports=ports)
    try:
        for w in procs:
            print(f"started worker {w.name} (pid {w.proc.pid}), metrics and health {w.url}/, log {w.log}")
        try:
            wait_ready(procs)
        except WorkerFailed as exc:
            print(str(exc), file=sys.stderr)
            return 1
        print("workers ready")
        now = datetime.now(UTC)
        source = Path(example_file) if example_file else EXAMPLES
        lines = retime(source.read_text(encoding="utf-8").splitlines(), now, now.strftime("r%H%M%S"))
        expected = set()
        for line in lines:
            try:
                expected.add(validate_submission(json.loads(line), settings).dedup_key)
            except Exception:
                pass
        with ChannelPublisher(settings) as pub:
            summary = pub.publish_lines(lines, source_name=source.name)
        print(f"\npublished {source.name}: sent {summary.sent}, rejected {summary.rejected_count}")
        for number, reason in summary.rejected:
            print(f"  line {number}: {reason}")

        print(f"\nwaiting for {len(expected)} distinct complaints to come out classified ...")
        deadline = time.monotonic() + 120
        classified: list[Any] = []
        while time.monotonic() < deadline and len(classified) < len(expected):
            recs = list(read_topic(settings, CLASSIFIED, idle_timeout=1.5))[marks[CLASSIFIED.name]:]
            classified = [r.envelope.data for r in recs if r.envelope is not None]
            if any(w.proc.poll() is not None for w in procs):
                print("a worker exited; see its log", file=sys.stderr)
                return 1
        _print_classified(classified, show)
        _print_cases(settings, marks, {c.complaint_id for c in classified}, procs)
        letters = list(read_topic(settings, DEAD_LETTERS, idle_timeout=1.5))[marks[DEAD_LETTERS.name]:]
        print(f"\ndead letters this run: {len(letters)}")
        for rec in letters[:show]:
            if rec.envelope is None:
                print(f"  undecodable record at {rec.topic}[{rec.partition}]@{rec.offset}")
                continue
            dl = rec.envelope.data
            print(f"  [{dl.stage}] {dl.error.type}: {dl.error.message[:110]}")
        dups = _metric(procs[0].port, "complaints_intake_duplicates_total")
        print(f"\nsummary: lines {len(lines)}, rejected {summary.rejected_count}, sent {summary.sent},"
              f" duplicates at intake {dups:.0f}, classified {len(classified)} of {len(expected)} expected")
        ok = len(classified) >= len(expected)
        if keep_running:
            print("\nworkers keep running; publish more with `complaints publish FILE`. Ctrl-C stops them.")
            while all(w.proc.poll() is None for w in procs):
                time.sleep(1)
        return 0 if ok else 1
    finally:
        stop_workers(procs)
        print("workers stopped")


def _print_cases(settings: Settings, marks: dict[str, int], complaint_ids: set[str], procs: list[Any]) -> None:
    """What the lifecycle worker made of them: cases opened, follow-ups attached, acknowledgements."""
    from complaint_stream.kafka.records import read_topic
    from complaint_stream.schemas import CaseChange, CaseUpdated, CommunicationRequested
    from complaint_stream.topics import CASES, NOTIFICATIONS

    deadline = time.monotonic() + 60
    cases: dict[str, Any] = {}
    while time.monotonic() < deadline:
        recs = list(read_topic(settings, CASES, idle_timeout=1.5))[marks.get(CASES.name, 0):]
        cases = {r.envelope.id: r.envelope.data for r in recs
                 if r.envelope is not None and isinstance(r.envelope.data, CaseUpdated)}
        opened = {c.complaint_id for c in cases.values() if c.change is CaseChange.OPENED}
        attached = {c.related for c in cases.values() if c.change is CaseChange.FOLLOW_UP}
        if opened | attached >= complaint_ids or any(w.proc.poll() is not None for w in procs):
            break
    messages = [r.envelope.data for r in list(read_topic(settings, NOTIFICATIONS, idle_timeout=1.5))
                [marks.get(NOTIFICATIONS.name, 0):] if r.envelope is not None]
    acks = [m for m in messages if isinstance(m, CommunicationRequested)
            and m.template_id in ("acknowledgement", "regulator_ack")]
    print(f"\ncase records: {len(opened)} opened, {len(attached)} follow-ups attached to an open case (催单),"
          f" {len(acks)} acknowledgements requested (held until 08:00 China time in quiet hours, except P1);"
          f" `complaints show ID` prints one")


def _print_classified(items: list[Any], show: int) -> None:
    print(f"\n{'complaint':<25} {'channel':<9} {'category':<19} {'prio':<4} {'conf':>5}  flags")
    for c in sorted(items, key=lambda c: (c.priority.value, c.complaint_id))[: max(show, 0) or len(items)]:
        flags = [f.value for f in c.risk_flags]
        if c.repeat_of:
            flags.append(f"repeat-of:{c.repeat_of}")
        if c.follow_up_of:
            flags.append(f"follow-up-of:{c.follow_up_of}")
        if c.needs_review:
            flags.append("needs-review")
        print(f"{c.complaint_id:<25} {c.channel.value:<9} {c.category.value:<19} {c.priority.value:<4}"
              f" {c.confidence:>5.2f}  {' '.join(flags)}")
    if len(items) > show > 0:
        print(f"... and {len(items) - show} more (complaints consume classified --from-beginning)")
