"""Local broker start-up: cold (jars downloaded from Maven Central into empty caches) and warm (cached jars).

    python bench/bench_broker.py [--skip-cold] [--warm-runs 3]

Every broker listens on 127.0.0.1 only and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from complaint_stream.kafka.local_broker import ensure_jars, ephemeral_broker
from complaint_stream.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    version = settings.kafka_version

    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        root = Path(tmp)
        if not args.skip_cold:
            t0 = time.monotonic()
            ensure_jars(root / "cache", version, maven_repo=root / "m2")
            jars = time.monotonic() - t0
            broker = ephemeral_broker(root / "cold", root / "cache", version)
            report = broker.start(timeout=120)
            broker.destroy()
            print(f"cold: jars from Maven Central {jars:.1f}s, then broker ready in {report.start_seconds:.1f}s;"
                  f" total {jars + report.start_seconds:.1f}s")
        ensure_jars(settings.cache_dir, version)
        times = []
        for i in range(args.warm_runs):
            broker = ephemeral_broker(root / f"warm{i}", settings.cache_dir, version)
            times.append(broker.start(timeout=120).start_seconds)
            broker.destroy()
        print(f"warm: broker ready (format + start + metadata answered) in"
              f" median {statistics.median(times):.1f}s, min {min(times):.1f}s, max {max(times):.1f}s"
              f" over {len(times)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
