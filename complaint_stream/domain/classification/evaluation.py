"""Evaluation of a classifier on labelled complaints, and cross-validation.

Run ``python -m complaint_stream.domain.classification.evaluation FILE.jsonl``
for the rules-alone report and a cross-validated rules+model report.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .classifier import Classifier, ProbabilityModel
from .rules import RuleSet, load_rules

Row = Mapping[str, Any]  # a labelled complaint: text, channel, category, risk


@dataclass(frozen=True)
class CategoryFigures:
    """Precision/recall/F1 of one category; ``support`` = gold count."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class Report:
    """Figures for one evaluation run."""

    per_category: Mapping[str, CategoryFigures]
    macro_f1: float
    accuracy: float
    risk_precision: float
    risk_recall: float
    total: int
    correct: int
    risk_gold: int
    risk_predicted: int
    risk_true_positive: int
    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict)
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "total": self.total,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "risk": {
                "precision": round(self.risk_precision, 4),
                "recall": round(self.risk_recall, 4),
                "gold": self.risk_gold,
                "predicted": self.risk_predicted,
                "true_positive": self.risk_true_positive,
            },
            "per_category": {
                c: {"precision": round(f.precision, 4), "recall": round(f.recall, 4),
                    "f1": round(f.f1, 4), "support": f.support, "predicted": f.predicted}
                for c, f in self.per_category.items()
            },
            "confusions": [
                {"gold": g, "predicted": p, "count": n}
                for (g, p), n in sorted(self.confusion.items(), key=lambda kv: -kv[1])
                if g != p
            ],
        }

    def to_text(self) -> str:
        lines = []
        if self.label:
            lines.append(f"== {self.label} ==")
        lines.append(f"{'category':<20} {'prec':>6} {'recall':>6} {'f1':>6} {'gold':>5} {'pred':>5}")
        for c, f in self.per_category.items():
            lines.append(f"{c:<20} {f.precision:6.3f} {f.recall:6.3f} {f.f1:6.3f} {f.support:5d} {f.predicted:5d}")
        lines.append(f"macro-F1 {self.macro_f1:.3f}   accuracy {self.accuracy:.3f} ({self.correct}/{self.total})")
        lines.append(
            f"risk precision {self.risk_precision:.3f}   risk recall {self.risk_recall:.3f}"
            f"   (tp {self.risk_true_positive}, predicted {self.risk_predicted}, gold {self.risk_gold})"
        )
        errors = [(g, p, n) for (g, p), n in self.confusion.items() if g != p]
        if errors:
            errors.sort(key=lambda e: -e[2])
            lines.append("confusions (gold -> predicted): " + ", ".join(
                f"{g}->{p} x{n}" for g, p, n in errors[:10]))
        return "\n".join(lines)


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def report_from_pairs(gold: Sequence[tuple[str, bool]], predicted: Sequence[tuple[str, bool]],
                      categories: Sequence[str] = (), label: str = "") -> Report:
    """Build a report from aligned (category, risk) pairs."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    confusion: dict[tuple[str, str], int] = {}
    for (g, _), (p, _) in zip(gold, predicted):
        confusion[(g, p)] = confusion.get((g, p), 0) + 1
    seen = {g for g, _ in gold} | {p for p, _ in predicted}
    ordered = [c for c in categories if c in seen] + sorted(seen - set(categories))
    per: dict[str, CategoryFigures] = {}
    for c in ordered:
        tp = confusion.get((c, c), 0)
        support = sum(n for (g, _), n in confusion.items() if g == c)
        pred = sum(n for (_, p), n in confusion.items() if p == c)
        precision, recall = _ratio(tp, pred), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
        per[c] = CategoryFigures(precision, recall, f1, support, pred)
    correct = sum(1 for (g, _), (p, _) in zip(gold, predicted) if g == p)
    risk_tp = sum(1 for (_, g), (_, p) in zip(gold, predicted) if g and p)
    risk_gold = sum(1 for _, g in gold if g)
    risk_pred = sum(1 for _, p in predicted if p)
    return Report(
        per_category=per,
        macro_f1=_ratio(sum(f.f1 for f in per.values()), len(per)),
        accuracy=_ratio(correct, len(gold)),
        risk_precision=_ratio(risk_tp, risk_pred),
        risk_recall=_ratio(risk_tp, risk_gold),
        total=len(gold),
        correct=correct,
        risk_gold=risk_gold,
        risk_predicted=risk_pred,
        risk_true_positive=risk_tp,
        confusion=confusion,
        label=label,
    )


def _gold(row: Row) -> tuple[str, bool]:
    return row["category"], bool(row.get("risk", False))


def evaluate(rows: Iterable[Row], classifier: Classifier, label: str = "") -> Report:
    """Score ``classifier`` on labelled rows (``text``, ``channel``, ``category``, ``risk``)."""
    rows = list(rows)
    predicted = []
    for row in rows:
        result = classifier.classify(row["text"], row.get("channel", ""))
        predicted.append((result.category, result.risk))
    return report_from_pairs([_gold(r) for r in rows], predicted,
                             classifier.rules.categories, label)


def stratified_folds(rows: Sequence[Row], folds: int, seed: int) -> list[list[int]]:
    """Row indices per fold, each category spread evenly over the folds."""
    by_cat: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_cat.setdefault(row["category"], []).append(i)
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for cat in sorted(by_cat):
        idx = by_cat[cat]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[(j + offset) % folds].append(i)
        offset += len(idx)
    return out


def cross_validate(rows: Iterable[Row], rules: RuleSet | None, folds: int = 5, seed: int = 0,
                   model_weight: float = 0.45,
                   trainer: Callable[[list[Row]], ProbabilityModel] | None = None,
                   label: str = "") -> Report:
    """k-fold CV of rules+model: train on k-1 folds, score the held-out fold.

    Predictions from all held-out folds are pooled into one report, so every
    row is scored exactly once, by a model that never saw it.
    """
    rows = list(rows)
    if folds < 2 or folds > len(rows):
        raise ValueError("folds must be between 2 and the number of rows")
    if trainer is None:
        from .model import train_model

        trainer = train_model
    rules = rules if rules is not None else load_rules()
    predicted: list[tuple[str, bool]] = [("", False)] * len(rows)  # every row is set below
    for held in stratified_folds(rows, folds, seed):
        held_set = set(held)
        train = [r for i, r in enumerate(rows) if i not in held_set]
        classifier = Classifier(rules, model=trainer(train), model_weight=model_weight)
        for i in held:
            result = classifier.classify(rows[i]["text"], rows[i].get("channel", ""))
            predicted[i] = (result.category, result.risk)
    return report_from_pairs([_gold(r) for r in rows], predicted,
                             rules.categories, label or f"{folds}-fold CV, rules+model")


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file, skipping blank lines."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m complaint_stream.domain.classification.evaluation FILE.jsonl",
              file=sys.stderr)
        return 2
    rows = read_jsonl(argv[0])
    rules = load_rules()
    print(evaluate(rows, Classifier(rules), label="rules alone").to_text())
    print()
    try:
        report = cross_validate(rows, rules)
    except ImportError as exc:
        print(f"(cross-validation skipped: {exc})")
    else:
        print(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
