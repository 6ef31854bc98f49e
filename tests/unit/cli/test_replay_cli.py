"""`complaints replay`: recorded events through a stage without a broker; replays chain."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from complaint_stream.channel_api import validate_submission
from complaint_stream.cli.main import main
from complaint_stream.schemas import ComplaintClassified, ComplaintReceived, decode, wrap
from tests.support.factories import submission

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def submissions_file(tmp_path):
    lines = []
    for i, (minutes, text) in enumerate([(0, "手机信号很差，经常掉线"), (30, "还是没信号，电话一直掉线"),
                                         (31, "还是没信号，电话一直掉线")]):
        at = T0 + timedelta(minutes=minutes)
        ref = "REF-A" if i == 2 else f"REF-{i}"  # the third line is a channel retry of ...
        sub = validate_submission(submission(i, at, text=text, channel_ref=ref if i != 2 else "REF-1",
                                             channel="app", customer={"msisdn": "13812345678"}), now=at)
        lines.append(wrap(sub, source="/channels/app", subject=sub.dedup_key, time=at).model_dump_json())
    lines.append('{"specversion": "1.0", "type": "complaint.classified"}')  # another stage's event: skipped
    lines.append("not json")
    path = tmp_path / "subs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(argv, capsys, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_intake_then_classify_through_a_pipe(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))
    code, out, err = run(["replay", "intake", str(submissions_file(tmp_path))], capsys)
    assert code == 1  # one rejected line
    assert "line 5: rejected: invalid_json" in err and "1 skipped (not consumed by this stage)" in err
    assert "2 to complaints.received.v1" in err
    received = [decode(line.encode(), [ComplaintReceived]).data for line in out.splitlines()]
    assert len(received) == 2 and received[0].received_at == T0  # event time, not the wall clock

    code, out, err = run(["replay", "classify", "-"], capsys, stdin=out, monkeypatch=monkeypatch)
    assert code == 0, err
    first, second = (decode(line.encode(), [ComplaintClassified]).data for line in out.splitlines())
    assert first.category.value == "network" and second.follow_up_of == first.complaint_id  # first still open


def test_a_policy_file_changes_what_the_replay_decides(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))
    received = run(["replay", "intake", str(submissions_file(tmp_path))], capsys)[1]
    source = tmp_path / "received.jsonl"
    source.write_text(received, encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text("review_confidence = 0.999\n", encoding="utf-8")
    code, out, _err = run(["replay", "classify", str(source), "--policy", str(policy)], capsys)
    assert code == 0
    assert all(json.loads(line)["data"]["needs_review"] for line in out.splitlines())


@pytest.mark.parametrize("argv, message", [
    (["--until", "yesterday"], "not an ISO 8601 time"),
    (["--policy", "/nonexistent.toml"], "--policy /nonexistent.toml"),
])
def test_bad_arguments_get_a_clear_error(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))
    code, _out, err = run(["replay", "intake", str(submissions_file(tmp_path)), *argv], capsys)
    assert code == 1 and message in err


def test_an_unknown_setting_in_a_policy_file_is_refused(tmp_path, capsys, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text("reveiw_confidence = 0.9\n", encoding="utf-8")
    code, _out, err = run(["replay", "intake", str(submissions_file(tmp_path)), "--policy", str(policy)], capsys)
    assert code == 1 and "unknown setting(s) reveiw_confidence" in err
