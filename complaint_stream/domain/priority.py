"""Priority P1..P4 (定级) from configurable rules.

Order of application: the category baseline; the most urgent of the risk-flag
and channel priorities, when more urgent; then one step up for a repeat and
one step up for a high customer tier (never above P1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

LEVELS = ("P1", "P2", "P3", "P4")


class PriorityRulesError(ValueError):
    """The priority rules file is malformed."""


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


def _check(level: str, where: str) -> str:
    if level not in LEVELS:
        raise PriorityRulesError(f"{where}: {level!r} is not one of {', '.join(LEVELS)}")
    return level


def load_priority_rules(path: str | Path | None = None) -> PriorityRules:
    """Read the rules file (default: the packaged ``priority_rules.json``)."""
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("complaint_stream.domain").joinpath("priority_rules.json").read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
        rules = PriorityRules(
            category_baseline={k: _check(v, f"category_baseline.{k}") for k, v in raw["category_baseline"].items()},
            risk_flag_priority={k: _check(v, f"risk_flag_priority.{k}") for k, v in raw["risk_flag_priority"].items()},
            channel_priority={k: _check(v, f"channel_priority.{k}") for k, v in raw.get("channel_priority", {}).items()},
            raise_for_repeat=bool(raw.get("raise_one_step_for_repeat", True)),
            raise_for_tiers=frozenset(raw.get("raise_one_step_for_tiers", [])),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise PriorityRulesError(f"priority rules: {exc}") from exc
    return rules


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
