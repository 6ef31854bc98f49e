"""Throughput of the classifier as a pure function on one core.

    python bench/bench_classify.py [--calls 50000] [--rounds 5] [--batch 256] [--no-model]

Classifies the dev texts repeated to at least ``--calls`` calls: the rules
alone, then as deployed by default (rules + the packaged n-gram model, which
is asked only when the rules are not decisive), one ``classify`` call per
complaint, then through ``classify_many`` in batches of ``--batch``
complaints (what a consumer handling a polled batch would do).
Target: >= 20,000 complaints/s.

This machine's speed varies (a shared VM: the same loop takes 11-22 us from
one minute to the next), so every round is preceded by a calibration loop
(``sum(range(1000))``, ~8-10 us on a current desktop core) and the best
round is printed with the calibration measured just before it.  For a
figure independent of the machine's load, count instructions instead:
``python bench/bench_classify_instructions.py`` (callgrind).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from complaint_stream.domain.classification import Classifier, load_rules  # noqa: E402

DEV = ROOT / "data" / "eval" / "complaints_dev.jsonl"


def calibration_us() -> float:
    """Microseconds for ``sum(range(1000))`` (best of 3): how fast the core is right now."""
    return min(timeit.repeat("sum(range(1000))", number=500, repeat=3)) / 500 * 1e6


def run(classifier: Classifier, rows: list[dict], calls: int, rounds: int = 5,
        batch: int = 0) -> tuple[float, float, float]:
    """(best complaints/s, calibration before that round, median complaints/s)
    over ``rounds`` rounds of >= calls/rounds complaints each.

    ``batch`` > 0: ``classify_many`` on consecutive slices of that many
    complaints instead of one ``classify`` call each.
    """
    per_round = max(len(rows), -(-calls // rounds))
    repeats = -(-per_round // len(rows))
    items = [(r["text"], r["channel"]) for r in rows] * repeats
    classify = classifier.classify
    classify_many = classifier.classify_many
    slices = [items[i:i + batch] for i in range(0, len(items), batch)] if batch else []
    results = []
    for _ in range(rounds):
        calibration = calibration_us()
        start = time.perf_counter()
        if batch:
            for chunk in slices:
                classify_many(chunk)
        else:
            for text, channel in items:
                classify(text, channel)
        results.append((len(items) / (time.perf_counter() - start), calibration))
    results.sort()
    best, calibration = results[-1]
    return best, calibration, results[len(results) // 2][0]


def report(label: str, figures: tuple[float, float, float], calls: int, how: str) -> None:
    best, calibration, median = figures
    print(f"{label:<34} best {best:>7,.0f}/s ({1e6 / best:5.1f} us each, calibration {calibration:4.1f} us)"
          f"  median {median:>7,.0f}/s   [{calls:,}+ complaints, {how}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEV))
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="complaints per classify_many call")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    print(f"{len(rows)} texts from {args.data}")
    rules = load_rules()
    report("rules alone", run(Classifier(rules), rows, args.calls, args.rounds), args.calls, "classify")
    if not args.no_model:
        from complaint_stream.bootstrap import build_classifier
        from complaint_stream.settings import load_settings

        deployed, version = build_classifier(load_settings(environ={}))
        asked = sum(deployed.asks_model(r["text"], r["channel"]) for r in rows)
        print(f"deployed classifier {version}: the model is asked for {asked} of {len(rows)} texts "
              f"(margin < {deployed.model_margin:g})")
        calls = max(len(rows), args.calls // 2)
        report("rules+model", run(deployed, rows, calls, args.rounds), calls, "classify")
        if args.batch > 0:
            report("rules+model, classify_many", run(deployed, rows, calls, args.rounds, batch=args.batch), calls,
                   f"batches of {args.batch}")
        always = Classifier(deployed.rules, model=deployed.model, model_margin=2.0)
        calls = max(len(rows), args.calls // 5)
        report("rules+model asked always, batches", run(always, rows, calls, args.rounds, batch=args.batch or 256),
               calls, f"batches of {args.batch or 256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
