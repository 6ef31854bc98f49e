"""Stream workers (faust-streaming). One package per worker, each its own app id = consumer group."""

from __future__ import annotations

from complaint_stream.settings import Settings


def launch(name: str, settings: Settings, loglevel: str | None = None) -> int:
    """Run one worker in the foreground until it is stopped."""
    if name == "intake":
        from complaint_stream.workers.intake.app import create_app
    elif name == "classify":
        from complaint_stream.workers.classify.app import create_app
    else:
        raise ValueError(f"unknown worker {name!r}")
    from complaint_stream.workers.runtime import run_worker

    return run_worker(create_app(settings), settings, loglevel=loglevel)
