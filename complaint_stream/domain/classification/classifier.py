"""Rule-based (optionally model-assisted) complaint classification."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .rules import RISK_FLAGS, RuleSet, load_rules
from .text import find_terms, normalise

if TYPE_CHECKING:  # pragma: no cover
    from .model import TextModel


class ProbabilityModel(Protocol):
    """Anything that maps a text to category probabilities (e.g. ``TextModel``)."""

    def predict_proba(self, text: str) -> dict[str, float]: ...


@dataclass(frozen=True)
class Classification:
    """The decision for one complaint, with the reasons behind it."""

    category: str
    confidence: float
    risk_flags: tuple[str, ...]
    explanation: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]

    @property
    def risk(self) -> bool:
        """True when any risk flag is raised."""
        return bool(self.risk_flags)


_Hit = tuple  # (term, start, end, TermEntry)


def _scan(norm: str, rules: RuleSet):
    """One pass over a normalised text.

    Returns (scoring hits, {risk flag: term}, negate-before cues,
    negate-after cues); cues are (start, end, window, term).
    """
    hits: list[_Hit] = []
    risk: dict[str, str] = {}
    before: list[tuple[int, int, int, str]] = []
    after: list[tuple[int, int, int, str]] = []
    entries = rules.entries
    for term, start, end in find_terms(rules.matcher, norm):
        entry = entries[term]
        if entry.scoring:
            hits.append((term, start, end, entry))
        for flag in entry.risk:
            risk.setdefault(flag, term)
        if entry.negates_before:
            before.append((start, end, entry.negates_before, term))
        if entry.negates_after:
            after.append((start, end, entry.negates_after, term))
    chars = set(norm) if rules.patterns else ()
    for regex, source, entry, firsts in rules.patterns:
        if firsts is not None and firsts.isdisjoint(chars):
            continue
        m = regex.search(norm)
        if m is None:
            continue
        if entry.scoring:
            hits.append((f"/{source}/", m.start(), m.end(), entry))
        for flag in entry.risk:
            risk.setdefault(flag, m.group(0))
    return hits, risk, before, after


def _risk_result(risk: dict[str, str], channel: str, rules: RuleSet
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    reasons: dict[str, str] = {}
    for flag in rules.risk_channels.get(normalise(channel), ()):
        reasons[flag] = f'risk: channel "{channel}" ({flag})'
    for flag, term in risk.items():
        reasons.setdefault(flag, f'risk: term "{term}" ({flag})')
    ordered = tuple(sorted(reasons))
    return ordered, tuple(reasons[f] for f in ordered)


def detect_risk(text: str, channel: str, rules: RuleSet
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Risk flags (alphabetically sorted subset of ``RISK_FLAGS``) and the reason for each."""
    _, risk, _, _ = _scan(normalise(text), rules)
    return _risk_result(risk, channel, rules)


def _negation(hit: _Hit, norm: str, before, after, rules: RuleSet,
              starts: list[int], ends: list[int]) -> str | None:
    """The negation cue that cancels ``hit``, if any.

    A cue reaches only the nearest term on its side, within its window and
    the same clause: in "宽带…态度还行" the cue cancels 态度, not 宽带.
    """
    _, h_start, h_end, _ = hit
    breaks = rules.clause_breaks
    for start, end, window, cue in before:
        if end <= h_start and h_start - end <= window:
            if any(ch in breaks for ch in norm[end:h_start]):
                continue
            if any(end <= s < h_start for s in starts):
                continue
            return cue
    for start, end, window, cue in after:
        if start >= h_end and start - h_end <= window:
            if any(ch in breaks for ch in norm[h_end:start]):
                continue
            if any(h_end < e <= start for e in ends):
                continue
            return cue
    return None


def rule_scores(text: str, channel: str, rules: RuleSet
                ) -> tuple[dict[str, float], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Raw rule scores per category, plus (explanations, risk flags, risk reasons)."""
    norm = normalise(text)
    hits, risk, before, after = _scan(norm, rules)
    scores = dict.fromkeys(rules.categories, 0.0)
    cues: dict[str, float] = {}
    why: list[str] = []
    # Only literal terms block a negation cue's reach (patterns span clauses).
    starts = [h[1] for h in hits if h[0][0] != "/"]
    ends = [h[2] for h in hits if h[0][0] != "/"]
    # Terms inside a background clause ("办宽带的时候…", "when I signed up
    # for…") describe the setting rather than the complaint: they count less.
    background = [m.span() for rx in rules.context for m in rx.finditer(norm)] if hits else []
    seen: set[str] = set()
    for hit in hits:
        term, start, end, entry = hit
        # Repeating a word is emphasis, not new evidence: count each term once.
        if term in seen:
            continue
        if before or after:
            cue = _negation(hit, norm, before, after, rules, starts, ends)
            if cue is not None:
                why.append(f'negated: "{term}" by "{cue}"')
                continue
        seen.add(term)
        factor = 1.0
        for b_start, b_end in background:
            if b_start <= start and end <= b_end:
                factor = rules.context_factor
                break
        for name, weight in entry.cues:
            cues[name] = cues.get(name, 0.0) + weight * factor
        for target, weight in entry.categories:
            weight *= factor
            scores[target] += weight
            why.append(f'term "{term}" ({weight:+.1f} {target})')
    _apply_boundaries(scores, cues, why, rules)
    flags, risk_why = _risk_result(risk, channel, rules)
    return scores, tuple(why), flags, risk_why


def _apply_boundaries(scores: dict[str, float], cues: dict[str, float], why: list[str],
                      rules: RuleSet) -> None:
    for rule in rules.boundaries:
        if not rule.when(scores, cues):
            continue
        if rule.kind == "move":
            moved = 0.0
            for src in rule.sources:
                amount = scores[src] * rule.fraction
                if amount > 0:
                    scores[src] -= amount
                    moved += amount
            if moved:
                scores[rule.target] += moved
                why.append(f"boundary: {rule.explain} ({moved:+.1f} {rule.target})")
        elif rule.kind == "scale":
            if scores[rule.target] > 0 and rule.fraction != 1.0:
                scores[rule.target] *= rule.fraction
                why.append(f"boundary: {rule.explain} (x{rule.fraction:g} {rule.target})")
        else:  # route a cue's weight to the first route whose conditions hold
            weight = cues.get(rule.target, 0.0)
            if weight <= 0:
                continue
            for cond, to, fraction in rule.routes:
                if cond(scores, cues):
                    if fraction:
                        scores[to] += weight * fraction
                        why.append(f"boundary: {rule.explain} ({weight * fraction:+.1f} {to})")
                    break
    for cat, value in scores.items():
        if value < 0:
            scores[cat] = 0.0


def _by_probability(item: tuple[str, float]) -> float:
    return item[1]


def _softmax(scores: dict[str, float], temperature: float) -> dict[str, float]:
    top = max(scores.values())
    exp = math.exp
    exps = {k: exp((v - top) / temperature) for k, v in scores.items()}
    scale = 1.0 / sum(exps.values())
    return {k: v * scale for k, v in exps.items()}


class Classifier:
    """Classifies one complaint text into a taxonomy category with risk flags.

    Rules alone decide when no model is given.  With a model, the final
    probability of each category is ``(1 - model_weight) * p_rules +
    model_weight * p_model``, where ``p_rules`` is a softmax over the rule
    scores (the fallback category carries a small baseline, so a text with
    no matching term leans to ``other`` with low confidence).
    """

    def __init__(self, rules: RuleSet | None = None, model: "TextModel | ProbabilityModel | None" = None,
                 model_weight: float = 0.45):
        if not 0.0 <= model_weight <= 1.0:
            raise ValueError("model_weight must be within 0..1")
        self.rules = rules if rules is not None else load_rules()
        self.model = model
        self.model_weight = model_weight if model is not None else 0.0

    def classify(self, text: str, channel: str) -> Classification:
        rules = self.rules
        raw, why, flags, risk_why = rule_scores(text, channel, rules)
        matched = max(raw.values()) > 0
        raw[rules.fallback] += rules.fallback_score
        probs = _softmax(raw, rules.temperature)
        explanation = list(why)
        if not matched:
            explanation.append(f"no rule matched: falls to {rules.fallback}")
        if self.model is not None and self.model_weight > 0:
            model_probs = self.model.predict_proba(text)
            w = self.model_weight
            probs = {c: (1 - w) * p + w * model_probs.get(c, 0.0) for c, p in probs.items()}
            best_model = max(model_probs.items(), key=lambda kv: kv[1], default=None)
            if best_model is not None:
                explanation.append(f"model: {best_model[0]} p={best_model[1]:.2f}")
        # Stable sort: ties keep taxonomy order.
        ranked = sorted(probs.items(), key=_by_probability, reverse=True)
        category, confidence = ranked[0]
        explanation.extend(risk_why)
        return Classification(
            category=category,
            confidence=round(confidence, 4),
            risk_flags=flags,
            explanation=tuple(explanation),
            scores=tuple((c, round(p, 4)) for c, p in ranked),
        )


__all__ = ["Classification", "Classifier", "RISK_FLAGS", "detect_risk", "rule_scores"]
