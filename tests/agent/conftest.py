"""Agent tests: faust's test_context (no broker), a recording outbox, a fixed clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from complaint_stream.workers.runtime import Outbox

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


class RecordingOutbox(Outbox):
    """Keeps what agents send, per topic name."""

    def __init__(self):
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic, key, value):
        self.sent.append((topic.name, key, value))

    def on(self, topic):
        return [(k, v) for name, k, v in self.sent if name == topic.name]


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def outbox():
    return RecordingOutbox()


@pytest.fixture
def clock():
    return Clock()


def prepare(built):
    """What faust needs before agents accept test events."""
    built.app.finalize()
    built.app.flow_control.resume()
    return built
