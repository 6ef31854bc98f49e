"""``complaints queues``: every team's queue, agents and load, as the dispatch worker holds them now.

For each team of the roster (``COMPLAINTS_ROSTER``, else the packaged one) the dispatch worker is asked
for the team's state (``GET /teams/{team}`` on its metrics port: the JSON of
:class:`~complaint_stream.domain.assignment.team.TeamState` as its table stores it). One line a team:
how many complaints wait and how long the oldest has waited, how many agents are present (available) of
the team's agents, the complaints they hold against the team's capacity (the roster's agents), and
whether the team is within its working hours now. A team the worker answers 404 for is not held by
this instance (another instance holds its partition, or the team has had no work yet); a worker that
does not answer is an error (exit 1).

The formatting (:func:`summarise`, :func:`render_table`, :func:`queues_json`) is pure and takes the
states; :func:`fetch_team` is the HTTP call.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from complaint_stream.cli.commands import CommandError
from complaint_stream.domain.assignment.roster import Roster, TeamSpec
from complaint_stream.domain.assignment.team import TeamState
from complaint_stream.settings import Settings
from complaint_stream.workers.wiring import StateCodec

__all__ = [
    "NOT_HELD",
    "DispatchUnavailable",
    "QueueRow",
    "UnknownTeam",
    "fetch_team",
    "humanise",
    "queues",
    "queues_json",
    "render_table",
    "select_teams",
    "summarise",
    "team_url",
]

#: How long each request to the worker may take (``--timeout``).
TIMEOUT_SECONDS = 3.0
#: What a team the worker does not hold prints as.
NOT_HELD = "not on this instance"

_CODEC: StateCodec[TeamState] = StateCodec(TeamState)


class DispatchUnavailable(CommandError):
    """The dispatch worker did not answer, answered an error, or answered something that is not a team's
    state: exit 1."""


class UnknownTeam(CommandError):
    """``--team`` names a team the roster does not have: exit 2 (before any request)."""

    exit_code = 2


# -- the worker's HTTP endpoint --------------------------------------------------------------

def team_url(settings: Settings, team_id: str) -> str:
    """``http://<metrics_host>:<port>/teams/<team>``, the host as ``complaints show`` asks it (a wildcard
    bind address on loopback), the port ``metrics_port`` or the dispatch worker's default."""
    from complaint_stream.cli.case_cmds import worker_view_url

    return worker_view_url(settings, "dispatch", "/teams/", team_id)


def fetch_team(settings: Settings, team_id: str, timeout: float = TIMEOUT_SECONDS) -> TeamState | None:
    """The team's state as the worker holds it; ``None`` when it answers 404 (not held by this instance).
    :class:`DispatchUnavailable` when it does not answer, answers anything else, or a body that is not the
    team's state."""
    url = team_url(settings, team_id)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise DispatchUnavailable(f"the dispatch worker at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DispatchUnavailable(f"the dispatch worker at {url} is not reachable: {reason}") from None
    try:
        state = _CODEC.loads(body)
    except ValidationError as exc:
        raise DispatchUnavailable(f"the dispatch worker at {url} answered something that is not a team's state"
                                  f" ({exc.error_count()} error(s))") from None
    if state.team != team_id:
        raise DispatchUnavailable(f"the dispatch worker at {url} answered the state of team {state.team}")
    return state


# -- what one team looks like --------------------------------------------------------------------

@dataclass(frozen=True)
class QueueRow:
    """One team's line: from the roster (name, agents, capacity, hours) and, when the worker holds the
    team, from its state (``held``)."""

    team: str
    name: str
    held: bool
    agents: int                       # the roster's agents
    capacity: int                     # their capacities, summed
    open: bool                        # within its working hours now
    hours: str | None                 # None: always open
    queue: int | None = None          # waiting complaints
    oldest_enqueued_at: datetime | None = None
    oldest_wait: timedelta | None = None
    available: int | None = None      # agents present (available)
    load: int | None = None           # complaints held by the team's agents


def summarise(spec: TeamSpec, state: TeamState | None, now: datetime) -> QueueRow:
    """The line of one team; ``state`` ``None``: the worker does not hold it. An agent the roster has
    that the stored state does not know yet counts with its roster presence; an agent the roster no
    longer has counts only by the complaints it still holds (load, not agents or capacity)."""
    base = QueueRow(team=spec.id, name=spec.name.zh, held=state is not None, agents=len(spec.agents),
                    capacity=sum(a.capacity for a in spec.agents), open=spec.is_open(now),
                    hours=spec.hours.describe() if spec.hours is not None else None)
    if state is None:
        return base
    known = {a.id: a for a in state.agents}
    available = sum(1 for a in spec.agents if (known[a.id].presence if a.id in known else a.presence) == "available")
    stamps = [w.enqueued_at for w in state.queue if w.enqueued_at is not None]
    oldest = min(stamps) if stamps else None
    return replace(base, queue=len(state.queue), oldest_enqueued_at=oldest,
                   oldest_wait=max(now - oldest, timedelta(0)) if oldest is not None else None,
                   available=available, load=len(state.held()))


def humanise(wait: timedelta | None) -> str:
    """``42m``, ``1h05m``, ``2d03h``; ``-`` for no wait (an empty queue)."""
    if wait is None:
        return "-"
    minutes = max(int(wait.total_seconds()) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


_COLUMNS = ("TEAM", "QUEUE", "OLDEST", "AGENTS", "LOAD", "HOURS", "NAME")


def _cells(row: QueueRow) -> tuple[str, ...]:
    hours = "open" if row.open else "closed"
    if not row.held:
        return row.team, NOT_HELD, "", "", "", hours, row.name
    return (row.team, str(row.queue), humanise(row.oldest_wait), f"{row.available}/{row.agents}",
            f"{row.load}/{row.capacity}", hours, row.name)


def render_table(rows: Sequence[QueueRow]) -> str:
    """A header and one line a team: queue length, oldest wait, agents present / agents, load / capacity,
    open or closed now, the team's name (last: its Chinese characters do not upset the columns). A team
    not held here says so in place of its four figures."""
    lines = [_COLUMNS, *(_cells(r) for r in rows)]
    figures = [line for line in lines if line[1] != NOT_HELD]  # the rows whose figures set their columns
    widths = [max(len(line[i]) for line in (lines if i in (0, 5) else figures)) for i in range(6)]
    span = sum(widths[1:5]) + 2 * 3
    out = []
    for line in lines:
        if line[1] == NOT_HELD:
            cells = [line[0].ljust(widths[0]), NOT_HELD.ljust(span), line[5].ljust(widths[5]), line[6]]
        else:
            cells = [*(cell.ljust(widths[i]) for i, cell in enumerate(line[:6])), line[6]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def queues_json(rows: Sequence[QueueRow], now: datetime) -> dict[str, Any]:
    """``{"teams": [...], "at": ISO time}``; a team not held here has ``"held": false`` and ``null`` for
    what only the worker knows (queue, oldest wait, agents available, load)."""
    teams = []
    for r in rows:
        teams.append({
            "team": r.team, "name": r.name, "held": r.held, "queue": r.queue,
            "oldest_enqueued_at": _iso(r.oldest_enqueued_at),
            "oldest_wait_seconds": None if r.oldest_wait is None else int(r.oldest_wait.total_seconds()),
            "oldest_wait": None if r.oldest_wait is None else humanise(r.oldest_wait),
            "available": r.available, "agents": r.agents, "load": r.load, "capacity": r.capacity,
            "open": r.open, "hours": r.hours,
        })
    return {"teams": teams, "at": _iso(now)}


# -- the command ---------------------------------------------------------------------------------

def select_teams(roster: Roster, wanted: Iterable[str] | None) -> list[TeamSpec]:
    """The roster's teams in its order, or those named (in the order given, once each);
    :class:`UnknownTeam` for a name the roster does not have."""
    if not wanted:
        return list(roster.teams)
    names = list(dict.fromkeys(wanted))
    unknown = [n for n in names if not roster.has_team(n)]
    if unknown:
        raise UnknownTeam(f"unknown team(s) {', '.join(unknown)}; the roster has: "
                          f"{', '.join(t.id for t in roster.teams)}")
    return [roster.team(n) for n in names]


def queues(settings: Settings, *, teams: Iterable[str] | None = None, as_json: bool = False,
           timeout: float = TIMEOUT_SECONDS, now: datetime | None = None) -> int:
    """Print every team's (or the named teams') line, or the JSON object with ``as_json``. The first team
    the worker does not answer for stops the command (:class:`DispatchUnavailable`)."""
    from complaint_stream.bootstrap import load_roster

    specs = select_teams(load_roster(settings), teams)
    states = [fetch_team(settings, spec.id, timeout) for spec in specs]
    at = now or datetime.now(UTC)
    rows = [summarise(spec, state, at) for spec, state in zip(specs, states)]
    if as_json:
        print(json.dumps(queues_json(rows, at), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(render_table(rows))
    return 0


def handler(args: Any) -> int:
    """``complaints queues`` (the parsed arguments of :mod:`complaint_stream.cli.main`)."""
    return queues(args.settings, teams=args.team, as_json=args.json, timeout=args.timeout)
