"""Complaint ids and CloudEvent ids (issues 5 and 6): a channel's own ids are scoped by the channel, and
derived ids hash their fields in an unambiguous encoding, so two different complaints never share an id."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from complaint_stream.channel_api import validate_submission
from complaint_stream.domain.intake import (
    Accepted,
    IntakePolicy,
    accept_submission,
    channel_complaint_id,
    complaint_id_for,
    event_id,
    id_material,
)
from complaint_stream.schemas import COMPLAINT_ID_PATTERN, DERIVED_COMPLAINT_ID_PATTERN, Channel, ComplaintId, wrap
from tests.support.factories import submission

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
POLICY = IntakePolicy(dedup_window=timedelta(days=7), customer_key_secret="s3cret")
COMPLAINT_ID = TypeAdapter(ComplaintId)

channels = st.sampled_from([c.value for c in Channel])
channel_ids = st.from_regex(re.compile(COMPLAINT_ID_PATTERN), fullmatch=True).filter(lambda s: 3 <= len(s) <= 64)
SEPARATORS = ["\x1f", "/", ":", ".", "-", ",", '"', "\\", "[", "]", "\x00", "\u2028"]
#: Strings made mostly of the separators a join could use, and the characters JSON escapes.
fields = st.text(alphabet=st.sampled_from([*SEPARATORS, "a", "b", "1"]), max_size=8)


def envelope(channel: str, *, source: str | None = None, event: str | None = None, **overrides: object):
    sub = validate_submission(submission(1, NOW, channel=channel, **overrides), now=NOW)
    return wrap(sub, source=source or f"/channels/{channel}", subject=sub.dedup_key, event_id=event, time=NOW)


# --- issue 5: the same id from two channels -------------------------------------------------------------------

def test_two_channels_that_allocate_the_same_id_get_two_complaints_with_two_event_ids():
    hotline = accept_submission(envelope("hotline", complaint_id="2026-000123"), None, NOW, POLICY)
    app = accept_submission(envelope("app", complaint_id="2026-000123"), None, NOW, POLICY)
    assert isinstance(hotline, Accepted) and isinstance(app, Accepted)
    assert (hotline.event.data.complaint_id, app.event.data.complaint_id) == ("hotline.2026-000123", "app.2026-000123")
    assert hotline.event.id != app.event.id  # consumers de-duplicating on the CloudEvent id keep both


def test_a_channels_id_is_kept_within_its_channel_and_a_retry_keeps_its_ids():
    first = accept_submission(envelope("wechat", complaint_id="WX-9"), None, NOW, POLICY)
    again = accept_submission(envelope("wechat", complaint_id="WX-9"), None, NOW + timedelta(minutes=1), POLICY)
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert first.event.data.complaint_id == again.event.data.complaint_id == "wechat.WX-9"
    assert first.event.id == again.event.id


@given(channels, channel_ids, channels, channel_ids)
@example("hotline", "A" * 64, "hotline", "A" * 63 + "B")  # both too long for the prefix: hashed apart
@example("app", "x.y", "app", "x.y")
def test_scoped_ids_are_valid_complaint_ids_distinct_per_channel_and_id_and_never_look_derived(c1, id1, c2, id2):
    a, b = channel_complaint_id(c1, id1), channel_complaint_id(c2, id2)
    for cid, channel in ((a, c1), (b, c2)):
        assert COMPLAINT_ID.validate_python(cid) == cid
        assert cid.split(".", 1)[0] == channel  # the channel reads back
        assert not re.fullmatch(DERIVED_COMPLAINT_ID_PATTERN, cid)
    assert (a == b) == ((c1, id1) == (c2, id2))


def test_an_id_too_long_for_its_prefix_is_hashed_and_cannot_meet_a_short_one():
    long_id = "R" * 64
    scoped = channel_complaint_id("regulator", long_id)
    assert re.fullmatch(r"regulator\._[A-Z2-7]{26}", scoped)
    # A channel's own id starts with a letter or digit, so "<channel>._…" is only ever a hashed one.
    assert not re.fullmatch(COMPLAINT_ID_PATTERN, scoped.split(".", 1)[1])


# --- issue 6: derived ids from fields that contain the separator ----------------------------------------------

@given(st.lists(fields, min_size=1, max_size=4), st.lists(fields, min_size=1, max_size=4))
@example(["a\x1fb", "c"], ["a", "b\x1fc"])  # one join of the former encoding
@example(["a", ""], ["a"])
def test_distinct_field_lists_have_distinct_id_material(a, b):
    assume(a != b)
    assert id_material(*a) != id_material(*b)


@given(fields.filter(bool), fields.filter(bool), fields.filter(bool), fields.filter(bool))
@example("/channels/app\x1fX", "1", "/channels/app", "X\x1f1")  # the same id before: source and id joined by \x1f
def test_two_submission_events_whose_fields_would_join_alike_get_distinct_complaint_ids(src1, id1, src2, id2):
    assume((src1, id1) != (src2, id2))
    a = complaint_id_for(envelope("app", source=src1, event=id1))
    b = complaint_id_for(envelope("app", source=src2, event=id2))
    assert a != b
    assert re.fullmatch(DERIVED_COMPLAINT_ID_PATTERN, a) and re.fullmatch(DERIVED_COMPLAINT_ID_PATTERN, b)


def test_a_derived_id_stays_deterministic_for_one_submission_event():
    env = envelope("sms", source="/channels/sms", event="evt-1")
    assert complaint_id_for(env) == complaint_id_for(env.model_copy())


@given(st.tuples(channel_ids, fields), st.tuples(channel_ids, fields))
@example(("CMP-1", "a/b"), ("CMP-1/a", "b"))
def test_distinct_complaint_and_stage_pairs_have_distinct_event_ids(a, b):
    assume(a != b)
    assert event_id(*a) != event_id(*b)
