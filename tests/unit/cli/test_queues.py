"""`complaints queues` without a broker: the lines and the JSON made of team states the real transitions
built (the packaged roster), and the dispatch worker's real HTTP endpoint (`workers.metrics.serve`)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from complaint_stream.cli import case_cmds, queues_cmd
from complaint_stream.cli.main import main
from complaint_stream.domain.assignment import Roster
from complaint_stream.domain.assignment.team import Assigned, Queued, TeamState, WorkItem, offer, set_presence
from complaint_stream.kafka.local_broker import free_port
from complaint_stream.schemas import Category, Priority
from complaint_stream.workers.metrics import serve
from complaint_stream.workers.wiring import StateCodec

ROSTER = Roster.load()
#: Tuesday 1 December 2026, 10:00 China time.
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
CODEC: StateCodec[TeamState] = StateCodec(TeamState)


def cid(n: int) -> str:
    return f"CMP20261201-{n:012d}"


def item(n: int, category: str = "network", priority: str = "P3") -> WorkItem:
    return WorkItem(cid(n), Priority(priority), Category(category))


def west() -> TeamState:
    """net-sz-west (agents of capacity 10, 10 and 8): 30 network complaints a minute apart from 10:01, so
    28 are held and the last two wait (since 10:29 and 10:30); then net-szw-03 goes away."""
    team = ROSTER.team("net-sz-west")
    state = None
    decisions = []
    for n in range(1, 31):
        state, decision = offer(state, item(n), T0 + n * MIN, team)
        decisions.append(decision)
    assert [type(d) for d in decisions] == [Assigned] * 28 + [Queued] * 2
    state, _ = set_presence(state, "net-szw-03", "away", T0 + 40 * MIN, team)
    return state


def billing() -> TeamState:
    """The billing back office (09:00-18:00): one complaint at 08:00 waits for the hours to start."""
    state, decision = offer(None, item(101, "billing"), T0 - 2 * 60 * MIN, ROSTER.team("billing"))
    assert isinstance(decision, Queued)
    return state


# -- pure formatting -------------------------------------------------------------------------------

@pytest.mark.parametrize(("wait", "text"), [
    (None, "-"), (timedelta(0), "0m"), (timedelta(seconds=59), "0m"), (timedelta(minutes=42), "42m"),
    (timedelta(hours=1, minutes=5, seconds=30), "1h05m"), (timedelta(hours=23, minutes=59), "23h59m"),
    (timedelta(days=2, hours=3, minutes=10), "2d03h"), (timedelta(minutes=-5), "0m"),
])
def test_humanise(wait, text):
    assert queues_cmd.humanise(wait) == text


def test_a_held_team_in_its_hours():
    now = T0 + 95 * MIN  # 11:35: the oldest waits since 10:29
    row = queues_cmd.summarise(ROSTER.team("net-sz-west"), west(), now)
    assert (row.team, row.name, row.held, row.open, row.hours) == ("net-sz-west", "深圳西部网络运维中心", True, True, None)
    assert (row.queue, row.available, row.agents, row.load, row.capacity) == (2, 2, 3, 28, 28)
    assert row.oldest_enqueued_at == T0 + 29 * MIN and row.oldest_wait == timedelta(hours=1, minutes=6)


def test_a_team_waiting_for_its_hours():
    spec = ROSTER.team("billing")
    row = queues_cmd.summarise(spec, billing(), T0 - 90 * MIN)  # 08:30
    assert not row.open and row.hours == "mon,tue,wed,thu,fri,sat 09:00-18:00 China time"
    assert (row.queue, row.oldest_wait, row.available, row.agents, row.load, row.capacity) == (
        1, timedelta(minutes=30), 5, 5, 0, 64)
    assert queues_cmd.summarise(spec, billing(), T0).open  # 10:00


def test_a_team_not_held_has_only_what_the_roster_says():
    row = queues_cmd.summarise(ROSTER.team("triage"), None, T0)
    assert not row.held and (row.agents, row.capacity, row.open) == (3, 42, True)
    assert row.queue is row.oldest_wait is row.available is row.load is None


def test_an_agent_new_to_the_roster_counts_with_its_roster_presence():
    """A stored state from before an agent joined (the worker adds it at the team's next event)."""
    spec = ROSTER.team("net-sz-west")
    old = west()
    state = TeamState(old.team, old.agents[:2], old.queue, old.cursor)  # net-szw-03 not in it
    row = queues_cmd.summarise(spec, state, T0 + 95 * MIN)
    assert (row.available, row.agents, row.capacity) == (3, 3, 28)
    assert row.load == 20  # only what the agents in the state hold


def test_the_table():
    now = T0 + 95 * MIN
    rows = [queues_cmd.summarise(ROSTER.team("net-sz-west"), west(), now),
            queues_cmd.summarise(ROSTER.team("triage"), None, now),
            queues_cmd.summarise(ROSTER.team("billing"), billing(), T0 - 90 * MIN)]
    lines = queues_cmd.render_table(rows).splitlines()
    assert lines[0].split() == ["TEAM", "QUEUE", "OLDEST", "AGENTS", "LOAD", "HOURS", "NAME"]
    assert lines[1].split() == ["net-sz-west", "2", "1h06m", "2/3", "28/28", "open", "深圳西部网络运维中心"]
    assert lines[2].split() == ["triage", "not", "on", "this", "instance", "open", "人工分拣台"]
    assert lines[3].split() == ["billing", "1", "30m", "5/5", "0/64", "closed", "计费账务后台"]
    # columns line up: every column starts where its header does, the not-held line's hours too
    for header in ("QUEUE", "OLDEST", "AGENTS", "LOAD", "HOURS", "NAME"):
        start = lines[0].index(header)
        assert all(line[start - 2:start] == "  " and line[start] != " " for line in (lines[1], lines[3])), header
    assert lines[2].index("open") == lines[0].index("HOURS") and lines[2].index("人工") == lines[0].index("NAME")


def test_the_json_object():
    now = T0 + 95 * MIN
    rows = [queues_cmd.summarise(ROSTER.team("net-sz-west"), west(), now),
            queues_cmd.summarise(ROSTER.team("triage"), None, now)]
    data = json.loads(json.dumps(queues_cmd.queues_json(rows, now), ensure_ascii=False))
    assert data["at"] == "2026-12-01T03:35:00+00:00"
    assert data["teams"] == [
        {"team": "net-sz-west", "name": "深圳西部网络运维中心", "held": True, "queue": 2,
         "oldest_enqueued_at": "2026-12-01T02:29:00+00:00", "oldest_wait_seconds": 3960, "oldest_wait": "1h06m",
         "available": 2, "agents": 3, "load": 28, "capacity": 28, "open": True, "hours": None},
        {"team": "triage", "name": "人工分拣台", "held": False, "queue": None, "oldest_enqueued_at": None,
         "oldest_wait_seconds": None, "oldest_wait": None, "available": None, "agents": 3, "load": None,
         "capacity": 42, "open": True, "hours": "mon,tue,wed,thu,fri,sat,sun 08:00-22:00 China time"},
    ]


def test_team_url_asks_as_complaints_show_does(base_settings):
    assert queues_cmd.team_url(base_settings, "net-sz") == "http://127.0.0.1:9405/teams/net-sz"
    for host, port in (("0.0.0.0", 0), ("::", 9999), ("10.1.2.3", 0), ("", 0)):
        s = base_settings.with_overrides(metrics_host=host, metrics_port=port)
        mine = queues_cmd.team_url(s, "t").removesuffix("/teams/t")
        theirs = case_cmds.worker_url(s, "CMP-1").removesuffix("/complaints/CMP-1")
        assert mine.rsplit(":", 1)[0] == theirs.rsplit(":", 1)[0]  # the same host
        assert mine.rsplit(":", 1)[1] == str(port or 9405)  # the dispatch worker's port


# -- complaints queues: the worker's real endpoint ------------------------------------------------

@pytest.fixture
def worker(monkeypatch, tmp_path):
    """The dispatch worker's HTTP server on a free port with its view of the table: team id -> the
    state as the worker's codec stores it."""
    for name in list(os.environ):
        if name.startswith("COMPLAINTS_"):
            monkeypatch.delenv(name)
    table: dict[str, bytes] = {}
    port = free_port()
    server = serve(CollectorRegistry(), "127.0.0.1", port, lambda: (True, "ok"), views={"/teams/": table.get})
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(port))
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))
    yield SimpleNamespace(table=table, port=port)
    server.shutdown()
    server.server_close()


def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_queues_asks_for_every_team_of_the_roster(worker, capsys):
    worker.table["net-sz-west"] = CODEC.dumps(west())
    worker.table["billing"] = CODEC.dumps(billing())
    code, out, err = _cli(["queues"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [t.id for t in ROSTER.teams]  # 19 teams, roster order
    by_team = {line.split()[0]: line for line in lines[1:]}
    assert by_team["net-sz-west"].split()[1:5] == ["2", by_team["net-sz-west"].split()[2], "2/3", "28/28"]
    assert by_team["billing"].split()[1] == "1" and by_team["billing"].split()[3:5] == ["5/5", "0/64"]
    not_held = [t for t, line in by_team.items() if queues_cmd.NOT_HELD in line]
    assert sorted(not_held) == sorted(t.id for t in ROSTER.teams if t.id not in ("net-sz-west", "billing"))


def test_queues_json(worker, capsys):
    worker.table["net-sz-west"] = CODEC.dumps(west())
    code, out, err = _cli(["queues", "--json", "--team", "triage", "net-sz-west", "--team", "triage"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"teams", "at"}
    at = datetime.fromisoformat(data["at"])
    assert at.tzinfo is not None and abs(datetime.now(UTC) - at) < timedelta(minutes=1)
    assert [t["team"] for t in data["teams"]] == ["triage", "net-sz-west"]  # as asked, once each
    triage, held = data["teams"]
    assert triage["held"] is False and triage["queue"] is None and triage["capacity"] == 42
    assert held["held"] is True and (held["queue"], held["available"], held["agents"], held["load"],
                                     held["capacity"]) == (2, 2, 3, 28, 28)
    assert held["oldest_enqueued_at"] == "2026-12-01T02:29:00+00:00"
    waited = max(at - datetime.fromisoformat(held["oldest_enqueued_at"]), timedelta(0))
    assert held["oldest_wait_seconds"] == int(waited.total_seconds())
    assert held["oldest_wait"] == queues_cmd.humanise(waited)
    assert held["open"] is True and held["hours"] is None


def test_an_unknown_team_is_refused_before_asking(worker, monkeypatch, capsys):
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(free_port()))  # nothing there: never asked
    code, out, err = _cli(["queues", "--team", "net-sz", "nope"], capsys)
    assert code == 2 and out == "" and "unknown team(s) nope" in err and "net-sz-west" in err


def test_queues_when_the_worker_is_not_running(worker, monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("COMPLAINTS_METRICS_PORT", str(port))
    code, out, err = _cli(["queues", "--timeout", "1"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("complaints: the dispatch worker at")
    assert f"127.0.0.1:{port}/teams/" in err and "is not reachable" in err


def test_an_answer_that_is_not_a_team_state(worker, capsys):
    worker.table["net-sz"] = b'{"error": "something else"}'
    code, out, err = _cli(["queues", "--team", "net-sz"], capsys)
    assert code == 1 and out == "" and "is not a team's state" in err
    worker.table["net-sz"] = CODEC.dumps(west())  # another team's state under this key
    code, out, err = _cli(["queues", "--team", "net-sz"], capsys)
    assert code == 1 and out == "" and "answered the state of team net-sz-west" in err


def test_fetch_team_returns_none_on_404(worker, base_settings):
    s = base_settings.with_overrides(metrics_port=worker.port)
    assert queues_cmd.fetch_team(s, "net-sz") is None
    worker.table["net-sz-west"] = CODEC.dumps(west())
    assert queues_cmd.fetch_team(s, "net-sz-west") == west()
