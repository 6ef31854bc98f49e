"""Rows of the reliability table (README, Reliability): each fault case adds one; the test session
prints them at the end, so every CI run shows the measured figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass

ROWS: list[Row] = []


@dataclass
class Row:
    fault: str
    worker: str
    complaints: int
    lost: int
    duplicates: int          # repeated outputs before de-duplication by event id
    after_dedup_differs: int  # outputs that differ from the undisturbed run after de-duplication
    recovery_s: float | None  # seconds from the fault (or broker back) to processing again
    note: str = ""


def record(row: Row) -> None:
    ROWS.append(row)


def table() -> list[str]:
    if not ROWS:
        return []
    head = "| fault | worker | complaints | lost | duplicates (before de-dup) | differing after de-dup | recovery s | note |"
    lines = [head, "|" + "---|" * 8]
    for r in ROWS:
        d = asdict(r)
        rec = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        lines.append(f"| {d['fault']} | {d['worker']} | {r.complaints} | {r.lost} | {r.duplicates} |"
                     f" {r.after_dedup_differs} | {rec} | {r.note} |")
    return lines
