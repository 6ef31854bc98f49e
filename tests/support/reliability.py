"""Rows of the reliability table (README, Reliability): each fault case adds one; the test session
prints them at the end, so every CI run shows the measured figures."""

from __future__ import annotations

from dataclasses import dataclass

#: Rows and free lines recorded by the test running now; tests/conftest.py moves them onto the test's
#: report (so they reach the terminal from a pytest-xdist process too) and prints them at the end.
ROWS: list[Row] = []
LINES: list[str] = []


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


def summary(line: str) -> None:
    """A line of figures for the end of the session (and the test's own output)."""
    LINES.append(line)
    print(line)


def table(rows: list[dict]) -> list[str]:
    """The rows (as ``asdict`` made them) as a markdown table."""
    if not rows:
        return []
    head = "| fault | worker | complaints | lost | duplicates (before de-dup) | differing after de-dup | recovery s | note |"
    lines = [head, "|" + "---|" * 8]
    for d in rows:
        r = Row(**d)
        rec = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        lines.append(f"| {d['fault']} | {d['worker']} | {r.complaints} | {r.lost} | {r.duplicates} |"
                     f" {r.after_dedup_differs} | {rec} | {r.note} |")
    return lines
