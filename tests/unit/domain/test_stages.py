"""The intake and classify stages as pure state machines, driven in event time without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from complaint_stream.channel_api import validate_submission
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.schemas import ChannelSubmission, ComplaintClassified, ComplaintReceived, wrap
from complaint_stream.topics import CLASSIFIED, RECEIVED
from complaint_stream.workers import classify, intake
from complaint_stream.workers.wiring import StateCodec
from tests.support.factories import submission

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def submitted(i: int, at: datetime, **overrides):
    sub = validate_submission(submission(i, at, **overrides), now=at)
    return wrap(sub, source="/channels/test", subject=sub.dedup_key, time=at)


def test_intake_accepts_a_submission_once_and_forgets_it_after_the_window(base_settings):
    stage = intake.binding(base_settings).stage
    first = submitted(1, T0)
    retry = submitted(1, T0 + timedelta(hours=1))  # same channel reference, a new event
    late = submitted(1, T0 + timedelta(days=8))
    state: dict = {}
    outputs = list(run_in_event_time(stage, [late, retry, first], state=state))  # order of arrival does not matter
    received = [o.event.data for o in outputs]
    assert [o.topic for o in outputs] == [RECEIVED, RECEIVED]
    assert all(isinstance(r, ComplaintReceived) for r in received)
    assert received[0].received_at == T0 and received[1].received_at == T0 + timedelta(days=8)
    assert [o.key for o in outputs] == [r.complaint_id for r in received]
    # the hourly sweep dropped the entry after 7 days, so the day-8 event is new again
    assert set(state) == {first.data.dedup_key}


def test_the_hourly_sweep_forgets_entries_up_to_the_until_time(base_settings):
    stage = intake.binding(base_settings).stage
    state: dict = {}
    list(run_in_event_time(stage, [submitted(1, T0)], state=state))
    assert state
    list(run_in_event_time(stage, [], until=T0 + timedelta(days=6), state=state))
    list(run_in_event_time(stage, [submitted(2, T0 + timedelta(days=7, hours=2))],
                           until=T0 + timedelta(days=7, hours=3), state=state))
    assert set(state) == {submitted(2, T0).data.dedup_key}


def test_classify_links_a_follow_up_and_ignores_another_customer(base_settings):
    received = [o.event for o in run_in_event_time(intake.binding(base_settings).stage, [
        submitted(1, T0, text="手机信号很差，经常掉线", customer={"msisdn": "13812345678"}),
        submitted(2, T0 + timedelta(hours=2), text="还是没信号，电话一直掉线", customer={"msisdn": "13812345678"}),
        submitted(3, T0 + timedelta(hours=3), text="no signal at home", customer={"msisdn": "13900000000"}),
    ])]
    stage = classify.binding(base_settings).stage
    outputs = list(run_in_event_time(stage, received))
    a, b, other = (o.event.data for o in outputs)
    assert all(o.topic == CLASSIFIED and isinstance(o.event.data, ComplaintClassified) for o in outputs)
    assert a.follow_up_of is None and b.follow_up_of == a.complaint_id and other.follow_up_of is None
    assert a.repeat_of is b.repeat_of is other.repeat_of is None  # a is still open: b follows it up (催单)


def test_stage_state_round_trips_through_the_table_codec(base_settings):
    for worker in (intake, classify):
        stage = worker.binding(base_settings).stage
        codec = StateCodec(stage.state_type)
        events = [submitted(1, T0, text="宽带断网三天了"), submitted(2, T0 + timedelta(minutes=5), text="话费多扣了")]
        if worker is classify:
            events = [o.event for o in run_in_event_time(intake.binding(base_settings).stage, events)]
        state: dict = {}
        list(run_in_event_time(stage, events, state=state))
        assert state
        for value in state.values():
            assert codec.loads(codec.dumps(value)) == value


def test_stages_declare_what_they_consume(base_settings):
    assert intake.binding(base_settings).stage.consumes == (ChannelSubmission,)
    assert ComplaintReceived in classify.binding(base_settings).stage.consumes


def test_preparing_a_batch_changes_no_decision(base_settings):
    """classify_many for the batch, or classify per complaint: the same events."""
    import json
    from pathlib import Path

    rows = [json.loads(line) for line in
            (Path(__file__).resolve().parents[3] / "data" / "eval" / "complaints_dev.jsonl").read_text().splitlines()]
    subs = [submitted(i, T0 + timedelta(minutes=i), text=row["text"][:4000]) for i, row in enumerate(rows[:120])]
    received = [o.event for o in run_in_event_time(intake.binding(base_settings).stage, subs)]
    batched = [o.event for o in run_in_event_time(classify.binding(base_settings).stage, received)]
    stage = classify.binding(base_settings).stage
    one_by_one = []
    state: dict = {}
    for event in received:  # apply alone, never prepare
        key = stage.state_key(event)
        state[key], outputs = stage.apply(state.get(key), event, event.time)
        one_by_one += [o.event for o in outputs]
    assert len(batched) == len(received) == 120
    assert [e.model_dump() for e in batched] == [e.model_dump() for e in one_by_one]
