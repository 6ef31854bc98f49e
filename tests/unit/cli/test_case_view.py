"""`complaints show` and `complaints command` without a broker: the text and JSON views of case records
the real lifecycle stage built, the worker's real HTTP endpoint, and the validation of commands."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from complaint_stream.cli import case_cmds
from complaint_stream.cli.main import main
from complaint_stream.domain.lifecycle.view import mask_email, record_json, render_timeline
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import (
    AddNote,
    CancelComplaint,
    CaseRecord,
    Category,
    ChangePriority,
    MergeComplaints,
    Priority,
    ReassignComplaint,
    ReclassifyComplaint,
    RegulatorAppeal,
    ReopenComplaint,
)
from complaint_stream.topics import CASE_LINKS
from complaint_stream.workers.metrics import serve
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import TableStore, make_app, state_table
from complaint_stream.workers.wiring import StateCodec
from tests.support import cases as c

T0 = c.T0
#: Phone numbers in the records below, in every form they are kept: E.164 (the customer), in the text.
RAW_PHONES = (*(c.phone(n).removeprefix("+86") for n in range(1, 7)), "13812345678", "13900001111", "12345678")
COMPLAINT_TEXT = "我的号码13812345678一直没信号，联系电话 010-12345678"


def _run(events) -> dict[str, CaseRecord]:
    state: dict[str, CaseRecord] = {}
    for _ in run_in_event_time(c.stage(), events, state=state, feedback=[CASE_LINKS]):
        pass
    return state


@pytest.fixture(scope="module")
def records() -> dict[str, CaseRecord]:
    """Case 1: a regulator appeal, assigned, noted, reprioritised, case 2 merged into it, reclassified,
    resolved with a refund, called back, closed. Case 3 with a follow-up (4). Case 5 received at night with
    an email address (its message held). Case 6 resolved and reopened."""
    at = T0
    night = T0 + timedelta(hours=37)  # 23:00 in China (quiet hours), after every other event here
    r5 = c.received(5, night)
    customer = r5.data.customer.model_copy(update={"email": "zhang.san@example.com", "notify_by": "email"})
    r5 = r5.model_copy(update={"data": r5.data.model_copy(update={"customer": customer})})
    return _run([
        *c.opened(1, at, text=COMPLAINT_TEXT, regulator=RegulatorAppeal(case_no="GX2026-001",
                                                                        reply_by=at + timedelta(days=5))),
        *c.opened(2, at + timedelta(minutes=5), customer=1),
        c.assigned(1, at + timedelta(minutes=10)),
        c.status(1, "inProgress", at + timedelta(minutes=15), actor="agent-1"),
        c.note(1, at + timedelta(minutes=20), text="客户留言：请回电 13900001111"),
        c.status(2, "inProgress", at + timedelta(minutes=25), actor="agent-9"),
        c.priority(1, at + timedelta(minutes=30)),
        c.merge(1, 2, at + timedelta(minutes=40)),
        c.reclassify(1, at + timedelta(minutes=50)),
        c.resolve(1, at + timedelta(hours=2), refund_fen=1234),
        c.callback(1, at + timedelta(hours=30)),
        *c.opened(3, at),
        *c.opened(4, at + timedelta(minutes=30), customer=3, follow_up_of=c.cid(3)),
        r5, c.classified(5, night),
        *c.opened(6, at),
        c.status(6, "inProgress", at + timedelta(minutes=5)),
        c.resolve(6, at + timedelta(hours=1), refund_fen=5),
        c.reopen(6, at + timedelta(hours=3)),
    ])


def _timeline_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Timeline ("))
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        out.append(line)
    return out


def _no_phone(text: str) -> None:
    for raw in RAW_PHONES:
        assert raw not in text, raw


# -- render_timeline -----------------------------------------------------------------------------

def test_the_text_view_has_the_header_resolution_callback_timeline_and_notes(records):
    rec = records[c.cid(1)]
    assert rec.status.value == "closed" and rec.merged_from == (c.cid(2),)  # what the stage made of the events
    text = render_timeline(rec)
    _no_phone(text)
    for expected in (f"Complaint {c.cid(1)}", "kind                  case", "status                closed",
                     "category              billing", "priority              P1", "owner (首问负责人)    agent-1",
                     "handler               agent-1", "team                  network-sz", "channel               app",
                     "customer              138****0001 (standard)",
                     "received at           2026-11-30 10:00:00",  # 02:00 UTC, shown in China time
                     "first contact at      2026-11-30 10:00:00 (regulatory period start)",
                     "regulator case no     GX2026-001", "regulator reply by    2026-12-05 10:00:00",
                     f"merged from           {c.cid(2)}", "follow-ups            0", "reopened              0 time(s)",
                     "Resolution (处理结果)", "code                  technical_fix",
                     "root cause            base_station_fault", "department            network",
                     "refund                12.34 yuan", "note                  基站已修复",
                     "Callback (回访)", "attempts              1", "outcome               reached",
                     "answer                satisfied", "satisfied             yes",
                     "Notes (1)", "2026-11-30 10:20:00  sup-1: 客户留言：请回电 139****1111"):
        assert expected in text, expected


def test_timeline_entries_are_one_line_each_in_time_order_with_merged_entries_marked(records):
    rec = records[c.cid(1)]
    lines = _timeline_lines(render_timeline(rec))
    assert len(lines) == len(rec.timeline)
    stamps = [line[2:21] for line in lines]
    assert stamps == sorted(stamps) and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in stamps)
    merged = [line for line in lines if f"[from {c.cid(2)}]" in line]
    assert len(merged) == sum(1 for e in rec.timeline if e.from_complaint == c.cid(2)) >= 4
    assert any("received" in line and "家里信号很差" in line for line in merged)  # case 2's own receipt
    received = next(line for line in lines if " received " in line and "[from" not in line)
    assert "138****5678" in received and "10****678" in received  # the phone numbers in the complaint, masked
    resolved = next(line for line in lines if " resolved " in line)
    assert re.search(r"resolved\s+agent-1\s+resolved\s+technical_fix\s+technical_fix \(base_station_fault\)", resolved)
    assert "2026-11-30 12:00:00" in resolved


def test_the_merged_case_says_where_it_went(records):
    text = render_timeline(records[c.cid(2)])
    assert f"merged into           {c.cid(1)}" in text and "status                cancelled" in text
    assert re.search(r"cancelled\s+sup-1\s+cancelled\s+merged\s+same outage", text)
    _no_phone(text)


def test_follow_ups_repeat_reopen_and_held_messages(records):
    survivor = render_timeline(records[c.cid(3)])
    assert f"follow-ups            1: {c.cid(4)}" in survivor
    assert f"[contact {c.cid(4)}]" in survivor  # this case's own follow-up, not a merged entry
    contact = render_timeline(records[c.cid(4)])
    assert "kind                  follow_up" in contact and f"follow-up of (催单)   {c.cid(3)}" in contact
    reopened = records[c.cid(6)]
    text = render_timeline(reopened)
    assert reopened.reopen_count == 1 and "reopened              1 time(s)" in text
    assert "refund                0.05 yuan" in text and "status                inProgress" in text
    night = render_timeline(records[c.cid(5)])
    assert records[c.cid(5)].held and "messages held         1 (quiet hours)" in night
    assert "customer              138****0005, z***@example.com (standard)" in night
    for rec in records.values():
        _no_phone(render_timeline(rec))
        assert "zhang.san" not in render_timeline(rec)


def test_a_record_waiting_for_its_receipt(records):
    waiting = _run([c.note(99, T0 + timedelta(minutes=1), text="请回电 13900001111")])[c.cid(99)]
    assert waiting.kind == "waiting" and waiting.received is None and len(waiting.parked) == 1
    text = render_timeline(waiting)
    assert "kind                  waiting" in text and "channel               -" in text
    assert "updates parked        1 (waiting for the receipt)" in text and "Timeline (0 entries" in text
    data = json.dumps(record_json(waiting), ensure_ascii=False)
    assert "13900001111" not in data and "139****1111" in data  # inside the parked update's raw event


# -- record_json ---------------------------------------------------------------------------------

def test_the_json_view_masks_the_phone_and_email_and_keeps_everything_else(records):
    rec = records[c.cid(1)]
    data = record_json(rec)
    raw = rec.model_dump(mode="json")
    assert data["received"]["customer"]["msisdn"] == "138****0001"
    assert data["received"]["text"] == "我的号码138****5678一直没信号，联系电话 10****678"
    assert data["notes"][0]["text"] == "客户留言：请回电 139****1111"
    assert data["resolution"] == raw["resolution"] and data["resolution"]["refund_fen"] == 1234
    assert [e["event_id"] for e in data["timeline"]] == [e["event_id"] for e in raw["timeline"]]
    unmasked = {k: v for k, v in data.items() if k not in ("received", "timeline", "notes")}
    assert unmasked == {k: v for k, v in raw.items() if k not in ("received", "timeline", "notes")}
    assert rec.received is not None and rec.received.customer.msisdn == "+8613800000001"  # the record is untouched
    assert CaseRecord.model_validate(raw) == rec


def test_no_phone_number_or_email_in_any_json_view(records):
    night = record_json(records[c.cid(5)])
    assert night["received"]["customer"]["email"] == "z***@example.com"
    assert night["held"][0]["event"]["recipient"] == "z***@example.com"
    for rec in records.values():
        text = json.dumps(record_json(rec), ensure_ascii=False)
        _no_phone(text)
        assert "zhang.san" not in text


def test_mask_email():
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_email("not-an-address") == "***" and mask_email("@x.cn") == "***"


# -- complaints show: the worker's real endpoint --------------------------------------------------

@pytest.fixture
def worker(monkeypatch, tmp_path):
    """The lifecycle worker's HTTP server (``workers.metrics.serve``) on a free port, with its view of
    a table: complaint id -> the record as the worker's state codec stores it."""
    for name in list(os.environ):
        if name.startswith("COMPLAINTS_"):
            monkeypatch.delenv(name)
    table: dict[str, bytes] = {}
    port = free_port()
    server = serve(CollectorRegistry(), "127.0.0.1", port, lambda: (True, "ok"), views={"/complaints/": table.get})
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(port))
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))  # no local broker there
    yield SimpleNamespace(table=table, port=port, codec=StateCodec(CaseRecord))
    server.shutdown()
    server.server_close()


def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_show_asks_the_worker(worker, records, capsys):
    rec = records[c.cid(1)]
    worker.table[rec.complaint_id] = worker.codec.dumps(rec)
    code, out, err = _cli(["show", rec.complaint_id], capsys)
    assert code == 0, err
    assert out == render_timeline(rec)
    code, out, err = _cli(["show", rec.complaint_id, "--json", "--from", "worker"], capsys)
    assert code == 0, err
    assert json.loads(out) == record_json(rec)
    _no_phone(out)


def test_show_of_an_unknown_id(worker, capsys):
    code, out, err = _cli(["show", "CMP20991231-AAAAAAAAAAAA", "--from", "worker"], capsys)
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0 and "no case record for CMP20991231-AAAAAAAAAAAA" in err
    # by default the changelog is read next: here there is no broker, which is said in one line
    code, out, err = _cli(["show", "CMP20991231-AAAAAAAAAAAA"], capsys)
    assert code == 1 and out == "" and "is not on the lifecycle worker" in err and "no Kafka broker" in err


def test_show_when_the_worker_is_not_running(worker, monkeypatch, capsys):
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(free_port()))
    code, out, err = _cli(["show", c.cid(1), "--from", "worker"], capsys)
    assert code == 69 and out == "" and "is not reachable" in err


def test_show_refuses_a_malformed_id(worker, capsys):
    code, out, err = _cli(["show", "../metrics"], capsys)
    assert code == 2 and out == "" and "invalid complaint id" in err


def test_worker_url_asks_a_wildcard_bind_address_on_loopback(base_settings):
    s = base_settings.with_overrides(metrics_host="0.0.0.0")
    assert case_cmds.worker_url(s, "CMP-1") == "http://127.0.0.1:9403/complaints/CMP-1"
    s = base_settings.with_overrides(metrics_host="::", metrics_port=9999)
    assert case_cmds.worker_url(s, "CMP-1") == "http://[::1]:9999/complaints/CMP-1"


# -- where the changelog is ----------------------------------------------------------------------

def test_the_changelog_is_the_lifecycle_workers_table_changelog(base_settings, tmp_path):
    entry = WORKERS["lifecycle"]
    binding = entry.load().binding(base_settings)
    assert binding.table == case_cmds.LIFECYCLE_TABLE
    app = make_app(entry.app_id, base_settings.with_overrides(state_dir=tmp_path))
    table = state_table(app, binding.table, binding.stream_topic.partitions)
    assert table.changelog_topic.get_topic_name() == case_cmds.changelog_topic()
    assert case_cmds.changelog_topic() == "complaints-lifecycle-lifecycle-cases-changelog"
    store = TableStore(table, binding.stream_topic.partitions)
    for n in range(50):
        key = c.cid(n)
        assert case_cmds.partition_of(key.encode(), binding.stream_topic.partitions) == store.partition(key)


# -- complaints command --------------------------------------------------------------------------

def _args(action: str, cid: str = c.cid(1), **kw):
    base = {"action": action, "id": cid, "by": "sup-1", "reason": "why not", "text": None, "to": None,
            "merged": None, "code": None, "team": None, "agent": None}
    return SimpleNamespace(**{**base, **kw})


def test_each_action_builds_its_command():
    now = T0
    note = case_cmds.build_command(_args("note", text="已联系客户"), now)
    assert isinstance(note, AddNote) and note.note.author == "sup-1" and note.note.text == "已联系客户"
    assert note.note.at == now and note.complaint_id == c.cid(1)
    prio = case_cmds.build_command(_args("priority", to="p1"), now)
    assert isinstance(prio, ChangePriority) and prio.priority is Priority.P1 and prio.reason == "why not"
    recl = case_cmds.build_command(_args("reclassify", to="billing"), now)
    assert isinstance(recl, ReclassifyComplaint) and recl.category is Category.BILLING
    merge = case_cmds.build_command(_args("merge", merged=c.cid(2)), now)
    assert isinstance(merge, MergeComplaints) and (merge.complaint_id, merge.merged_id) == (c.cid(1), c.cid(2))
    cancel = case_cmds.build_command(_args("cancel"), now)
    assert isinstance(cancel, CancelComplaint) and cancel.reason_code == "withdrawn"
    reopen = case_cmds.build_command(_args("reopen", code="customer_rejected"), now)
    assert isinstance(reopen, ReopenComplaint) and reopen.reason_code == "customer_rejected"
    reassign = case_cmds.build_command(_args("reassign", team="billing-gz", agent="agent-7"), now)
    assert isinstance(reassign, ReassignComplaint) and (reassign.team, reassign.agent_id) == ("billing-gz", "agent-7")
    assert reassign.requested_by == "sup-1"


@pytest.mark.parametrize(("argv", "message"), [
    (["priority", c.cid(1), "--to", "P9"], "unknown priority 'P9': expected one of P1, P2, P3, P4"),
    (["reclassify", c.cid(1), "--to", "biling"], "unknown category 'biling': expected one of network, broadband,"),
    (["merge", c.cid(1), c.cid(1)], f"cannot merge {c.cid(1)} into itself"),
    (["cancel", c.cid(1), "--code", "Not A Code"], "invalid cancel command: --code: String should match pattern"),
    (["reassign", "bad id!", "--team", "t"], "invalid complaint id 'bad id!'"),
])
def test_invalid_commands_are_one_line_and_exit_2_before_any_connection(worker, capsys, argv, message):
    extra = [] if argv[0] == "note" else ["--reason", "r"]
    code, out, err = _cli(["command", *argv, "--by", "sup-1", *extra], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("complaints: ") and message in err


def test_a_valid_command_needs_the_broker(worker, capsys):
    code, out, err = _cli(["command", "note", c.cid(1), "--text", "hi", "--by", "sup-1"], capsys)
    assert code == 1 and out == "" and "no Kafka broker" in err  # validated, then the (absent) broker
