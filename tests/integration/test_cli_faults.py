"""The real `complaints` command against faults: an unreachable or silent cluster, records too large to
send, binary input. Each ends with a non-zero exit, short stderr naming the cluster or the line (never a
traceback), within a bounded time; the lines after a bad one are still published."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from complaint_stream import topics
from complaint_stream.kafka.records import read_topic
from complaint_stream.schemas import DeadLetter
from complaint_stream.settings import Settings
from complaint_stream.workers.registry import WORKERS
from tests.support.cli import REPO, settings_env
from tests.support.factories import submission

#: A hang detector, not a speed measure: without the connect timeout (10 s by default) kafka-python keeps
#: retrying a refused or silent cluster for minutes. The command must give up after the timeout it names
#: in its message; the margin covers interpreter start and imports of ten commands at once on a loaded
#: 2-core machine (15 s was seen exceeded by 0.06 s in CI, with nothing hanging).
HANG_MARGIN_SECONDS = 20.0
BOUND_SECONDS = 10 + HANG_MARGIN_SECONDS
EXIT_UNAVAILABLE = 69


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def run(settings: Settings, *args: str, stdin: bytes = b"", timeout: float = 120) -> Result:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "complaint_stream.cli.main", *args], cwd=REPO,
                          env=settings_env(settings), input=stdin, capture_output=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"),
                  time.monotonic() - start)


def run_all(settings: Settings, commands: list[tuple[str, ...]]) -> dict[tuple[str, ...], Result]:
    """The commands at once (each measures its own time), so the suite waits one timeout, not five."""
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = {cmd: pool.submit(run, settings, *cmd, timeout=60) for cmd in commands}
        return {cmd: fut.result() for cmd, fut in futures.items()}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts TCP connections (the kernel completes them) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        yield s.getsockname()[1]


@pytest.fixture
def valid_file(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(submission(1), ensure_ascii=False) + "\n", encoding="utf-8")
    return path


KAFKA_COMMANDS = [("topics", "check"), ("topics", "create"), ("consume", "submissions"), ("run",),
                  *(("worker", name) for name in WORKERS)]


def assert_one_line_naming(cmd: tuple[str, ...], result: Result, bootstrap: str, reason: str) -> None:
    assert result.returncode == EXIT_UNAVAILABLE, (cmd, result.stderr)
    assert "Traceback" not in result.stderr, cmd
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (cmd, result.stderr)
    assert lines[0].startswith(f"complaints: cannot reach Kafka at {bootstrap} within 10 s: "), (cmd, lines[0])
    assert reason in lines[0], (cmd, lines[0])
    assert result.elapsed < BOUND_SECONDS, (cmd, result.elapsed)


def test_every_kafka_command_fails_fast_with_one_line_when_the_cluster_refuses_connections(
        base_settings, tmp_path, valid_file):
    bootstrap = f"127.0.0.1:{closed_port()}"
    settings = base_settings.with_overrides(kafka_bootstrap=bootstrap, state_dir=tmp_path)
    results = run_all(settings, [*KAFKA_COMMANDS, ("publish", str(valid_file))])
    for cmd, result in results.items():
        assert_one_line_naming(cmd, result, bootstrap, "connection refused")
        assert "sent" not in result.stdout  # nothing was read before the cluster was reached
    assert results[("run",)].stdout.strip() == f"Kafka at {bootstrap}"


def test_a_port_that_accepts_but_never_answers_is_named_within_the_bound(base_settings, tmp_path, valid_file):
    with silent_listener() as port:
        bootstrap = f"127.0.0.1:{port}"
        settings = base_settings.with_overrides(kafka_bootstrap=bootstrap, state_dir=tmp_path)
        results = run_all(settings, [("topics", "check"), ("consume", "received"), ("publish", str(valid_file))])
    for cmd, result in results.items():
        assert_one_line_naming(cmd, result, bootstrap, "accepts connections but no Kafka answer came")


def test_the_connect_timeout_is_a_setting(base_settings, tmp_path):
    bootstrap = f"127.0.0.1:{closed_port()}"
    settings = base_settings.with_overrides(kafka_bootstrap=bootstrap, state_dir=tmp_path,
                                            kafka_connect_timeout_seconds=2)
    result = run(settings, "topics", "check")
    assert result.returncode == EXIT_UNAVAILABLE and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"complaints: cannot reach Kafka at {bootstrap} within 2 s: connection refused"
    assert result.elapsed < 2 + HANG_MARGIN_SECONDS


# -- bad lines against the real broker ---------------------------------------------------------------

def _ours(records, tag: str):
    return [r for r in records if tag.encode() in (r.key or b"")]


def _letters(settings: Settings, source_name: str) -> dict[int, DeadLetter]:
    out = {}
    for rec in read_topic(settings, topics.DEAD_LETTERS, idle_timeout=3.0):
        dl = rec.envelope.data if rec.envelope is not None else None
        if not isinstance(dl, DeadLetter) or dl.stage != "publish" or not dl.original_headers:
            continue
        origin = base64.b64decode(dl.original_headers[0][1]).decode()
        if origin.startswith(f"{source_name}:"):
            out[int(origin.rsplit(":", 1)[1])] = dl
    return out


def test_oversized_and_binary_lines_are_reported_dead_lettered_and_the_rest_published(kafka_settings, tmp_path):
    tag = f"FAULT-{uuid.uuid4().hex[:8]}"
    first = submission(1, channel_ref=f"{tag}-1")
    # Valid, but 1.2 MB: more than one produce request may carry (max_request_size, 1 MiB).
    huge_valid = submission(2, channel_ref=f"{tag}-2",
                            attachments=[{"uri": "https://files.example.com/" + "a" * 120_000}] * 10)
    # Invalid and 1.8 MB: its dead letter keeps the head, the size and the SHA-256, and fits.
    huge_invalid = submission(3, channel_ref=f"{tag}-3", text="长" * 600_000)
    last = submission(6, channel_ref=f"{tag}-6")
    lines = [json.dumps(o, ensure_ascii=False).encode() for o in (first, huge_valid, huge_invalid)]
    lines += [b"\xff\xfe\x00 binary", b'{"channel": "app", "text": "NUL \x00 inside"}',
              json.dumps(last, ensure_ascii=False).encode()]
    name = f"{tag}.jsonl"
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = run(kafka_settings, "publish", str(path))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4", "line 5"], result.stderr
    assert re.fullmatch(r"line 2: rejected: record of 1\.\d MiB exceeds the 1 MiB limit \(\d{7} > 1048576 bytes\)",
                        errors[0]), errors[0]
    assert errors[1].startswith("line 3: rejected: text: text has 600000 characters; at most 4000 allowed")
    assert errors[2] == "line 4: rejected: not UTF-8 text (byte 0xff at offset 0)"
    assert errors[3] == "line 5: rejected: not text: NUL byte at offset 32"
    assert result.stdout.strip() == "sent 2, rejected 4"

    published = _ours(read_topic(kafka_settings, topics.SUBMISSIONS, idle_timeout=3.0), tag)
    assert sorted(r.key.decode() for r in published) == [f"{first['channel']}:{tag}-1", f"{last['channel']}:{tag}-6"]

    letters = _letters(kafka_settings, name)
    assert sorted(letters) == [2, 3, 4, 5]
    assert {n: dl.error.type for n, dl in letters.items()} == {
        2: "delivery_failed", 3: "schema_violation", 4: "invalid_encoding", 5: "invalid_encoding"}
    for number in (2, 3):
        original = lines[number - 1]
        dl = letters[number]
        assert dl.truncated and dl.original_size == len(original)
        assert dl.original_sha256 == hashlib.sha256(original).hexdigest()
        assert original.startswith(dl.original_value) and len(dl.original_value) < len(original)
    assert letters[4].original_value == lines[3] and not letters[4].truncated


def test_a_random_binary_file_on_stdin_is_reported_line_by_line_and_a_valid_line_after_it_is_published(
        kafka_settings):
    tag = f"BIN-{uuid.uuid4().hex[:8]}"
    junk = random.Random(8).randbytes(20_000)
    last = json.dumps(submission(9, channel_ref=f"{tag}-9"), ensure_ascii=False).encode()
    result = run(kafka_settings, "publish", "-", stdin=junk + b"\n" + last + b"\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert reported and all(": rejected: " in line for line in reported)
    assert result.stdout.strip().startswith("sent 1, rejected ")
    published = _ours(read_topic(kafka_settings, topics.SUBMISSIONS, idle_timeout=3.0), tag)
    assert [r.key.decode() for r in published] == [f"{submission(9)['channel']}:{tag}-9"]


def test_classify_reports_binary_lines_and_classifies_the_rest(base_settings):
    good = json.dumps({"text": "家里宽带三天上不了网", "channel": "app"}, ensure_ascii=False).encode()
    result = run(base_settings, "classify", "-", stdin=good + b"\n\xff\xd8\xff\xe0 JFIF\n\x00\x01\n" + good + b"\n")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["line 2: not UTF-8 text (byte 0xff at offset 0)",
                                          "line 3: not text: NUL byte at offset 0"]
    assert len(result.stdout.splitlines()) == 2
