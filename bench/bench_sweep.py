"""The lifecycle's timer sweep over many case records: with the timer index (``next_due``) against the
sweep that decodes every record (what the runtime did before, and still does once after a rebalance).

    PYTHONPATH=. .venv/bin/python bench/bench_sweep.py [--cases 20000] [--rounds 3]

No broker: the runtime's ``StageRunner`` with an in-memory store and an outbox that acknowledges at once.
``--cases`` open cases (opened, assigned, in progress: each with a progress-message timer hours away) are
stored through the runner; then per round, alternated (odd rounds in reverse order): ``indexed``, a sweep
with every key noted (none due: nothing to decode), and ``full``, a sweep after ``forget_due()`` (every
record decoded and ``due`` called). Prints seconds per sweep and records decoded, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

from prometheus_client import CollectorRegistry

from complaint_stream.schemas import encode
from complaint_stream.settings import load_settings
from complaint_stream.topics import RECEIVED
from complaint_stream.workers import lifecycle
from complaint_stream.workers.metrics import RuntimeMetrics
from complaint_stream.workers.runtime import DeadLetterSink, DictStore, Outbox, StageRunner
from tests.support import cases as c


class Acked(Outbox):
    async def send(self, topic, key, value):
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class Message:
    def __init__(self, value: bytes, key: bytes, offset: int):
        self.value, self.key, self.offset = value, key, offset
        self.topic, self.partition, self.headers = RECEIVED.name, 0, ()


async def main(cases: int, rounds: int) -> None:
    now = c.T0 + timedelta(minutes=1)
    outbox = Acked()
    metrics = RuntimeMetrics("lifecycle", CollectorRegistry())
    run = StageRunner(lifecycle.binding(load_settings(environ={})), table=DictStore(), outbox=outbox,
                      dead_letters=DeadLetterSink(outbox, "lifecycle", metrics, lambda: now), metrics=metrics,
                      clock=lambda: now)
    batch: list[Message] = []
    for n in range(cases):
        for e in (*c.opened(n), c.assigned(n, c.T0), c.status(n, "inProgress", c.T0)):
            batch.append(Message(encode(e), e.data.complaint_id.encode(), len(batch)))
        if len(batch) >= 2000:
            await run.process_batch(batch)
            batch = []
    if batch:
        await run.process_batch(batch)
    times: dict[str, list[float]] = {"indexed": [], "full": []}
    decoded: dict[str, int] = {}
    for r in range(rounds):
        order = ["indexed", "full"] if r % 2 == 0 else ["full", "indexed"]
        for variant in order:
            if variant == "full":
                run.forget_due()
            else:
                await run.sweep()  # notes every key (after a full sweep, or the first one)
            t = time.perf_counter()
            await run.sweep()
            times[variant].append(time.perf_counter() - t)
            decoded[variant] = run.swept
    for variant, ts in times.items():
        print(f"{variant:8s} {statistics.median(ts) * 1000:9.1f} ms per sweep (median of {rounds}),"
              f" {decoded[variant]} of {cases} records decoded")
    print(f"full / indexed: {statistics.median(times['full']) / statistics.median(times['indexed']):.0f}x")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.cases, a.rounds))
