"""Rule-based (optionally model-assisted) complaint classification."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import chain
from operator import attrgetter, itemgetter
from typing import NamedTuple, Protocol

from .rules import RISK_FLAGS, RuleSet, Scores, TermEntry, load_rules, term_reason
from .text import SIMPLIFY_CONFIG, normalise, normalise_form, to_simplified


class ProbabilityModel(Protocol):
    """Anything that maps a text to category probabilities (e.g. ``TextModel``).

    A model may also offer ``predict_proba_many(texts)`` (a list of such
    dicts, one per text); :meth:`Classifier.classify_many` then asks it for
    a whole batch at once.
    """

    def predict_proba(self, text: str) -> dict[str, float]: ...


class Classification(NamedTuple):
    """The decision for one complaint, with the reasons behind it (immutable).

    A named tuple rather than a frozen dataclass: one is built for every
    complaint, and a tuple is several times cheaper to create.
    """

    category: str
    confidence: float
    risk_flags: tuple[str, ...]
    explanation: tuple[str, ...]
    scores: tuple[tuple[str, float], ...]

    @property
    def risk(self) -> bool:
        """True when any risk flag is raised."""
        return bool(self.risk_flags)


_Hit = tuple[str, int, int, TermEntry]  # (term, start, end, entry)
_Cue = tuple[int, int, int, str]  # (start, end, window, term)
_Match = tuple[str, int, int, TermEntry, str]  # ("/source/", start, end, entry, matched text)
_ChannelReasons = tuple[tuple[str, str], ...]  # ((flag, reason), ...) raised by a channel alone
# What the rules say about a text (see ``Classifier._rules_part``).
_RulesPart = tuple[tuple[str, ...], list[float], list[int], list[str], tuple[str, ...], tuple[str, ...], str]

# What a pattern key ("/source/") means when looked up as a term: nothing.
_NO_ENTRY = TermEntry(scoring=(), categories=(), cues=(), risk=(), negates_before=0, negates_after=0)


def _search_patterns(norm: str, rules: RuleSet) -> tuple[list[_Match], list[tuple[int, int]]]:
    """Matches of the rule patterns and spans of the background clauses.

    Patterns: ("/source/", start, end, entry, matched text), each counting
    once (its first match), in rule order.  Background clauses: every match
    of every context regex.  One gate over both skips the regexes whose
    declared literals are absent, which is nearly all of them.
    """
    matched: list[_Match] = []
    background: list[tuple[int, int]] = []
    patterns = rules.patterns
    count = len(patterns)
    for index in rules.pattern_gate.candidates(norm):
        if index < count:
            regex, source, entry = patterns[index]
            m = regex.search(norm)
            if m is not None:
                matched.append((f"/{source}/", m.start(), m.end(), entry, m.group(0)))
        else:
            background += [m.span() for m in rules.context[index - count].finditer(norm)]
    return matched, background


def _scan(norm: str, rules: RuleSet, found: list[tuple[str, int, int]] | None = None,
          matched: list[_Match] | None = None
          ) -> tuple[list[_Hit], dict[str, str], list[_Cue], list[_Cue]]:
    """One pass over a normalised text (``found``/``matched``: its terms and
    pattern matches, when already known).

    Returns (scoring hits, {risk flag: term}, negate-before cues,
    negate-after cues); cues are (start, end, window, term).
    """
    if found is None:
        found = rules.terms.find(norm)
    if matched is None:
        matched = _search_patterns(norm, rules)[0]
    hits: list[_Hit] = []
    risk: dict[str, str] = {}
    before: list[_Cue] = []
    after: list[_Cue] = []
    entries = rules.entries
    for term, start, end in found:
        entry = entries[term]
        if entry.scoring:
            hits.append((term, start, end, entry))
        for flag in entry.risk:
            risk.setdefault(flag, term)
        if entry.negates_before:
            before.append((start, end, entry.negates_before, term))
        if entry.negates_after:
            after.append((start, end, entry.negates_after, term))
    for key, start, end, entry, text in matched:
        if entry.scoring:
            hits.append((key, start, end, entry))
        for flag in entry.risk:
            risk.setdefault(flag, text)
    return hits, risk, before, after


def _channel_reasons(channel: str, rules: RuleSet) -> _ChannelReasons:
    """The risk flags a channel raises on its own, with their reasons."""
    return tuple((flag, f'risk: channel "{channel}" ({flag})')
                 for flag in rules.risk_channels.get(normalise(channel), ()))


def _risk_result(risk: dict[str, str], channel_reasons: _ChannelReasons
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not risk and not channel_reasons:
        return (), ()
    reasons = dict(channel_reasons)
    for flag, term in risk.items():
        reasons.setdefault(flag, f'risk: term "{term}" ({flag})')
    ordered = tuple(sorted(reasons))
    return ordered, tuple([reasons[f] for f in ordered])


def detect_risk(text: str, channel: str, rules: RuleSet
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Risk flags (alphabetically sorted subset of ``RISK_FLAGS``) and the reason for each."""
    _, risk, _, _ = _scan(normalise(text), rules)
    return _risk_result(risk, _channel_reasons(channel, rules))


def _negation(hit: _Hit, norm: str, before: list[_Cue], after: list[_Cue], rules: RuleSet,
              starts: list[int], ends: list[int]) -> str | None:
    """The negation cue that cancels ``hit``, if any.

    A cue reaches only the nearest term on its side, within its window and
    the same clause: in "宽带…态度还行" the cue cancels 态度, not 宽带.
    """
    _, h_start, h_end, _ = hit
    breaks = rules.clause_breaks
    for _start, end, window, cue in before:
        if end <= h_start and h_start - end <= window:
            if not breaks.isdisjoint(norm[end:h_start]):
                continue
            if any(end <= s < h_start for s in starts):
                continue
            return cue
    for start, _end, window, cue in after:
        if start >= h_end and start - h_end <= window:
            if not breaks.isdisjoint(norm[h_end:start]):
                continue
            if any(h_end < e <= start for e in ends):
                continue
            return cue
    return None


def _score(norm: str, rules: RuleSet
           ) -> tuple[dict[str, float], list[str], dict[str, str], list[tuple[int, int]]]:
    """Rule scores per category after boundaries, explanations, {risk flag: term},
    and the spans of the terms a negation cancelled."""
    terms, starts, ends = rules.terms.find_spans(norm)
    # Terms inside a background clause ("办宽带的时候…", "when I signed up
    # for…") describe the setting rather than the complaint: they count less.
    matched, background = _search_patterns(norm, rules)
    scores = rules.zero_scores.copy()
    why: list[str] = []
    negated: list[tuple[int, int]] = []
    if not terms and not matched:
        return scores, why, {}, negated
    if background or not rules.negation_terms.isdisjoint(terms):
        found = list(zip(terms, starts, ends))
        risk, cues = _weigh_in_context(norm, rules, found, matched, scores, why, background, negated)
    else:
        risk, cues = _weigh(rules, terms, matched, scores, why)
    _apply_boundaries(scores, cues, why, rules)
    return scores, why, risk, negated


def _masked(norm: str, spans: list[tuple[int, int]]) -> str:
    """``norm`` with each of ``spans`` blanked out (one space each): what the
    model may read once the rules have cancelled those terms."""
    pieces = []
    at = 0
    for start, end in sorted(spans):
        if start >= at:
            pieces.append(norm[at:start])
            at = end
        elif end > at:  # overlapping spans (a pattern over a term): blank the union
            at = end
    pieces.append(norm[at:])
    return " ".join(pieces)


_categories_of = attrgetter("categories")
_cues_of = attrgetter("cues")
_reasons_of = attrgetter("reasons")


def _weigh(rules: RuleSet, terms: list[str], matched: list[_Match], scores: Scores,
           why: list[str]) -> tuple[dict[str, str], dict[str, float]]:
    """The usual case: no negation cue and no background clause in the text.

    Every term then counts at full weight, the first time it occurs, in text
    order; the result is what :func:`_weigh_in_context` gives, with far less
    work per term: the weights are added up over flat C-level chains of the
    counted entries, in the same order.  Adds to ``scores`` and ``why``;
    returns ({risk flag: term}, {cue: weight}).
    """
    entries = rules.entries
    risk: dict[str, str] = {}
    if not rules.risk_terms.isdisjoint(terms):
        for term in terms:
            for flag in entries[term].risk:
                risk.setdefault(flag, term)
    # Repeating a word is emphasis, not new evidence: count each term once.
    # Terms that score nothing (stop terms, risk terms) add nothing.
    unique = dict.fromkeys(terms)
    counted = list(map(entries.__getitem__, unique))
    if matched:
        keys: set[str] = set()
        for key, _, _, entry, text in matched:
            for flag in entry.risk:
                risk.setdefault(flag, text)
            # A pattern counts once, and not at all if a literal term spelt
            # like its key ("/.../") already counted.
            if not entry.scoring or key in keys or (key in unique and entries.get(key, _NO_ENTRY).scoring):
                continue
            keys.add(key)
            counted.append(entry)
    cues: dict[str, float] = {}
    for name, weight in chain.from_iterable(map(_cues_of, counted)):
        cues[name] = cues.get(name, 0.0) + weight
    for target, weight in chain.from_iterable(map(_categories_of, counted)):
        scores[target] += weight
    why += chain.from_iterable(map(_reasons_of, counted))
    return risk, cues


def _weigh_in_context(norm: str, rules: RuleSet, found: list[tuple[str, int, int]], matched: list[_Match],
                      scores: Scores,
                      why: list[str], background: list[tuple[int, int]], negated: list[tuple[int, int]]
                      ) -> tuple[dict[str, str], dict[str, float]]:
    """The general case: negation cues cancel terms, background clauses
    weaken them.  Adds to ``scores``, ``why`` and ``negated`` (the spans of
    cancelled terms); returns ({risk flag: term}, {cue: weight})."""
    hits, risk, before, after = _scan(norm, rules, found, matched)
    cues: dict[str, float] = {}
    # Only literal terms block a negation cue's reach (patterns span clauses).
    starts = [h[1] for h in hits if h[0][0] != "/"]
    ends = [h[2] for h in hits if h[0][0] != "/"]
    negators = before or after
    seen: set[str] = set()
    for hit in hits:
        term, start, end, entry = hit
        # Repeating a word is emphasis, not new evidence: count each term once.
        if term in seen:
            continue
        if negators:
            cue = _negation(hit, norm, before, after, rules, starts, ends)
            if cue is not None:
                why.append(f'negated: "{term}" by "{cue}"')
                negated.append((start, end))
                continue
        seen.add(term)
        factor = 1.0
        for b_start, b_end in background:
            if b_start <= start and end <= b_end:
                factor = rules.context_factor
                break
        if factor == 1.0:
            # Full weight: x * 1.0 == x exactly, so the sums are the same
            # and the reasons can be the precomputed ones.
            for name, weight in entry.cues:
                cues[name] = cues.get(name, 0.0) + weight
            for target, weight in entry.categories:
                scores[target] += weight
            why += entry.reasons
        else:
            for name, weight in entry.cues:
                cues[name] = cues.get(name, 0.0) + weight * factor
            for target, weight in entry.categories:
                weight *= factor
                scores[target] += weight
                why.append(term_reason(term, weight, target))
    return risk, cues


def _apply_boundaries(scores: dict[str, float], cues: dict[str, float], why: list[str],
                      rules: RuleSet) -> None:
    """Apply the boundary rules in order (compiled into one function when the
    rules were loaded, see ``rules._boundary_program``), then clamp
    negative scores to zero."""
    rules.boundary_program(scores, cues, why)
    # ``min`` looks at all scores in C.  It is exact unless a score is NaN;
    # then it returns NaN (if the NaN comes first) or the least of the
    # others, so ``not low >= 0.0`` still holds whenever a score is negative.
    low = min(scores.values())
    if not low >= 0.0:
        for cat, value in scores.items():
            if value < 0.0:
                scores[cat] = 0.0


_by_probability = itemgetter(1)


def _softmax(values: list[float], temperature: float) -> list[float]:
    """Softmax of ``values``, in their order (the same operations, in the
    same order, as a per-category dict version, so the floats are identical)."""
    top = max(values)
    exp = math.exp
    exps = [exp((v - top) / temperature) for v in values]
    scale = 1.0 / sum(exps)
    return [v * scale for v in exps]


def _round4(values: list[float]) -> dict[float, float]:
    """``{v: round(v, 4)}`` for the distinct ``values``.

    Most probabilities repeat (every category without evidence has the same
    one), and ``round(v, 4)`` is slow: it goes through decimal digits.  It
    is the double nearest to the exact value of ``v`` rounded to 4 decimals;
    for 0 < v*10**4 < 2**14, ``y = v * 10000.0`` is within 2**-40 of that
    exact product, so unless ``y`` is within 1e-7 of a .5 the integer nearest
    to ``y`` is the rounded value, and dividing it by 10000.0 (exact
    operands, correctly rounded quotient) gives the same double.  Anything
    else (zero, NaN, infinity, near-ties) is left to ``round``.
    """
    rounded = {}
    for v in set(values):
        y = v * 10000.0
        if 0.0 < y < 16384.0:
            n = round(y)
            if -0.4999999 < y - n < 0.4999999:
                rounded[v] = n / 10000.0
                continue
        rounded[v] = round(v, 4)
    return rounded


class Classifier:
    """Classifies one complaint text into a taxonomy category with risk flags.

    Rules alone decide when no model is given.  With a model, the final
    probability of each category is ``(1 - model_weight) * p_rules +
    model_weight * p_model``, where ``p_rules`` is a softmax over the rule
    scores (the fallback category carries a small baseline, so a text with
    no matching term leans to ``other`` with low confidence).

    The model is asked only when the rules are not decisive: when their two
    most probable categories are less than ``model_margin`` apart.  Clear
    rule evidence is what a moderate model weight never overturns anyway
    (on the dev and authored sets, no decision with a margin of 0.6 or more
    changed when the model was blended in), and the model costs several
    times what the rules cost.  ``model_margin`` above 1 asks it always.
    """

    def __init__(self, rules: RuleSet | None = None, model: ProbabilityModel | None = None,
                 model_weight: float = 0.45, model_margin: float = 0.6):
        if not 0.0 <= model_weight <= 1.0:
            raise ValueError("model_weight must be within 0..1")
        if not model_margin >= 0.0:
            raise ValueError("model_margin must be 0 or more")
        self.rules = rules if rules is not None else load_rules()
        self.model = model
        self.model_weight = model_weight if model is not None else 0.0
        self.model_margin = model_margin
        # channel -> what it raises on its own; a pipeline sees a handful of
        # channels, and normalising one costs as much as the rest of the risk
        # step.  Tied to the rule set it was computed from.
        self._channels: dict[str, _ChannelReasons] = {}
        self._channels_rules: RuleSet | None = None

    def classify(self, text: str, channel: str) -> Classification:
        """Classify one complaint received on ``channel``."""
        part = self._rules_part(text, channel)
        model_probs = None
        if self.model is not None and self.model_weight > 0 and self._undecided(part):
            model_probs = self.model.predict_proba(part[6])
        return self._decide(*part, model_probs)

    def classify_many(self, items: Iterable[tuple[str, str]]) -> list[Classification]:
        """Classify ``(text, channel)`` pairs; the same results as :meth:`classify`.

        The rules run per text; the model, when there is one, is asked for
        all the texts the rules leave undecided at once
        (``predict_proba_many`` if it has one), which spares its large fixed
        cost per call.
        """
        items = list(items)
        parts = [self._rules_part(text, channel) for text, channel in items]
        model = self.model
        if model is None or self.model_weight <= 0 or not items:
            return [self._decide(*part, None) for part in parts]
        asked = [i for i, part in enumerate(parts) if self._undecided(part)]
        model_probs: list[dict[str, float] | None] = [None] * len(items)
        if asked:
            texts = [parts[i][6] for i in asked]
            many: Callable[[list[str]], list[dict[str, float]]] | None = getattr(model, "predict_proba_many", None)
            answers = many(texts) if many is not None else [model.predict_proba(t) for t in texts]
            for i, probs in zip(asked, answers):
                model_probs[i] = probs
        return [self._decide(*part, probs) for part, probs in zip(parts, model_probs)]

    def asks_model(self, text: str, channel: str) -> bool:
        """Whether classifying this complaint asks the model (see the class docs)."""
        return self.model_weight > 0 and self._undecided(self._rules_part(text, channel))

    def _undecided(self, part: _RulesPart) -> bool:
        """Whether the rules' top two probabilities (see :meth:`_rules_part`)
        are closer than ``model_margin`` (then the model is asked);
        otherwise says so in the explanation."""
        _, probs, order, explanation, _, _, _ = part
        margin = probs[order[0]] - (probs[order[1]] if len(order) > 1 else 0.0)
        if margin < self.model_margin:
            return True
        explanation.append(f"model: not asked, the rules decide (margin {margin:.2f})")
        return False

    def _channel_reasons(self, channel: str) -> _ChannelReasons:
        rules = self.rules
        if self._channels_rules is not rules or len(self._channels) >= 1024:
            self._channels = {}
            self._channels_rules = rules
        reasons = self._channels.get(channel)
        if reasons is None:
            reasons = self._channels[channel] = _channel_reasons(channel, rules)
        return reasons

    def _rules_part(self, text: str, channel: str) -> _RulesPart:
        """(categories, rule probabilities, their order (most probable first),
        explanation so far, risk flags, risk reasons, the text the model may read).

        The model reads the text without the terms a negation cancelled
        ("不是信号问题" without "信号"): what the rules struck out is not
        evidence, and a model shown it would bring it back (its n-grams know
        信号 as network, not the negation before it).  Only a text with a
        cancelled term is masked; any other goes to the model as it came.
        """
        rules = self.rules
        form = normalise_form(text)
        norm = to_simplified(form)
        raw, why, risk, negated = _score(norm, rules)
        if norm is not form and norm != form:
            why.insert(0, f"text: traditional Chinese read as simplified (OpenCC {SIMPLIFY_CONFIG})")
        model_text = _masked(norm, negated) if negated else text
        channel_reasons = self._channel_reasons(channel)
        if risk or channel_reasons:
            flags, risk_why = _risk_result(risk, channel_reasons)
        else:
            flags, risk_why = (), ()
        matched = max(raw.values()) > 0.0
        raw[rules.fallback] += rules.fallback_score
        probs = _softmax(list(raw.values()), rules.temperature)
        if not matched:
            why.append(f"no rule matched: falls to {rules.fallback}")
        # Stable sort: ties keep taxonomy order.
        order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)
        return rules.categories, probs, order, why, flags, risk_why, model_text

    def _decide(self, categories: tuple[str, ...], probs: list[float], order: list[int],
                explanation: list[str], flags: tuple[str, ...], risk_why: tuple[str, ...], model_text: str,
                model_probs: dict[str, float] | None) -> Classification:
        """Blend in the model's probabilities, if any, and rank the categories."""
        if model_probs is not None:
            w = self.model_weight
            probs = [(1 - w) * p + w * model_probs.get(c, 0.0) for c, p in zip(categories, probs)]
            order = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)
            best_model = max(model_probs.items(), key=_by_probability, default=None)
            if best_model is not None:
                explanation.append(f"model: {best_model[0]} p={best_model[1]:.2f}")
        rounded = _round4(probs)
        best = order[0]
        explanation.extend(risk_why)
        return Classification(categories[best], rounded[probs[best]], flags, tuple(explanation),
                              tuple([(categories[i], rounded[probs[i]]) for i in order]))


__all__ = ["RISK_FLAGS", "Classification", "Classifier", "detect_risk"]
