"""`complaints replay lifecycle` on the recorded scenario gives the timeline written by hand beside it."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from complaint_stream.cli.main import main
from complaint_stream.schemas import PAYLOADS, decode
from tests.support import lifecycle_scenario

DATA = Path(__file__).resolve().parents[2] / "data"
SCENARIO = DATA / "lifecycle_scenario.jsonl"
EXPECTED = json.loads((DATA / "lifecycle_scenario.expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["replay", "lifecycle", str(SCENARIO), "--until", "2026-12-02T00:00:00+08:00"])
    events = [decode(line.encode(), PAYLOADS) for line in out.getvalue().splitlines()]
    return code, events, err.getvalue()


def of_type(events, name):
    return [e for e in events if type(e.data).__name__ == name]


def test_the_scenario_file_is_the_story_in_the_generator():
    lines = SCENARIO.read_text(encoding="utf-8").splitlines()
    story = sorted(lifecycle_scenario.events(), key=lambda e: e.time)
    assert [json.loads(line)["data"] for line in lines] == [json.loads(e.model_dump_json())["data"] for e in story]


def test_each_case_goes_through_the_expected_changes(replayed):
    code, events, _ = replayed
    assert code == 0
    changes = defaultdict(list)
    for e in of_type(events, "CaseUpdated"):
        changes[e.data.complaint_id].append(f"{e.data.change.value}/{e.data.status.value}")
    assert dict(changes) == EXPECTED["cases"]
    sequences = defaultdict(list)
    for e in of_type(events, "CaseUpdated"):
        sequences[e.data.complaint_id].append(e.data.sequence)
    assert all(seq == list(range(1, len(seq) + 1)) for seq in sequences.values())


def test_follow_ups_open_no_case_and_get_no_acknowledgement(replayed):
    _, events, _ = replayed
    follow_ups = {e.data.complaint_id: [e.data.related] for e in of_type(events, "CaseUpdated")
                  if e.data.change.value == "follow_up"}
    assert follow_ups == EXPECTED["follow_ups"]
    acks = {e.data.complaint_id: e.data.template_id for e in of_type(events, "CommunicationRequested")
            if e.data.template_id in ("acknowledgement", "regulator_ack")}
    assert acks == EXPECTED["acknowledgements"]


def test_refused_updates_are_reported_with_their_rule(replayed):
    _, events, err = replayed
    refused = {}
    for line in err.splitlines():
        if ": refused: " in line:
            rule = line.split(": refused: ", 1)[1].split(":", 1)[0]
            refused[line] = rule
    assert sorted(refused.values()) == sorted(EXPECTED["refused"].values())
    letters = {json.loads(e.data.original_value)["data"]["complaint_id"]: e.data.error.message.split(":", 1)[0]
               for e in of_type(events, "DeadLetter")}
    assert letters == EXPECTED["dead_lettered"]
    assert all(e.data.error.type == "refused" for e in of_type(events, "DeadLetter"))


def test_outcomes_for_downstream_systems(replayed):
    _, events, _ = replayed
    got = []
    for e in events:
        d = e.data
        if type(d).__name__ == "ComplaintResolved":
            r = d.resolution
            got.append([d.complaint_id, d.status.value, d.sequence, r.code if r else None, d.refund_fen])
        elif type(d).__name__ == "ComplaintReopened":
            got.append([d.complaint_id, "reopened", d.reopen_count, None, None])
    assert got == EXPECTED["outcomes"]
    closed = {e.data.complaint_id: e.data.satisfaction for e in of_type(events, "ComplaintResolved")
              if e.data.status.value == "closed"}
    assert closed == EXPECTED["closed_satisfaction"]
    merged = {e.data.complaint_id: e.data.merged_into for e in of_type(events, "ComplaintResolved")
              if e.data.merged_into}
    assert merged == EXPECTED["merged_into"]
    regulator = [e.data for e in of_type(events, "CommunicationRequested") if e.data.template_id == "regulator_ack"]
    assert [m.send_after.isoformat() for m in regulator] == list(EXPECTED["held_until"].values())
    assert "GD-2026-1130-0042" in regulator[0].text
