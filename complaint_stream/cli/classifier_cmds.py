"""``complaints classify`` and ``complaints classifier train|eval``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from complaint_stream.bootstrap import build_classifier, build_priority_rules
from complaint_stream.domain.normalise import clean_text, normalise_channel
from complaint_stream.domain.repeats import PastComplaint
from complaint_stream.domain.triage import RepeatLookup, assess, no_repeat
from complaint_stream.schemas import CustomerTier
from complaint_stream.settings import Settings

TIERS = tuple(t.value for t in CustomerTier)


def _rows(lines: Iterable[bytes | str]) -> Iterable[tuple[int, dict | None, str]]:
    """``(number, object, "")`` per usable line, ``(number, None, why)`` per bad one; blank lines skipped.
    Lines may be bytes (a file read in binary mode): each is decoded on its own."""
    from complaint_stream.channel_api import NotText, line_text

    for number, raw in enumerate(lines, start=1):
        try:
            line = line_text(raw, number)
        except NotText as exc:
            yield number, None, str(exc)
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"invalid JSON: {exc.msg}"
            continue
        except RecursionError:
            yield number, None, "invalid JSON: nested too deeply"
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            yield number, None, "needs an object with a non-empty 'text'"
            continue
        yield number, obj, ""


def _options(obj: dict[str, Any], now: datetime) -> tuple[str, str, RepeatLookup]:
    """Channel, customer tier and repeat of one input line, checked as strictly as the pipeline checks
    them: a channel or alias intake knows, a tier of the schema, ``repeat`` a JSON boolean
    (``"false"`` is refused, not read as true). Raises ``ValueError`` saying what is wrong."""
    channel = normalise_channel(obj.get("channel", "app"))
    tier = obj.get("customer_tier", "standard")
    if not isinstance(tier, str) or tier not in TIERS:
        raise ValueError(f"customer_tier must be one of {', '.join(TIERS)}; got {json.dumps(tier, ensure_ascii=False)}")
    repeat = obj.get("repeat", False)
    if not isinstance(repeat, bool):
        raise ValueError(f"repeat must be true or false (a JSON boolean); got {json.dumps(repeat, ensure_ascii=False)}")

    def stated_repeat(category: str) -> PastComplaint:
        return PastComplaint("an earlier complaint (stated in the input)", category, now)

    return channel, tier, stated_repeat if repeat else no_repeat


def classify_lines(lines: Iterable[bytes | str], out: TextIO, settings: Settings) -> int:
    """One JSON line out per JSON line in: category, confidence, risk, priority, needs_review, explanation.

    Each line goes through ``triage.assess``, the function the classify stage calls, so a
    text gets here what the pipeline would give it (the same cleaning, the same ranking)."""
    classifier, version = build_classifier(settings)
    rules = build_priority_rules(settings)
    now = datetime.now(UTC)
    errors = 0
    for number, obj, error in _rows(lines):
        if obj is not None and not clean_text(obj["text"]):
            obj, error = None, "text is empty once control characters are removed"
        if obj is None:
            errors += 1
            print(f"line {number}: {error}", file=sys.stderr)
            continue
        try:
            channel, tier, repeat_of = _options(obj, now)
        except ValueError as exc:
            errors += 1
            print(f"line {number}: {exc}", file=sys.stderr)
            continue
        assessment = assess(obj["text"], channel=channel, tier=tier, classifier=classifier, priority_rules=rules,
                            review_confidence=settings.review_confidence, repeat_of=repeat_of)
        result, ranking = assessment.classification, assessment.ranking
        record = {
            **({"id": obj["id"]} if "id" in obj else {}),
            "category": result.category,
            "confidence": round(result.confidence, 4),
            "risk": bool(result.risk_flags),
            "risk_flags": list(result.risk_flags),
            "priority": ranking.priority.priority,
            "needs_review": ranking.needs_review,
            "explanation": list(result.explanation),
            "priority_reasons": list(assessment.priority_reasons),
            "classifier_version": version,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 1 if errors else 0


TRAIN_EXTRA = "training needs scikit-learn: pip install 'complaint-stream[train]'"


def default_model_path(settings: Settings) -> Path:
    if settings.classifier_model and settings.classifier_model.lower() != "none":
        return Path(settings.classifier_model)
    return Path(settings.state_dir) / "classifier-model.npz"


def train(lines: Iterable[bytes | str], out: str | None, settings: Settings) -> int:
    from complaint_stream.domain.classification.portable import train_portable

    rows = []
    for number, obj, error in _rows(lines):
        if obj is None or not isinstance(obj.get("category"), str):
            print(f"line {number}: {error or 'needs a string category'}", file=sys.stderr)
            continue
        rows.append(obj)
    categories = sorted({r["category"] for r in rows})
    if len(rows) < 10 or len(categories) < 2:
        print(f"need at least 10 labelled rows in 2 categories; got {len(rows)} in {len(categories)}", file=sys.stderr)
        return 1
    try:
        model = train_portable(rows)
    except ImportError as exc:
        print(f"{TRAIN_EXTRA} ({exc})", file=sys.stderr)
        return 1
    path = Path(out) if out else default_model_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    print(f"trained on {len(rows)} rows in {len(categories)} categories; saved {path}")
    print(f"use it with COMPLAINTS_CLASSIFIER_MODEL={path}")
    return 0


def evaluate_file(lines: Iterable[bytes | str], settings: Settings, folds: int = 5, as_json: bool = False) -> int:
    from complaint_stream.domain.classification import Classifier
    from complaint_stream.domain.classification.evaluation import cross_validate, evaluate

    rows = [obj for _n, obj, _e in _rows(lines) if obj is not None and "category" in obj]
    if not rows:
        print("no labelled rows (need text and category)", file=sys.stderr)
        return 1
    classifier, version = build_classifier(settings)
    rules = classifier.rules
    reports = [evaluate(rows, Classifier(rules), label="rules alone")]
    note = ""
    if classifier.model is not None:
        # Packaged and trained models record fingerprints of their training texts.
        trained_on = getattr(classifier.model, "trained_on", None)
        overlap = sum(bool(trained_on(r["text"])) for r in rows) if trained_on is not None else 0
        if overlap == 0:
            reports.append(evaluate(rows, classifier, label=f"rules + model ({version})"))
        else:
            note = (f"the model ({version}) was trained on {overlap} of these rows, so it is not scored here;"
                    " see the cross-validated figures instead")
    if folds >= 2:
        try:
            reports.append(cross_validate(rows, rules, folds=folds))
        except ImportError as exc:
            note = "; ".join(filter(None, [note, f"cross-validation skipped: {TRAIN_EXTRA} ({exc})"]))
    if as_json:
        print(json.dumps({"reports": [r.to_dict() for r in reports], "note": note}, ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(r.to_text() for r in reports))
        if note:
            print(f"\nnote: {note}")
    return 0
