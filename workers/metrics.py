"""The metrics every worker shares (from the runtime) and the HTTP endpoint that serves them.

One prefix, ``complaints_``. Label values come from closed sets (stage,
topic, error kind) and are set up in advance so dashboards see zeros, not
gaps. No label ever carries a phone number, customer key or complaint id.
Each worker declares its own domain metrics beside it (``workers/<name>/``)
on the same registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from complaint_stream.schemas import DeadLetterKind

# `_created` series double the exposition size and no dashboard of ours reads them.
disable_created_metrics()

PREFIX = "complaints"
RECORD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class RuntimeMetrics:
    """The runtime's metrics of one worker process, bound to one registry (tests pass their own)."""

    def __init__(self, worker: str, registry: CollectorRegistry | None = None):
        from prometheus_client import REGISTRY

        self.worker = worker
        self.registry = registry if registry is not None else REGISTRY
        r = self.registry
        self.records_in = Counter(f"{PREFIX}_records_consumed_total", "Records read from Kafka.",
                                  ["worker", "topic"], registry=r)
        self.records_out = Counter(f"{PREFIX}_records_produced_total", "Records written to Kafka.",
                                   ["worker", "topic"], registry=r)
        self.dead_letters = Counter(f"{PREFIX}_dead_letters_total", "Records sent to the dead-letter topic.",
                                    ["stage", "kind"], registry=r)
        self.batch_seconds = Histogram(f"{PREFIX}_batch_seconds",
                                       "Time to process one batch, until its outputs are acknowledged.",
                                       ["worker"], buckets=BATCH_BUCKETS, registry=r)
        self.batch_records = Histogram(f"{PREFIX}_batch_records", "Records in one batch.",
                                       ["worker"], buckets=BATCH_SIZES, registry=r)
        self.table_entries = Gauge(f"{PREFIX}_state_entries", "Entries in a worker's state table (this instance).",
                                   ["worker", "table"], registry=r)
        self.timer_failures = Counter(f"{PREFIX}_timer_failures_total",
                                      "Timer firings that raised or whose outputs were not delivered (retried at"
                                      " the next sweep).", ["worker"], registry=r)
        self.records_left = Counter(f"{PREFIX}_records_left_after_rebalance_total",
                                     "Records of a batch not handled here because a rebalance came in between:"
                                     " they come again from the committed offset, to whichever instance holds"
                                     " their partition now.", ["worker"], registry=r)
        self.rebalances = Counter(f"{PREFIX}_rebalances_total",
                                  "Partition assignments this instance received (the first one included).",
                                  ["worker"], registry=r)
        self.batch_seconds.labels(worker)
        self.batch_records.labels(worker)
        self.timer_failures.labels(worker)
        self.records_left.labels(worker)
        self.rebalances.labels(worker)
        for kind in DeadLetterKind:
            self.dead_letters.labels(worker, kind.value)


Readiness = Callable[[], tuple[bool, str]]


def serve(registry: CollectorRegistry, host: str, port: int, readiness: Readiness,
          views: Mapping[str, Callable[[str], bytes | None]] | None = None) -> ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` (the process answers) and ``/readyz`` (200 once the worker
    has its partitions and its tables are recovered, 503 with the reason before) on a daemon thread,
    and each of ``views``: ``GET <prefix><key>`` answers the JSON the view returns for the key (404
    when it has none)."""
    routes = dict(views or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                ready, why = readiness()
                self._reply(200 if ready else 503, f"{'ready' if ready else 'not ready'}: {why}\n".encode())
            else:
                for prefix, view in routes.items():
                    if path.startswith(prefix) and len(path) > len(prefix):
                        key = unquote(path[len(prefix):])
                        body = view(key)
                        if body is None:
                            self._reply(404, b'{"error": "not found on this instance"}\n', "application/json")
                        else:
                            self._reply(200, body, "application/json")
                        return
                self._reply(404, b"not found: /metrics, /healthz, /readyz\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
