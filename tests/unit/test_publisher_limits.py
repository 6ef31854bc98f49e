"""One validation, one set of limits (issue 10): the publisher refuses exactly what the intake stage, built
from the same settings, would dead-letter — text length, how far in the future, how old."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kafka.future import Future

from complaint_stream.channel_api import ChannelPublisher, SubmissionRejected, submission_envelope, validate_submission
from complaint_stream.domain.intake import SubmissionLimits
from complaint_stream.schemas import DecodeError, decoder_for
from complaint_stream.settings import load_settings
from complaint_stream.topics import DEAD_LETTERS, SUBMISSIONS
from complaint_stream.workers.intake import binding
from tests.support.factories import submission

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class FakeProducer:
    """Records what is sent; the broker acknowledges everything at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object]] = []

    def send(self, topic, key, envelope):
        self.sent.append((topic.name, key, envelope))
        future = Future()
        future.success(None)
        return future

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        pass


def configured(max_age_days: float = 2, max_future_skew_minutes: float = 3, max_text_chars: int = 40):
    return load_settings(environ={"COMPLAINTS_MAX_AGE_DAYS": str(max_age_days),
                                  "COMPLAINTS_MAX_FUTURE_SKEW_MINUTES": str(max_future_skew_minutes),
                                  "COMPLAINTS_MAX_TEXT_CHARS": str(max_text_chars)})


def publisher_accepts(obj: dict, cfg, now: datetime) -> bool:
    try:
        validate_submission(obj, cfg, now=now)
    except SubmissionRejected:
        return False
    return True


def intake_accepts(obj: dict, cfg, now: datetime) -> bool:
    """What the intake worker built from ``cfg`` makes of the record a channel publishes (its real decode)."""
    stage = binding(cfg).stage
    raw = json.dumps({"specversion": "1.0", "id": "e-1", "source": "/channels/app",
                      "type": "org.complaintstream.complaint.submitted.v1", "time": now.isoformat(),
                      "subject": "s", "datacontenttype": "application/json", "data": obj},
                     ensure_ascii=False).encode()
    try:
        decoder_for(stage.consumes)(raw, stage.decode_context(now))
    except DecodeError:
        return False
    return True


@pytest.mark.parametrize("field,value", [
    ("occurred_at", (NOW - timedelta(days=3)).isoformat()),       # older than MAX_AGE_DAYS=2 (default 365)
    ("occurred_at", (NOW + timedelta(minutes=5)).isoformat()),    # beyond MAX_FUTURE_SKEW_MINUTES=3 (default 10)
    ("text", "长" * 41),                                           # over MAX_TEXT_CHARS=40
])
def test_the_publisher_refuses_what_the_configured_intake_would_dead_letter(field, value):
    obj = submission(1, NOW, **{field: value})
    assert publisher_accepts(obj, None, NOW)  # the schema's defaults allow it: only the settings refuse it
    cfg = configured()
    assert not intake_accepts(obj, cfg, NOW)
    with pytest.raises(SubmissionRejected, match=field):
        validate_submission(obj, cfg, now=NOW)


@settings(max_examples=150, deadline=None)
@given(age_days=st.floats(0.5, 400), skew_minutes=st.floats(0, 60), max_text=st.integers(1, 4000),
       offset_minutes=st.integers(-400 * 24 * 60, 120), text_length=st.integers(1, 4100))
@example(age_days=1, skew_minutes=10, max_text=4000, offset_minutes=-2 * 24 * 60, text_length=10)
@example(age_days=365, skew_minutes=1, max_text=4000, offset_minutes=5, text_length=10)
def test_the_publisher_and_intake_agree_on_every_submission_for_any_limits(age_days, skew_minutes, max_text,
                                                                           offset_minutes, text_length):
    cfg = configured(age_days, skew_minutes, max_text)
    obj = submission(1, NOW, occurred_at=(NOW + timedelta(minutes=offset_minutes)).isoformat(),
                     text="信" * text_length)
    assert publisher_accepts(obj, cfg, NOW) == intake_accepts(obj, cfg, NOW)


def test_the_stage_and_the_publisher_read_the_limits_from_the_settings_in_one_place():
    cfg = configured(max_age_days=1.5, max_future_skew_minutes=2.5, max_text_chars=99)
    limits = SubmissionLimits.from_settings(cfg)
    assert limits == SubmissionLimits(max_text_chars=99, max_future=timedelta(minutes=2.5), max_age=timedelta(days=1.5))
    assert binding(cfg).stage.decode_context(NOW) == limits.context(NOW)


def test_publish_reports_and_dead_letters_a_line_the_settings_refuse_and_sends_the_rest():
    now = datetime.now(UTC)  # publish_lines validates at the time it runs
    old = submission(1, now, occurred_at=(now - timedelta(days=3)).isoformat())
    fresh = submission(2, now)
    producer = FakeProducer()
    summary = ChannelPublisher(configured(), producer).publish_lines([json.dumps(old), json.dumps(fresh)])
    assert summary.sent == 1 and [n for n, _ in summary.rejected] == [1]
    assert "more than 2 days in the past" in summary.rejected[0][1]
    sent = {topic for topic, _key, _env in producer.sent}
    assert sent == {SUBMISSIONS.name, DEAD_LETTERS.name}
    assert [key for topic, key, _ in producer.sent if topic == SUBMISSIONS.name] == \
        [submission_envelope(validate_submission(fresh)).data.dedup_key]
