"""Throughput of the classifier as a pure function on one core.

    python bench/bench_classify.py [--calls 50000] [--rounds 5] [--batch 256] [--no-model]

Classifies the dev texts repeated to at least ``--calls`` calls, first with
rules alone, then as deployed by default: rules + the packaged n-gram model
(``default_model.npz``, numpy only), one ``classify`` call per complaint and
then through ``classify_many`` in batches of ``--batch`` complaints (what a
consumer handling a polled batch would do).  Target: >= 20,000 complaints/s
for rules alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from complaint_stream.domain.classification import Classifier, load_rules  # noqa: E402

DEV = ROOT.parent / "shared" / "eval" / "complaints_dev.jsonl"


def run(classifier: Classifier, rows: list[dict], calls: int, rounds: int = 5,
        batch: int = 0) -> tuple[float, float]:
    """(best, median) complaints/s over ``rounds`` rounds of >= calls/rounds calls.

    ``batch`` > 0: ``classify_many`` on consecutive slices of that many
    complaints instead of one ``classify`` call each.  The best round is the
    figure least disturbed by other load on a shared machine (the same
    convention as ``timeit``); the median is shown too.
    """
    per_round = max(len(rows), -(-calls // rounds))
    repeats = -(-per_round // len(rows))
    items = [(r["text"], r["channel"]) for r in rows] * repeats
    classify = classifier.classify
    classify_many = classifier.classify_many
    slices = [items[i:i + batch] for i in range(0, len(items), batch)] if batch else []
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        if batch:
            for chunk in slices:
                classify_many(chunk)
        else:
            for text, channel in items:
                classify(text, channel)
        rates.append(len(items) / (time.perf_counter() - start))
    rates.sort()
    return rates[-1], rates[len(rates) // 2]


def calibration_us() -> float:
    """Microseconds for ``sum(range(1000))`` (best of 5): compares machines."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DEV))
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="complaints per classify_many call")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args()
    with open(args.data, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rules = load_rules()
    print(f"calibration: sum(range(1000)) takes {calibration_us():.1f} us on this machine "
          "(~8-10 us on a current desktop core)")
    best, median = run(Classifier(rules), rows, args.calls, args.rounds)
    print(f"rules alone:  best {best:,.0f}  median {median:,.0f} complaints/s "
          f"({args.calls:,}+ calls, one core)")
    if not args.no_model:
        from complaint_stream.bootstrap import build_classifier
        from complaint_stream.settings import load_settings

        deployed, _version = build_classifier(load_settings(environ={}))
        calls = max(len(rows), args.calls // 5)
        best, median = run(deployed, rows, calls, args.rounds)
        print(f"rules+model:  best {best:,.0f}  median {median:,.0f} complaints/s "
              f"({calls:,}+ calls, one core)")
        if args.batch > 0:
            best, median = run(deployed, rows, calls, args.rounds, batch=args.batch)
            print(f"rules+model, classify_many: best {best:,.0f}  median {median:,.0f} complaints/s "
                  f"({calls:,}+ complaints in batches of {args.batch}, one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
