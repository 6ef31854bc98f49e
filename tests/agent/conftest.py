"""Agent tests: faust's test_context (no broker), a recording outbox, a fixed clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from complaint_stream.workers.runtime import Outbox

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class RecordingOutbox(Outbox):
    """Keeps what agents send, per topic name."""

    def __init__(self):
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail_topics: set[str] = set()

    async def send(self, topic, key, value):
        """Record the send; the returned future fails for topics in ``fail_topics``, as a broker
        rejection would (e.g. a record over the size limit)."""
        fut = asyncio.get_running_loop().create_future()
        if topic.name in self.fail_topics:
            fut.set_exception(RuntimeError(f"MessageSizeTooLargeError: {topic.name}"))
        else:
            self.sent.append((topic.name, key, value))
            fut.set_result(None)
        return fut

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
    """What faust needs before agents accept test events. No consumer group assigns partitions here, so
    the runner takes every record as its own (tests/agent/test_runtime.py tests the ownership guard)."""
    built.app.finalize()
    built.app.flow_control.resume()
    built.runner.ownership = None
    return built
