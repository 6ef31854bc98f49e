"""The worker registry: every worker's name, app id, metrics port, description and module.

Read by ``complaints worker NAME``, ``complaints replay``, the run command, the
launcher, the README and the compose-consistency test: a new worker is one
entry here and one package under ``workers/``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from complaint_stream.topics import Worker, consumed_by, produced_by, replace_markdown_table

if TYPE_CHECKING:
    from complaint_stream.settings import Settings


@dataclass(frozen=True)
class WorkerEntry:
    """One worker. ``module`` is its package: ``binding(settings)`` (the stage and how it is fed)
    and ``DomainMetrics(registry)`` (its own metrics, with ``observe(event, outputs)``)."""

    name: Worker
    app_id: str  # faust app id = Kafka consumer group
    metrics_port: int
    description: str
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


WORKERS: dict[str, WorkerEntry] = {
    str(entry.name): entry
    for entry in (
        WorkerEntry(Worker.INTAKE, "complaints-intake", 9401,
                    "validates and normalises submissions, de-duplicates channel retries, assigns complaint ids",
                    "complaint_stream.workers.intake"),
        WorkerEntry(Worker.CLASSIFY, "complaints-classify", 9402,
                    "classifies, flags risk, links repeat complaints and sets the priority",
                    "complaint_stream.workers.classify"),
        WorkerEntry(Worker.LIFECYCLE, "complaints-lifecycle", 9403,
                    "keeps each complaint's case record: status, follow-ups, merges, resolution, callback,"
                    " customer messages",
                    "complaint_stream.workers.lifecycle"),
        WorkerEntry(Worker.ASSIGN, "complaints-assign", 9404,
                    "routes each classified complaint to a team by the roster's rules; returns, supervisors' moves",
                    "complaint_stream.workers.assign"),
        WorkerEntry(Worker.DISPATCH, "complaints-dispatch", 9405,
                    "gives each team's complaints to its agents within capacity, or queues them in order",
                    "complaint_stream.workers.dispatch"),
        WorkerEntry(Worker.SLA, "complaints-sla", 9406,
                    "keeps every open complaint's SLA clocks (时限): warnings, breaches, the escalation ladder (升级)",
                    "complaint_stream.workers.sla"),
    )
}


class UnknownWorker(LookupError):
    """No worker of that name is registered."""


def get(name: str) -> WorkerEntry:
    try:
        return WORKERS[name]
    except KeyError:
        raise UnknownWorker(f"unknown worker {name!r}; known: {', '.join(WORKERS)}") from None


TABLE_HEADER = "| worker | app id = consumer group | reads | writes | state table | metrics and health |"


def render_worker_table(settings: Settings) -> str:
    """The markdown table of workers (README), from the registry, each worker's binding and the catalogue."""
    lines = [TABLE_HEADER, "|---|---|---|---|---|---|"]
    for entry in WORKERS.values():
        binding = entry.load().binding(settings)
        reads = ", ".join(f"`{t.name}`" for t in consumed_by(entry.name))
        writes = ", ".join(f"`{t.name}`" for t in produced_by(entry.name))
        table = f"`{binding.table}`" if binding.table else "none"
        lines.append(f"| {entry.name}: {entry.description} | `{entry.app_id}` | {reads} | {writes} | {table} |"
                     f" `:{entry.metrics_port}` |")
    return "\n".join(lines) + "\n"


def replace_worker_table(markdown: str, settings: Settings) -> str:
    """``markdown`` with its worker table regenerated."""
    return replace_markdown_table(markdown, TABLE_HEADER, render_worker_table(settings))
