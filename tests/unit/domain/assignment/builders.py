"""Complaints, rosters and times for the dispatch tests."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from complaint_stream.domain.assignment import Roster, TeamSpec, WorkItem
from complaint_stream.domain.assignment.roster import DEFAULT_ROSTER
from complaint_stream.schemas import (
    SEVERITY_OF_PRIORITY,
    Category,
    Channel,
    ComplaintClassified,
    Priority,
    Region,
    RiskFlag,
)

#: Tuesday 1 December 2026, 10:00 in China (02:00 UTC).
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

ROSTER_FILE = Roster.load().source
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def cid(n: int) -> str:
    return f"CMP20261201-{n:012d}"


def region(province: str = "广东", city: str = "深圳", district: str = "南山") -> Region:
    return Region(province=province, city=city, district=district)


def complaint(n: int = 1, *, category: str = "network", channel: str = "app", priority: str = "P3",
              where: Region | None = None, risk: tuple[str, ...] = (), needs_review: bool = False,
              repeat_of: str | None = None, follow_up_of: str | None = None) -> ComplaintClassified:
    p = Priority(priority)
    return ComplaintClassified(
        complaint_id=cid(n), customer_key="0f" * 16, channel=Channel(channel), region=where or region(),
        customer_tier="standard", received_at=T0, category=Category(category), confidence=0.9,
        risk_flags=tuple(RiskFlag(r) for r in risk), repeat_of=repeat_of, follow_up_of=follow_up_of, priority=p,
        severity=SEVERITY_OF_PRIORITY[p], needs_review=needs_review)


def default_roster_data() -> dict[str, Any]:
    from importlib import resources

    text = (resources.files("complaint_stream.domain.assignment") / DEFAULT_ROSTER).read_text("utf-8")
    return json.loads(text)


def agents(prefix: str, n: int, capacity: int = 5, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "capacity": capacity, **extra} for i in range(1, n + 1)]


ALL = [c.value for c in Category]


def mini_roster_data() -> dict[str, Any]:
    """A small roster: an ``ops`` role at every level (district 南山, city 深圳, province 广东, provincial),
    a ``bill`` role by province (广东, 湖南, provincial), a catch-all desk and the triage desk."""
    return copy.deepcopy({
        "triage_team": "triage",
        "max_returns": 2,
        "region_mode": {"billing": "home"},
        "teams": [
            {"id": "ops-nanshan", "role": "ops", "name": {"zh": "南山", "en": "Nanshan"}, "skills": ["network"],
             "regions": ["440305"], "agents": agents("ns", 2)},
            {"id": "ops-shenzhen", "role": "ops", "name": {"zh": "深圳", "en": "Shenzhen"}, "skills": ["network"],
             "regions": ["440300"], "agents": agents("sz", 2)},
            {"id": "ops-guangdong", "role": "ops", "name": {"zh": "广东", "en": "Guangdong"}, "skills": ["network"],
             "regions": ["440000"], "agents": agents("gd", 2)},
            {"id": "ops-any", "role": "ops", "name": {"zh": "全网", "en": "Anywhere"}, "skills": ["network"],
             "agents": agents("any", 2)},
            {"id": "bill-gd", "role": "bill", "name": {"zh": "广东计费", "en": "GD billing"}, "skills": ["billing"],
             "regions": ["440000"], "agents": agents("bgd", 2)},
            {"id": "bill-hn", "role": "bill", "name": {"zh": "湖南计费", "en": "HN billing"}, "skills": ["billing"],
             "regions": ["430000"], "agents": agents("bhn", 2)},
            {"id": "bill-any", "role": "bill", "name": {"zh": "计费", "en": "Billing"}, "skills": ["billing"],
             "agents": agents("bany", 2)},
            {"id": "desk", "name": {"zh": "综合", "en": "Desk"}, "skills": ALL, "agents": agents("desk", 2)},
            {"id": "senior", "name": {"zh": "重复投诉", "en": "Senior"}, "skills": ALL, "agents": agents("sen", 2)},
            {"id": "triage", "name": {"zh": "分拣", "en": "Triage"}, "skills": ALL, "agents": agents("tri", 2)},
        ],
        "rules": [
            {"name": "repeat", "match": {"repeat": True}, "team": "senior"},
            {"name": "network", "match": {"categories": ["network"]}, "role": "ops"},
            {"name": "billing", "match": {"categories": ["billing"]}, "role": "bill"},
            {"name": "rest", "match": {"needs_review": False}, "team": "desk"},
        ],
    })


def mini_roster(**changes: Any) -> Roster:
    data = mini_roster_data()
    data.update(changes)
    return Roster.from_dict(data, "mini.json")


def team_spec(*agent_specs: dict[str, Any], strategy: str = "most_spare_capacity", hours: dict[str, Any] | None = None,
              skills: tuple[str, ...] = ("network", "billing"), languages: tuple[str, ...] = ("zh", "en"),
              team_id: str = "t") -> TeamSpec:
    """A team validated as the roster file would be (strictly, from JSON)."""
    data: dict[str, Any] = {"id": team_id, "name": {"zh": "组", "en": "Team"}, "skills": list(skills),
                            "languages": list(languages), "strategy": strategy, "agents": list(agent_specs)}
    if hours is not None:
        data["hours"] = hours
    return TeamSpec.model_validate_json(json.dumps(data))


def agent(agent_id: str, capacity: int = 5, **extra: Any) -> dict[str, Any]:
    return {"id": agent_id, "capacity": capacity, **extra}


def item(n: int, priority: str = "P3", *, skill: str | None = "network", language: str | None = None,
         preferred: str | None = None, at: datetime | None = None) -> WorkItem:
    return WorkItem(cid(n), Priority(priority), Category(skill) if skill else None, language,
                    preferred, at)
