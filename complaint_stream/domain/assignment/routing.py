"""Which team a classified complaint goes to (派单路由): the roster's rules, in order.

The first rule that matches the complaint and resolves to a team (one with the category's skill that
did not return the complaint) wins; a rule whose team is excluded or cannot take the category is
passed over for the next. Nothing matching, or a complaint returned ``max_returns`` times (退单), goes
to the manual triage desk. A follow-up (催单, ``follow_up_of`` set) is not routed: the lifecycle
attaches it to the case it follows up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from complaint_stream.domain.assignment.roster import (
    MAX_RETURNS_RULE,
    NO_MATCH_RULE,
    Facts,
    Language,
    RegionCodes,
    Roster,
)
from complaint_stream.domain.assignment.team import WorkItem
from complaint_stream.schemas import ComplaintClassified

__all__ = ["Route", "complaint_language", "facts_of", "route", "work_item"]

_PROVINCE_CODE = re.compile(r"^[0-9]{2}0000$")


@dataclass(frozen=True, slots=True)
class Route:
    """The team a complaint goes to, the rule that sent it there (``no_match`` / ``max_returns``: the
    triage desk's own routes) and why, line by line. ``agent``: an agent to prefer in that team (the
    previous handler of a repeat, with ``repeat_to: previous_handler``)."""

    team: str
    rule: str
    explanation: tuple[str, ...]
    agent: str | None = None


def complaint_language(language: str | None) -> Language | None:
    """The language an agent must speak for a complaint of this language (``ComplaintReceived.language``):
    zh or en; a mixed or unknown one asks for none."""
    if language == "zh":
        return "zh"
    if language == "en":
        return "en"
    return None


def facts_of(complaint: ComplaintClassified, roster: Roster, *, home_province_code: str | None = None) -> Facts:
    """The complaint as the rules see it. The region is where the problem is (the category's region
    mode ``location``), or for a ``home`` category the number's home province when it is known."""
    region = complaint.region
    codes = RegionCodes(region.province_code, region.city_code, region.district_code)
    if roster.region_mode(complaint.category) == "home" and home_province_code is not None:
        codes = RegionCodes(home_province_code)
    return Facts(category=complaint.category, channel=complaint.channel, priority=complaint.priority,
                 risk_flags=frozenset(complaint.risk_flags), needs_review=complaint.needs_review,
                 repeat=complaint.repeat_of is not None, region=codes)


def _region_note(complaint: ComplaintClassified, roster: Roster, facts: Facts, home: str | None) -> str:
    mode = roster.region_mode(complaint.category)
    shown = ", ".join(f"{level} {code}" for level, code in facts.region.levels()) or "no region code"
    if mode == "home" and home is not None:
        return f"{complaint.category.value} goes by the number's home province (号码归属地): {shown}"
    if mode == "home":
        return f"{complaint.category.value} goes by the number's home province, not known: by location, {shown}"
    return f"{complaint.category.value} goes by where the problem is: {shown}"


def route(complaint: ComplaintClassified, roster: Roster, *, exclude: frozenset[str] = frozenset(),
          home_province_code: str | None = None, language: Language | None = None, returns: int = 0,
          previous_team: str | None = None, previous_agent: str | None = None) -> Route | None:
    """The team ``complaint`` goes to, or ``None`` for a follow-up (the lifecycle attaches it).

    ``exclude``: teams that returned it (退单), passed over; ``returns``: how many times it was returned
    (at the roster's ``max_returns``, the triage desk decides); ``home_province_code``: the number's home
    province (号码归属地) for the ``home`` categories; ``language``: the complaint's language (see
    :func:`complaint_language`), to prefer, among several teams of a role at one level, one with an agent
    speaking it; ``previous_team`` / ``previous_agent``: who handled the complaint this one repeats,
    used by a repeat rule when the roster's ``repeat_to`` is ``previous_handler``.
    """
    if complaint.follow_up_of is not None:
        return None
    if home_province_code is not None and not _PROVINCE_CODE.match(home_province_code):
        raise ValueError(f"home_province_code {home_province_code!r} is not a province code (like 440000)")
    if returns < 0:
        raise ValueError(f"returns must not be negative, got {returns}")
    triage = roster.triage_team
    if returns >= roster.max_returns:
        return Route(triage, MAX_RETURNS_RULE, (
            f"returned {returns} times (max_returns {roster.max_returns}): the manual triage desk {triage} decides",))
    facts = facts_of(complaint, roster, home_province_code=home_province_code)
    lines = [_region_note(complaint, roster, facts, home_province_code)]
    for rule in roster.rules:
        if not rule.match.matches(facts):
            continue
        head = f"rule {rule.name} matches ({rule.match.describe()})"
        if rule.match.repeat and roster.repeat_to == "previous_handler":
            found = _previous_handler(complaint, roster, exclude, previous_team, previous_agent)
            if isinstance(found, Route):
                return Route(found.team, rule.name, (*lines, head, *found.explanation), found.agent)
            lines.append(f"{head}: {found}; its own target instead")
            head = f"rule {rule.name}"
        candidate, notes = roster.resolve(rule, facts, exclude=exclude, language=language)
        lines.extend(notes)
        if candidate is not None:
            return Route(candidate.team.id, rule.name, (*lines, f"{head} -> {candidate.describe()}"))
        lines.append(f"{head}, but team {rule.team} cannot take it" if rule.team is not None
                     else f"{head}, but role {rule.role} has no team that can take it")
    return Route(triage, NO_MATCH_RULE, (*lines, f"no rule routes it: the manual triage desk {triage}"))


def _previous_handler(complaint: ComplaintClassified, roster: Roster, exclude: frozenset[str],
                      team: str | None, agent: str | None) -> Route | str:
    """The previous handler's route, or why there is none."""
    if team is None:
        return "the previous handler is not known"
    if not roster.has_team(team):
        return f"the previous team {team} is no longer in the roster"
    if team in exclude:
        return f"the previous team {team} returned it"
    spec = roster.team(team)
    if complaint.category not in spec.skills:
        return f"the previous team {team} has no {complaint.category.value} skill"
    if agent is not None and spec.agent(agent) is None:
        return Route(team, "", (f"-> the previous handler's team {team} (agent {agent} is no longer in it)",))
    if agent is None:
        return Route(team, "", (f"-> the previous handler's team {team}",))
    return Route(team, "", (f"-> the previous handler: {agent} of team {team}",), agent)


def work_item(complaint: ComplaintClassified, routed: Route, *, language: Language | None = None,
              enqueued_at: datetime | None = None) -> WorkItem:
    """What the routed team's state is offered: skill the complaint's category, its priority and language,
    the route's preferred agent."""
    return WorkItem(complaint_id=complaint.complaint_id, priority=complaint.priority, skill=complaint.category,
                    language=language, preferred_agent=routed.agent, enqueued_at=enqueued_at)
