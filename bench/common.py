"""What the broker benchmarks share: a broker on loopback and percentiles."""

from __future__ import annotations

import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from complaint_stream.kafka.local_broker import ephemeral_broker  # noqa: E402
from complaint_stream.settings import Settings, load_settings  # noqa: E402


def pct(values, p: float):
    """The p-th percentile (nearest rank) of ``values``."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


@contextmanager
def bench_settings() -> Iterator[tuple[Settings, Path]]:
    """Settings for a benchmark: COMPLAINTS_KAFKA_BOOTSTRAP when set, else a throwaway broker on
    127.0.0.1; a scratch directory for state. Everything is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        settings = load_settings().with_overrides(state_dir=scratch / "state")
        broker = None
        if settings.uses_local_broker:
            broker = ephemeral_broker(scratch / "kafka", settings.cache_dir, settings.kafka_version)
            broker.start()
            settings = settings.with_overrides(kafka_bootstrap=broker.layout.bootstrap, topic_replication_factor=1)
        try:
            yield settings, scratch
        finally:
            if broker is not None:
                broker.destroy()
