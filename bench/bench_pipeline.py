"""End to end: submissions in, classified complaints out, through the real intake and classify workers.

    python bench/bench_pipeline.py [--count 5000]

Starts a throwaway broker on 127.0.0.1 (or uses COMPLAINTS_KAFKA_BOOTSTRAP), runs
`complaints worker intake` and `complaints worker classify` as processes, publishes
``--count`` distinct submissions at once and reports the time until every one is
classified, the throughput, and the per-complaint latency (submission produced ->
classified event written, from Kafka record timestamps).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from common import bench_settings, pct

from complaint_stream.channel_api import ChannelPublisher
from complaint_stream.kafka.admin import create_topics
from complaint_stream.kafka.records import read_topic
from tests.support.factories import submission
from tests.support.workers import running_workers, scrape
from complaint_stream import topics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    with bench_settings() as (settings, tmp):
        create_topics(settings)
        (tmp / "logs").mkdir()
        with running_workers(settings, ["intake", "classify"], tmp / "logs") as ports:
            time.sleep(8)  # let both groups finish their first rebalance
            now = datetime.now(timezone.utc)
            t0 = time.monotonic()
            with ChannelPublisher(settings) as pub:
                for i in range(args.count):
                    pub.submit(submission(i, now, channel_ref=f"PIPEBENCH-{i:07d}"), wait=False)
            t_pub = time.monotonic() - t0
            done = 0
            while done < args.count and time.monotonic() - t0 < 600:
                done = sum(v for k, v in scrape(ports["classify"]).items()
                           if k.startswith("complaints_classified_total"))
                time.sleep(0.2)
            elapsed = time.monotonic() - t0
            for name, port in ports.items():
                m = scrape(port)
                n = m.get(f'complaints_processing_seconds_count{{worker="{name}"}}', 0)
                busy = m.get(f'complaints_processing_seconds_sum{{worker="{name}"}}', 0)
                print(f"{name}: {n:.0f} records, {busy:.1f}s inside the handler"
                      f" ({1000 * busy / max(n, 1):.2f} ms per record)")

        def stamps(topic):  # complaint id -> when the record was written (ms)
            return {r.key: r.timestamp_ms for r in read_topic(settings, topic, idle_timeout=5.0)}
        received = stamps(topics.RECEIVED)
        classified = stamps(topics.CLASSIFIED)
        latency = [classified[k] - received[k] for k in classified if k in received]
        print(f"{args.count} submissions: published in {t_pub:.1f}s; all classified after {elapsed:.1f}s"
              f" -> {done / elapsed:,.0f} complaints/s end to end (1 intake + 1 classify process, 6 partitions)")
        print(f"received -> classified latency under that burst: p50 {pct(latency, 50)} ms,"
              f" p95 {pct(latency, 95)} ms, p99 {pct(latency, 99)} ms ({len(latency)} complaints)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
