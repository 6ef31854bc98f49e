"""The dispatch stage under the generic runtime, without a broker: its per-team gauges come from the team's
state as it is stored (never from counting outputs), its assignments from the work it reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry

from complaint_stream.schemas import ComplaintAssigned, TeamWork, decode, encode, wrap
from complaint_stream.topics import ASSIGN_WORK, ASSIGNED
from complaint_stream.workers import dispatch
from complaint_stream.workers.metrics import RuntimeMetrics
from complaint_stream.workers.runtime import DeadLetterSink, DictStore, StageRunner
from tests.agent.conftest import NOW


@dataclass
class Message:
    value: bytes
    key: bytes
    offset: int
    topic: str = ASSIGN_WORK.name
    partition: int = 0
    headers: tuple = ()


def work(n: int, kind: str = "offer", team: str = "portability") -> Message:
    cid = f"CMP20261201-{n:012d}"
    data = TeamWork(kind=kind, team=team, complaint_id=cid, at=NOW + timedelta(seconds=n), skill="number_portability",
                    rule="number_portability")
    return Message(encode(wrap(data, source="/workers/assign", subject=cid, event_id=f"{kind}-{n}", time=data.at)),
                   team.encode(), n)


async def test_team_gauges_follow_the_stored_state(base_settings, outbox, clock):
    registry = CollectorRegistry()
    metrics = RuntimeMetrics("dispatch", registry)
    domain = dispatch.DomainMetrics(registry)
    run = StageRunner(dispatch.binding(base_settings), table=DictStore(), outbox=outbox,
                      dead_letters=DeadLetterSink(outbox, "dispatch", metrics, clock), metrics=metrics, clock=clock)
    run.observe = domain.observe
    run.observe_state = domain.observe_state
    clock.now = NOW + timedelta(minutes=10)
    # the portability desk: 3 agents of capacity 8, 8 and 6 (packaged roster) -> 22 taken, 8 wait
    await run.process_batch([work(n) for n in range(1, 31)])
    assigned = [decode(v, [ComplaintAssigned]).data for _k, v in outbox.on(ASSIGNED)]
    held = sum(1 for a in assigned if a.agent_id)

    def gauge(name):
        return registry.get_sample_value(f"complaints_{name}", {"team": "portability"})

    assert (held, len(assigned) - held) == (22, 8)
    assert gauge("team_queue_length") == 8 and gauge("team_open_complaints") == 22
    assert gauge("team_agents_available") == 3
    assert gauge("team_queue_oldest_wait_seconds") > 0  # the oldest waiting since NOW + 23 s, wall clock now
    await run.process_batch([work(n, "release") for n in range(1, 6)])  # five end: five served from the queue
    assert gauge("team_queue_length") == 3 and gauge("team_open_complaints") == 22
    assert registry.get_sample_value("complaints_assignments_total", {"cause": "dequeued", "to": "agent"}) == 5
