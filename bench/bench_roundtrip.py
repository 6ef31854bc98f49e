"""Publish -> consume round trip on a real local broker (127.0.0.1 only).

    python bench/bench_roundtrip.py [--count 20000] [--paced-rate 500] [--paced-seconds 10]

1. Throughput: validate + publish ``--count`` submissions with the channel API
   (acks=all, idempotent), then read them back with the catalogue consumer.
2. Latency: publish at ``--paced-rate`` per second while a consumer tails the
   topic; latency = time the consumer decoded the record - time the producer
   was handed it. Prints p50/p95/p99/max.
Uses COMPLAINTS_KAFKA_BOOTSTRAP when set, otherwise starts a throwaway broker.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime

from common import bench_settings, pct

from complaint_stream import topics
from complaint_stream.channel_api import ChannelPublisher, validate_submission
from complaint_stream.kafka.admin import create_topics
from complaint_stream.kafka.records import read_topic
from tests.support.factories import submission


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--paced-rate", type=int, default=500)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with bench_settings() as (settings, _scratch):
        create_topics(settings, [topics.SUBMISSIONS, topics.DEAD_LETTERS])
        now = datetime.now(UTC)
        subs = [submission(i, now, channel_ref=f"BENCH-{i:07d}") for i in range(args.count)]

        t0 = time.perf_counter()
        for s in subs:
            validate_submission(s, settings)
        t_validate = time.perf_counter() - t0

        with ChannelPublisher(settings) as pub:
            t0 = time.perf_counter()
            for s in subs:
                pub.submit(s, wait=False)
            pub._producer.flush()
            t_publish = time.perf_counter() - t0

        t0 = time.perf_counter()
        n = sum(1 for r in read_topic(settings, topics.SUBMISSIONS, max_records=args.count, idle_timeout=10)
                if r.envelope is not None)
        t_consume = time.perf_counter() - t0
        print(f"throughput: validated {args.count / t_validate:,.0f}/s; published {args.count / t_publish:,.0f}/s"
              f" (acks=all, idempotent, incl. validation); consumed+decoded {n / t_consume:,.0f}/s ({n} records)")

        # paced latency run
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        total = int(args.paced_rate * args.paced_seconds)
        done = threading.Event()

        def tail():
            for rec in read_topic(settings, topics.SUBMISSIONS, from_beginning=False, idle_timeout=15,
                                  max_records=total):
                arrived = time.perf_counter()
                if rec.envelope is not None and rec.envelope.id in sent_at:
                    latencies.append(arrived - sent_at[rec.envelope.id])
            done.set()

        reader = threading.Thread(target=tail, daemon=True)
        reader.start()
        time.sleep(2.0)  # consumer assigned and positioned at the end
        with ChannelPublisher(settings) as pub:
            interval = 1.0 / args.paced_rate
            start = time.perf_counter()
            for i in range(total):
                target = start + i * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                s = submission(i, now, channel_ref=f"PACED-{i:07d}")
                t = time.perf_counter()
                env = pub.submit(s, wait=False)
                sent_at[env.id] = t
            pub._producer.flush()
        done.wait(timeout=60)
        ms = [x * 1000 for x in latencies]
        print(f"latency at {args.paced_rate}/s for {args.paced_seconds:.0f}s ({len(ms)}/{total} records):"
              f" p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, p99 {pct(ms, 99):.1f} ms,"
              f" max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
