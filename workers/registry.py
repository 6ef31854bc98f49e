"""The worker registry: every worker's name, app id, metrics port, description and module.

Read by ``complaints worker NAME``, ``complaints replay``, the run command, the
launcher, the README and the compose-consistency test: a new worker is one
entry here and one package under ``workers/``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class WorkerEntry:
    """One worker. ``module`` is its package: ``binding(settings)`` (the stage and how it is fed)
    and ``DomainMetrics(registry)`` (its own metrics, with ``observe(event, outputs)``)."""

    name: str
    app_id: str  # faust app id = Kafka consumer group
    metrics_port: int
    description: str
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


WORKERS: dict[str, WorkerEntry] = {
    entry.name: entry
    for entry in (
        WorkerEntry("intake", "complaints-intake", 9401,
                    "validates and normalises submissions, de-duplicates channel retries, assigns complaint ids",
                    "complaint_stream.workers.intake"),
        WorkerEntry("classify", "complaints-classify", 9402,
                    "classifies, flags risk, links repeat complaints and sets the priority",
                    "complaint_stream.workers.classify"),
    )
}


class UnknownWorker(LookupError):
    """No worker of that name is registered."""


def get(name: str) -> WorkerEntry:
    try:
        return WORKERS[name]
    except KeyError:
        raise UnknownWorker(f"unknown worker {name!r}; known: {', '.join(WORKERS)}") from None
