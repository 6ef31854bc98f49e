"""Intake decisions: new complaints, retries within the window, deterministic ids, personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from complaint_stream.channel_api import submission_envelope, validate_submission
from complaint_stream.domain.intake import (
    Accepted,
    Duplicate,
    IntakePolicy,
    SeenSubmission,
    accept_submission,
    complaint_id_for,
    expired,
)
from complaint_stream.domain.privacy import customer_key
from tests.support.factories import submission

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
POLICY = IntakePolicy(dedup_window=timedelta(days=7), customer_key_secret="s3cret")


def envelope(i=1, **overrides):
    return submission_envelope(validate_submission(submission(i, NOW, **overrides), now=NOW))


def test_a_first_submission_becomes_a_received_complaint():
    env = envelope()
    decision = accept_submission(env, None, NOW, POLICY)
    assert isinstance(decision, Accepted)
    received = decision.event.data
    assert received.status.value == "acknowledged" and received.ticket_type == "complaint"
    assert received.received_at == NOW and received.text == env.data.text
    assert received.customer.msisdn == env.data.customer.msisdn  # agents need it to call back
    assert received.customer_key == customer_key(env.data.customer.msisdn, "s3cret")
    assert decision.event.subject == received.complaint_id
    assert decision.seen == SeenSubmission(received.complaint_id, NOW)


def test_a_retry_within_the_window_is_a_duplicate_of_the_first():
    seen = SeenSubmission("CMP20261128-AAAA", NOW - timedelta(days=6, hours=23))
    assert accept_submission(envelope(), seen, NOW, POLICY) == Duplicate(seen)


def test_the_same_reference_after_the_window_is_a_new_complaint():
    seen = SeenSubmission("CMP20261101-AAAA", NOW - timedelta(days=7, seconds=1))
    assert isinstance(accept_submission(envelope(), seen, NOW, POLICY), Accepted)
    assert expired(seen, NOW, POLICY)


def test_the_channels_own_complaint_id_is_kept_scoped_by_its_channel():
    assert complaint_id_for(envelope(complaint_id="HL-2026-000123")) == "app.HL-2026-000123"  # submission(1): app


def test_derived_ids_are_deterministic_per_submission_event_and_differ_between_events():
    a, b = envelope(), envelope()
    assert complaint_id_for(a) == complaint_id_for(a)
    assert complaint_id_for(a) != complaint_id_for(b)  # a new event of the same reference
    assert complaint_id_for(a).startswith("CMP20261128-")


def test_a_replayed_submission_gives_the_same_event_id():
    env = envelope()
    first = accept_submission(env, None, NOW, POLICY)
    again = accept_submission(env, None, NOW + timedelta(seconds=5), POLICY)
    assert first.event.id == again.event.id and first.event.data.complaint_id == again.event.data.complaint_id


def test_the_customer_key_does_not_contain_the_phone_number():
    decision = accept_submission(envelope(), None, NOW, POLICY)
    digits = decision.event.data.customer.msisdn.lstrip("+")
    assert digits[-8:] not in decision.event.data.customer_key


def test_derived_ids_have_the_documented_shape_and_are_valid_complaint_ids():
    import re

    from pydantic import TypeAdapter

    from complaint_stream.schemas import DERIVED_COMPLAINT_ID_PATTERN, ComplaintId

    for i in range(50):
        cid = complaint_id_for(envelope(i))
        assert re.fullmatch(DERIVED_COMPLAINT_ID_PATTERN, cid), cid
        assert TypeAdapter(ComplaintId).validate_python(cid) == cid


def test_the_policy_takes_the_secret_from_settings_without_showing_it():
    from pydantic import SecretStr

    policy = IntakePolicy(dedup_window=timedelta(days=7), customer_key_secret=SecretStr("s3cret"))
    assert "s3cret" not in repr(policy)
    decision = accept_submission(envelope(), None, NOW, policy)
    assert decision.event.data.customer_key == customer_key(decision.event.data.customer.msisdn, "s3cret")


def test_the_complaint_referred_to_and_the_regulator_case_are_passed_on():
    env = envelope(channel="regulator", refers_to="CMP20261101-ABCDEFGHIJKL",
                   regulator={"case_no": "工信部-2026-001", "reply_by": "2026-12-05T17:00:00+08:00"})
    received = accept_submission(env, None, NOW, POLICY).event.data  # type: ignore[union-attr]
    assert received.refers_to == "CMP20261101-ABCDEFGHIJKL"
    assert received.regulator is not None and received.regulator.case_no == "工信部-2026-001"
    assert received.regulator.reply_by == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    plain = accept_submission(envelope(), None, NOW, POLICY).event.data  # type: ignore[union-attr]
    assert plain.refers_to is None and plain.regulator is None
