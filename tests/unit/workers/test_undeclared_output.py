"""A stage that emits to a topic it does not declare is stopped: in a replay and in the runtime."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from complaint_stream.domain.stage import Output, StageBase, UndeclaredOutput, run_in_event_time
from complaint_stream.schemas import ComplaintReceived, Envelope
from complaint_stream.topics import CLASSIFIED, RECEIVED


class Leaky(StageBase[None]):
    name = "leaky"
    consumes = (ComplaintReceived,)
    produces = (CLASSIFIED,)
    state_type = None

    def state_key(self, event: Envelope) -> str:
        return "k"

    def apply(self, state, event, now):
        return None, (Output(RECEIVED, "k", event),)


def test_a_replay_refuses_an_output_to_an_undeclared_topic():
    event = object.__new__(Envelope)  # never inspected: the stage's output is refused first
    object.__setattr__(event, "__dict__", {"time": datetime(2026, 1, 1, tzinfo=UTC)})
    with pytest.raises(UndeclaredOutput, match="leaky emitted to complaints.received.v1"):
        list(run_in_event_time(Leaky(), [event]))
