"""The rule set: vocabulary, negations, boundary rules and risk terms as data.

``rules.json`` next to this module is the packaged default; an operator can
edit a copy and pass its path to :func:`load_rules`.  Everything in the file
is compiled once here, so classification itself does no parsing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .text import LiteralGate, NumberContext, TermMatcher, normalise, normalise_form, normalise_term

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.json")

RISK_FLAGS: tuple[str, ...] = ("regulator", "consumer_association", "media", "legal")

CUE = "cue:"
RISK = "risk:"
STOP = "stop"
NEG_BEFORE = "neg:before"  # weight = window in characters
NEG_AFTER = "neg:after"


class RulesError(ValueError):
    """The rules file is malformed or refers to unknown categories/cues."""


Scores = dict[str, float]
# The boundary rules compiled into one function: (scores, cues, why) -> None.
BoundaryProgram = Callable[[Scores, Scores, list[str]], None]


@dataclass(frozen=True)
class BoundaryRule:
    """A close-case decision expressed as data (see ``boundaries`` in the file).

    kinds:
      ``move``  – move ``fraction`` of each ``source`` category's score to ``target``;
      ``route`` – add the weight of a cue (times the route's fraction) to the
                  first route whose conditions hold; no route holding drops it;
      ``scale`` – multiply ``target``'s score by ``fraction``.
    """

    name: str
    kind: str
    # Conditions as one Python expression over ``s`` (scores) and ``c``
    # (cues), checked and built by ``_ConditionParser.source``; the rules
    # run compiled together (``RuleSet.boundary_program``).
    when: str
    sources: tuple[str, ...]
    target: str
    fraction: float
    routes: tuple[tuple[str, str, float], ...]  # (condition, to, fraction)
    explain: str


@dataclass(frozen=True)
class TermEntry:
    """What one matched term means, split by kind."""

    scoring: tuple[tuple[str, float], ...]  # categories and "cue:<name>"
    categories: tuple[tuple[str, float], ...]  # the same, split: categories
    cues: tuple[tuple[str, float], ...]  # ... and cue names without "cue:"
    risk: tuple[str, ...]
    negates_before: int  # window in characters, 0 = not a negation cue
    negates_after: int
    # The explanation of each of ``categories`` at full weight, e.g.
    # 'term "彩铃" (+3.0 vas_subscription)': formatting it per hit is one of the
    # larger costs of classifying, and most hits count at full weight.
    reasons: tuple[str, ...] = ()


def term_reason(term: str, weight: float, target: str) -> str:
    """The explanation line for a term adding ``weight`` to ``target``."""
    return f'term "{term}" ({weight:+.1f} {target})'


def _entry(targets: Mapping[str, float], term: str = "") -> TermEntry:
    scoring = tuple((t, w) for t, w in targets.items()
                    if not t.startswith((RISK, "neg:")) and t != STOP)
    categories = tuple((t, w) for t, w in scoring if not t.startswith(CUE))
    return TermEntry(
        scoring=scoring,
        categories=categories,
        cues=tuple((t[len(CUE):], w) for t, w in scoring if t.startswith(CUE)),
        risk=tuple(t[len(RISK):] for t in targets if t.startswith(RISK)),
        negates_before=int(targets.get(NEG_BEFORE, 0)),
        negates_after=int(targets.get(NEG_AFTER, 0)),
        reasons=tuple(term_reason(term, w, t) for t, w in categories),
    )


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules; build it with :func:`load_rules`."""

    categories: tuple[str, ...]
    fallback: str
    # The normalised terms and whether each is a prefix (stem) term.
    term_specs: tuple[tuple[str, bool], ...]
    # Finds them in a normalised text.
    terms: TermMatcher
    # normalised term -> ((target, weight), ...); target is a category,
    # "cue:<name>", "risk:<flag>", "neg:before"/"neg:after" (weight = window
    # in characters) or "stop" (absorbs shorter terms inside it, means nothing).
    lookup: Mapping[str, tuple[tuple[str, float], ...]]
    # The same, pre-split for the hot path: term -> TermEntry.
    entries: Mapping[str, TermEntry]
    # (compiled regex, its source, what a match means); each counts once.
    patterns: tuple[tuple[re.Pattern[str], str, TermEntry], ...]
    # Which of ``patterns`` and then ``context`` can match a text at all
    # (from the literals declared for them; most searches are skipped).
    pattern_gate: LiteralGate
    context: tuple[re.Pattern[str], ...]
    context_factor: float
    clause_breaks: frozenset[str]
    boundaries: tuple[BoundaryRule, ...]
    # The same rules compiled into one function (scores, cues, why) -> None.
    boundary_program: BoundaryProgram
    risk_channels: Mapping[str, tuple[str, ...]]
    fallback_score: float
    temperature: float
    source: str
    # Terms that raise a risk flag / are negation cues: one set test tells
    # whether a text needs the per-term risk or negation work at all.
    risk_terms: frozenset[str] = frozenset()
    negation_terms: frozenset[str] = frozenset()
    # Every category at 0.0: copied for each text (cheaper than building it).
    zero_scores: Scores = field(default_factory=dict)


def load_rules(path: str | os.PathLike[str] | None = None) -> RuleSet:
    """Load and compile a rules file; ``None`` loads the packaged default.

    The file is validated strictly first (``domain.classifier_rules.RulesFile``:
    no unknown key, no value of the wrong type, only existing categories and
    risk flags), then compiled (names of cues, conditions, regex literals);
    either refuses a bad file with a :class:`RulesError` naming the file.
    """
    # Imported here: pydantic is needed to load a rules file, not to classify.
    from complaint_stream.domain.classifier_rules import RulesFile
    from complaint_stream.domain.policy_files import load_policy_file

    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    data = load_policy_file(path, RulesFile, error=RulesError)
    try:
        return compile_rules(data.model_dump(mode="json", by_alias=True, exclude_unset=True), source=str(path))
    except RulesError as exc:
        raise RulesError(f"{path}: {exc}") from None


def _term_entries(section: Any) -> list[tuple[str, float]]:
    """Accept ``{"zh": {term: w}, "en": {...}}``, ``{term: w}`` or ``[term, ...]``."""
    if isinstance(section, list):
        return [(t, 1.0) for t in section]
    if not isinstance(section, dict):
        raise RulesError(f"bad term section: {section!r}")
    out: list[tuple[str, float]] = []
    for key, value in section.items():
        if isinstance(value, (dict, list)):
            out.extend(_term_entries(value))
        else:
            out.append((key, float(value)))
    return out


def compile_rules(data: Mapping[str, Any], source: str = "<dict>") -> RuleSet:
    """Compile an already-parsed rules document."""
    categories = tuple(data["categories"])
    fallback = data.get("fallback_category", "other")
    if fallback not in categories:
        raise RulesError(f"fallback category {fallback!r} is not a category")
    cues = set(data.get("cues", {}))

    lookup: dict[str, dict[str, float]] = {}
    prefixes: dict[str, bool] = {}

    def add(term: str, target: str, weight: float) -> None:
        norm, prefix = normalise_term(term)
        if not norm:
            return
        prefixes[norm] = prefixes.get(norm, False) or prefix
        # A term listed twice for one target (say under zh and en) counts once.
        targets = lookup.setdefault(norm, {})
        targets[target] = max(weight, targets.get(target, weight))

    for cat, section in data.get("terms", {}).items():
        if cat not in categories:
            raise RulesError(f"terms for unknown category {cat!r}")
        for term, weight in _term_entries(section):
            add(term, cat, weight)
    for cue, section in data.get("cues", {}).items():
        for term, weight in _term_entries(section):
            add(term, CUE + cue, weight)
    for flag, section in data.get("risk", {}).items():
        if flag not in RISK_FLAGS:
            raise RulesError(f"unknown risk flag {flag!r}")
        for term, _ in _term_entries(section):
            add(term, RISK + flag, 1.0)
    for term in data.get("stop_terms", []):
        add(term, STOP, 0.0)

    neg = data.get("negation", {})
    for term, window in neg.get("before", {}).items():
        add(term, NEG_BEFORE, float(window))
    for term, window in neg.get("after", {}).items():
        add(term, NEG_AFTER, float(window))

    # Each pattern is compiled on its own: separate searches let the regex
    # engine use each pattern's literal prefix, which a joint alternation cannot.
    patterns = []
    needs = []
    for entry in data.get("patterns", []):
        target = entry["target"]
        _check_target(target, categories, cues)
        regex = re.compile(entry["pattern"])
        source_text = entry["pattern"]
        patterns.append((regex, source_text,
                         _entry({target: float(entry.get("weight", 1.0))}, f"/{source_text}/")))
        needs.append(_needs(entry))

    ctx = data.get("context", {})
    context_entries = [p if isinstance(p, dict) else {"pattern": p} for p in ctx.get("patterns", [])]
    context = tuple(re.compile(p["pattern"]) for p in context_entries)
    needs += [_needs(p) for p in context_entries]

    conds = _ConditionParser(categories, cues, fallback)
    boundaries = []
    for entry in data.get("boundaries", []):
        kind = entry["kind"]
        routes = tuple(
            (conds.source(r.get("when", [])), r["to"],
             float(r.get("fraction", entry.get("fraction", 1.0))))
            for r in entry.get("routes", [])
        )
        for _, to, _ in routes:
            _check_target(to, categories, set())
        target = entry.get("target", "")
        if kind in ("move", "scale"):
            _check_target(target, categories, set())
        elif kind == "route":
            target = entry["cue"]
            if target not in cues:
                raise RulesError(f"route on unknown cue {target!r}")
        else:
            raise RulesError(f"unknown boundary kind {kind!r}")
        sources = tuple(entry.get("sources", []))
        for s in sources:
            _check_target(s, categories, set())
        boundaries.append(
            BoundaryRule(
                name=entry["name"],
                kind=kind,
                when=conds.source(entry.get("when", [])),
                sources=sources,
                target=target,
                fraction=float(entry.get("fraction", 1.0)),
                routes=routes,
                explain=entry.get("explain", entry["name"]),
            )
        )

    risk_channels = {
        normalise(ch): tuple(flags) for ch, flags in data.get("risk_channels", {}).items()
    }
    scoring = data.get("scoring", {})
    entries = {k: _entry(v, k) for k, v in lookup.items()}
    terms = TermMatcher(prefixes.items(), words=[normalise(w) for w in data.get("words", [])],
                        numbers=_numbers(data.get("numbers", {})))
    # One gate for the patterns and then the context regexes.
    pattern_gate = LiteralGate(needs)
    return RuleSet(
        categories=categories,
        fallback=fallback,
        term_specs=tuple(prefixes.items()),
        terms=terms,
        lookup={k: tuple(v.items()) for k, v in lookup.items()},
        entries=entries,
        patterns=tuple(patterns),
        pattern_gate=pattern_gate,
        context=context,
        context_factor=float(ctx.get("factor", 0.5)),
        clause_breaks=frozenset(neg.get("clause_breaks", ",.;!?，。；！？")),
        boundaries=tuple(boundaries),
        boundary_program=_boundary_program(boundaries),
        risk_channels=risk_channels,
        fallback_score=float(scoring.get("fallback_score", 1.0)),
        temperature=float(scoring.get("temperature", 1.5)),
        source=source,
        risk_terms=frozenset(k for k, e in entries.items() if e.risk),
        negation_terms=frozenset(k for k, e in entries.items() if e.negates_before or e.negates_after),
        zero_scores=dict.fromkeys(categories, 0.0),
    )


def _numbers(section: Mapping[str, Any]) -> NumberContext:
    """The ``numbers`` section: when a term of digits is a mention of that number."""
    def forms(key: str) -> tuple[str, ...]:
        # Units and labels are compared with normalised text, and normalised like it
        # (without the script conversion: they may be symbols such as ¥).
        return tuple(f for f in (normalise_form(x) for x in section.get(key, [])) if f)

    return NumberContext(joiners=section.get("joiners", ""), units=forms("units"), labels=forms("labels"),
                         separators=section.get("separators", " "))


def _needs(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The literals declared for a regex, one of which every match contains.

    A literal must occur in the pattern as written: that catches typos and
    literals left behind when a pattern is edited (not every mistake: the
    tests check on many texts that no match lacks them).
    """
    literals = entry.get("needs", [])
    if not isinstance(literals, list) or not all(isinstance(s, str) and s for s in literals):
        raise RulesError(f"needs must be a list of non-empty strings: {entry!r}")
    for literal in literals:
        if literal not in entry["pattern"] or literal != literal.lower():
            raise RulesError(f"needed literal {literal!r} is not a lower-case part of /{entry['pattern']}/")
    return tuple(literals)


def _check_target(target: str, categories: tuple[str, ...], cues: set[str]) -> None:
    if target.startswith(RISK):
        if target[len(RISK):] not in RISK_FLAGS:
            raise RulesError(f"unknown risk flag {target!r}")
    elif target.startswith(CUE):
        if target[len(CUE):] not in cues:
            raise RulesError(f"unknown cue {target!r}")
    elif target not in categories:
        raise RulesError(f"unknown category {target!r}")


_COND = re.compile(r"^\s*(\S+)\s*(>=|<=|==|>|<)\s*(\S+)\s*$")


class _ConditionParser:
    """Turns ``"cat:billing > 0"``, ``"cue:home > cue:mobile"`` or
    ``"max_except:service_quality >= 3"`` into Python expressions over ``s``
    (scores) and ``c`` (cues), for ``_boundary_program``.

    All conditions of one rule become a single expression: names are
    checked against the rule set and spliced in only as string literals.
    """

    def __init__(self, categories: tuple[str, ...], cues: set[str], fallback: str):
        self.categories = categories
        self.cues = cues
        self.fallback = fallback

    def operand(self, text: str) -> str:
        if text.startswith("cat:"):
            name = text[4:]
            _check_target(name, self.categories, set())
            return f"s[{name!r}]"
        if text.startswith("cue:"):
            name = text[4:]
            if name not in self.cues:
                raise RulesError(f"unknown cue in condition: {text!r}")
            return f"c.get({name!r}, 0.0)"
        if text.startswith("max_except:"):
            excluded = set(text[11:].split(",")) | {self.fallback}
            for name in excluded:
                _check_target(name, self.categories, set())
            names = [n for n in self.categories if n not in excluded]
            return "max(" + ", ".join(f"s[{n!r}]" for n in names) + ", 0.0)"
        try:
            return repr(float(text))
        except ValueError:
            raise RulesError(f"bad operand in condition: {text!r}") from None

    def expression(self, text: str) -> str:
        m = _COND.match(text)
        if not m:
            raise RulesError(f"bad condition: {text!r}")
        return f"({self.operand(m[1])} {m[2]} {self.operand(m[3])})"

    def source(self, conditions: list[str]) -> str:
        """All ``conditions`` as one Python expression over ``s`` and ``c``."""
        if not conditions:
            return "True"
        return " and ".join(self.expression(c) for c in conditions)


def _boundary_program(rules: list[BoundaryRule]) -> BoundaryProgram:
    """Compile the boundary rules, in order, into one Python function.

    ``apply(scores, cues, why)`` does what looping over the rules and testing
    their conditions one by one would do, without the per-rule dispatch,
    attribute look-ups and calls, which cost more than the rules themselves
    (most do nothing for a given text).  Each rule's ``when`` and route
    conditions are ``_ConditionParser.source`` expressions.  Names and
    texts from the rules file reach the code only as ``repr`` literals of
    checked category/cue names or as values in the function's namespace.
    Conditions are side-effect-free, so testing a route's cue weight before
    its condition changes nothing.  The source is kept as ``apply.source``.
    """
    ns: dict[str, Any] = {"__builtins__": {}, "max": max}
    lines = ["def apply(s, c, why):"]
    for i, rule in enumerate(rules):
        when = rule.when
        ns[f"E{i}"], ns[f"T{i}"], ns[f"F{i}"] = rule.explain, rule.target, rule.fraction
        lines.append(f"    # {rule.kind} {rule.name!r}")
        if rule.kind == "route":  # a cue's weight to the first route whose conditions hold
            lines.append(f"    w = c.get({rule.target!r}, 0.0)")
            lines.append(f"    if not w <= 0.0 and {when}:")
            for j, (condition, to, fraction) in enumerate(rule.routes):
                lines.append(f"        {'elif' if j else 'if'} {condition}:")
                if fraction:
                    ns[f"T{i}_{j}"], ns[f"F{i}_{j}"] = to, fraction
                    lines.append(f"            s[{to!r}] += w * F{i}_{j}")
                    lines.append(f'            why.append(f"boundary: {{E{i}}} ({{w * F{i}_{j}:+.1f}} {{T{i}_{j}}})")')
                else:
                    lines.append("            pass")
        elif rule.kind == "move":  # a fraction of each source's score to the target
            lines.append(f"    if {when}:")
            lines.append("        moved = 0.0")
            for src in rule.sources:
                lines.append(f"        amount = s[{src!r}] * F{i}")
                lines.append("        if amount > 0.0:")
                lines.append(f"            s[{src!r}] -= amount")
                lines.append("            moved += amount")
            lines.append("        if moved:")
            lines.append(f"            s[T{i}] += moved")
            lines.append(f'            why.append(f"boundary: {{E{i}}} ({{moved:+.1f}} {{T{i}}})")')
        elif rule.fraction != 1.0:  # scale the target's score
            ns[f"W{i}"] = f"boundary: {rule.explain} (x{rule.fraction:g} {rule.target})"
            lines.append(f"    if s[T{i}] > 0.0 and {when}:")
            lines.append(f"        s[T{i}] *= F{i}")
            lines.append(f"        why.append(W{i})")
    lines.append("    return None")
    source = "\n".join(lines)
    exec(source, ns)  # generated from checked names only, see above
    ns["apply"].source = source
    apply: BoundaryProgram = ns["apply"]
    return apply
