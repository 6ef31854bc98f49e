"""Priority P1..P4 (定级) from configurable rules.

Order of application: the category baseline; the most urgent of the risk-flag
and channel priorities, when more urgent; then one step up for a repeat and
one step up for a high customer tier (never above P1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import Field

from complaint_stream.domain.policy_files import PolicyFileError, PolicyModel, load_policy_file
from complaint_stream.schemas import Category, Channel, CustomerTier, Priority, RiskFlag

LEVELS = ("P1", "P2", "P3", "P4")


class PriorityRulesError(PolicyFileError):
    """The priority rules file is malformed."""


class PriorityRulesFile(PolicyModel):
    """``priority_rules.json`` as an operator edits it: every key, its type, and the names it may use."""

    comment: str = Field("", alias="_comment")
    category_baseline: dict[Category, Priority]
    risk_flag_priority: dict[RiskFlag, Priority]
    channel_priority: dict[Channel, Priority] = Field(default_factory=dict)
    raise_one_step_for_repeat: bool = True
    raise_one_step_for_tiers: tuple[CustomerTier, ...] = ()


@dataclass(frozen=True)
class PriorityRules:
    category_baseline: dict[str, str]
    risk_flag_priority: dict[str, str]
    channel_priority: dict[str, str]
    raise_for_repeat: bool
    raise_for_tiers: frozenset[str]
    default: str = "P3"


@dataclass(frozen=True)
class PriorityDecision:
    priority: str
    reasons: tuple[str, ...]


def load_priority_rules(path: str | Path | None = None) -> PriorityRules:
    """Read the rules file (default: the packaged ``priority_rules.json``), strictly
    (:mod:`~complaint_stream.domain.policy_files`): an unknown key, a category, risk flag,
    channel or tier that does not exist, a level other than P1..P4 or ``"false"`` for
    ``false`` is refused with the file, the key and what was expected."""
    source = Path(path) if path else resources.files("complaint_stream.domain").joinpath("priority_rules.json")
    data = load_policy_file(source, PriorityRulesFile, error=PriorityRulesError)
    return PriorityRules(
        category_baseline={c.value: p.value for c, p in data.category_baseline.items()},
        risk_flag_priority={f.value: p.value for f, p in data.risk_flag_priority.items()},
        channel_priority={c.value: p.value for c, p in data.channel_priority.items()},
        raise_for_repeat=data.raise_one_step_for_repeat,
        raise_for_tiers=frozenset(t.value for t in data.raise_one_step_for_tiers),
    )


def _more_urgent(a: str, b: str) -> str:
    return a if LEVELS.index(a) <= LEVELS.index(b) else b


def _raise(level: str) -> str:
    return LEVELS[max(0, LEVELS.index(level) - 1)]


def decide_priority(rules: PriorityRules, *, category: str, channel: str, risk_flags: Iterable[str],
                    is_repeat: bool, tier: str) -> PriorityDecision:
    """The priority of one complaint and the reasons, in the order they applied."""
    level = rules.category_baseline.get(category, rules.default)
    reasons = [f"category {category} baseline {level}"]
    for flag in sorted(set(risk_flags)):
        target = rules.risk_flag_priority.get(flag)
        if target and _more_urgent(target, level) != level:
            level = target
            reasons.append(f"risk {flag} -> {level}")
    target = rules.channel_priority.get(channel)
    if target and _more_urgent(target, level) != level:
        level = target
        reasons.append(f"channel {channel} -> {level}")
    if is_repeat and rules.raise_for_repeat and level != "P1":
        level = _raise(level)
        reasons.append(f"repeat complaint +1 -> {level}")
    if tier in rules.raise_for_tiers and level != "P1":
        level = _raise(level)
        reasons.append(f"{tier} customer +1 -> {level}")
    return PriorityDecision(level, tuple(reasons))
