"""Messages to customers: every template renders in both languages within SMS length, a broken templates
file is refused with the problem named, quiet hours hold non-urgent messages until the morning, and the
channel, language, amounts and times are the ones the customer should see."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaint_stream.domain.lifecycle.messages import (
    CHINA,
    DEFAULT_RESOLUTION_CODES,
    KNOWN_PARAMETERS,
    LANGUAGES,
    Language,
    QuietHours,
    RenderedMessage,
    TemplateError,
    TemplateFileError,
    Templates,
    format_local,
    load_templates,
    message_channel,
    message_language,
    yuan,
)
from complaint_stream.domain.policy_files import PolicyFileError
from complaint_stream.schemas import Category, Channel, Priority, TicketStatus

COMPLAINT_ID = "CMP20261203-ABCDEFGHJKLM"
PACKAGED = resources.files("complaint_stream.domain.lifecycle") / "templates.json"
#: What one message may be once rendered: one long SMS (70 Chinese characters a segment, two segments).
LIMITS = {"zh": 140, "en": 300}


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates()


def packaged() -> dict[str, Any]:
    return json.loads(PACKAGED.read_text(encoding="utf-8"))


def realistic(templates: Templates, language: Language) -> dict[str, str]:
    """Every known parameter, with values as long as real ones get (the longest category name, a
    merged case's reason quoting another id, a regulator's case number)."""
    promised = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    zh = language == "zh"
    return {
        "complaint_id": COMPLAINT_ID,
        "promised_by": format_local(promised, language),
        "category_name": templates.category_name(Category.SECURITY_FRAUD, language),
        "resolution_text": templates.resolution_text("compensation", language),
        "amount_yuan": yuan(123456),
        "survey_options": "1.满意 2.基本满意 3.不满意" if zh else "1 Satisfied, 2 Fairly satisfied, 3 Dissatisfied",
        "status_text": templates.status_text(TicketStatus.PENDING, language),
        "reason_text": ("已与您的另一投诉（编号CMP20261201-QRSTUVWXYZ23）合并处理" if zh
                        else "it has been merged with your complaint No. CMP20261201-QRSTUVWXYZ23"),
        "regulator_case_no": "GXB-2026-1203-004567",
    }


# -- the packaged file and rendering ---------------------------------------------------------------

def test_the_packaged_file_loads_with_every_known_template_and_name(templates):
    assert set(KNOWN_PARAMETERS) <= templates.template_ids
    assert {templates.category_name(c, "zh") for c in Category} >= {"网络质量", "其他"}
    assert templates.category_name(Category.NETWORK, "en") == "Network quality"
    assert all(templates.status_text(s, lang) for s in TicketStatus for lang in LANGUAGES)
    assert all(templates.resolution_text(code, lang) for code in DEFAULT_RESOLUTION_CODES for lang in LANGUAGES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template_id", sorted(set(KNOWN_PARAMETERS) | set(packaged()["templates"])))
def test_every_template_renders_in_both_languages_within_sms_length(templates, template_id, language):
    message = templates.render(template_id, language, realistic(templates, language))
    assert isinstance(message, RenderedMessage)
    for part in (message.subject, message.text):
        assert part.strip()
        assert "{" not in part and "}" not in part, part
    assert len(message.text) <= LIMITS[language], (len(message.text), message.text)
    assert COMPLAINT_ID in message.text
    if language == "zh":
        assert message.text.startswith("【客户服务】")


def test_the_acknowledgement_names_the_complaint_the_promised_time_and_the_category(templates):
    zh = templates.render("acknowledgement", "zh", realistic(templates, "zh"))
    assert COMPLAINT_ID in zh.text and COMPLAINT_ID in zh.subject
    assert "2026年12月3日 18:00前" in zh.text and "信息安全及骚扰诈骗" in zh.text
    en = templates.render("acknowledgement", "en", realistic(templates, "en"))
    assert COMPLAINT_ID in en.text and "3 Dec 2026 18:00" in en.text and "Security, spam and fraud" in en.text


def test_the_refund_variant_carries_the_amount_and_the_plain_one_does_not(templates):
    params = realistic(templates, "zh") | {"amount_yuan": yuan(1234)}
    assert "金额12.34元" in templates.render("resolution_refund", "zh", params).text
    assert "12.34" not in templates.render("resolution", "zh", params).text
    en = realistic(templates, "en") | {"amount_yuan": "12.34"}
    assert "CNY 12.34" in templates.render("resolution_refund", "en", en).text


def test_the_regulator_acknowledgement_quotes_both_case_numbers(templates):
    text = templates.render("regulator_ack", "zh", realistic(templates, "zh")).text
    assert "GXB-2026-1203-004567" in text and COMPLAINT_ID in text


def test_a_missing_parameter_is_a_clear_error(templates):
    params = realistic(templates, "zh")
    del params["promised_by"]
    with pytest.raises(TemplateError, match=r"'acknowledgement' \(zh\) needs parameter\(s\) promised_by") as caught:
        templates.render("acknowledgement", "zh", params)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(TemplateError, match="amount_yuan, complaint_id, resolution_text; given: none"):
        templates.render("resolution_refund", "en", {})


def test_an_unknown_template_or_language_is_an_error_and_extra_parameters_are_ignored(templates):
    with pytest.raises(TemplateError, match="unknown template 'reminder'"):
        templates.render("reminder", "zh", {})
    with pytest.raises(TemplateError, match="unknown language 'fr'"):
        templates.render("reopened", "fr", {"complaint_id": COMPLAINT_ID})
    message = templates.render("reopened", "en", {"complaint_id": COMPLAINT_ID, "unused": "x"})
    assert COMPLAINT_ID in message.text


def test_a_parameter_with_braces_is_not_read_as_a_placeholder(templates):
    params = realistic(templates, "en") | {"reason_text": "you wrote {complaint_id}"}
    assert "you wrote {complaint_id}" in templates.render("cancelled", "en", params).text


def test_names_of_categories_resolutions_and_statuses(templates):
    assert templates.category_name("billing", "zh") == "资费计费"
    assert templates.resolution_text("refund", "zh") == "已为您办理退费"
    assert templates.resolution_text("goodwill_gesture", "en") == templates.resolution_text("other", "en")
    assert templates.status_text(TicketStatus.IN_PROGRESS, "zh") == "处理中"
    assert templates.status_text("inProgress", "en") == "In progress"
    with pytest.raises(ValueError):
        templates.category_name("netwrok", "zh")


# -- broken files -----------------------------------------------------------------------------------

def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[key]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()


@pytest.mark.parametrize("path, value, key, expected", [
    ("templates.survey.en", _DELETE, "templates.survey.en", "missing; this key is required"),
    ("templates.acknowledgement.zh.text", "您的投诉{complaint_id}已受理，金额{amount}元",
     "templates.acknowledgement.zh.text", "unknown placeholder(s) {amount}; expected its parameters:"),
    ("templates.resolution.en.subject", "Complaint {amount_yuan}", "templates.resolution.en.subject",
     "unknown placeholder(s) {amount_yuan}"),
    ("templates.progress.zh.text", "状态：{}", "templates.progress.zh.text", "is not a plain name"),
    ("templates.progress.zh.text", "状态：{0}", "templates.progress.zh.text", "is not a plain name"),
    ("templates.progress.zh.text", "状态：{status_text.upper}", "templates.progress.zh.text", "is not a plain name"),
    ("templates.progress.zh.text", "状态：{status_text!r}", "templates.progress.zh.text", "conversion or format spec"),
    ("templates.progress.zh.text", "状态：{status_text", "templates.progress.zh.text", "malformed placeholder"),
    ("templates.progress.zh.text", "状态 } 处理中", "templates.progress.zh.text", "malformed placeholder"),
    ("templates.reopened.en.text", "Call us on 400-123-4567.", "templates.reopened.en.text", "contains a phone number"),
    ("templates.progress", _DELETE, "templates.progress", "missing; this template is required"),
    ("templates.reminder", {"zh": {"subject": "提醒", "text": "您的投诉{complaint_id}{foo}"},
                            "en": {"subject": "Reminder", "text": "Complaint {complaint_id}"}},
     "templates.reminder.zh.text", "unknown placeholder(s) {foo}; expected the parameters of the known templates"),
    ("templates.Reminder", {"zh": {"subject": "提醒", "text": "提醒"}, "en": {"subject": "R", "text": "R"}},
     "templates.Reminder (key)", "String should match pattern"),
    ("templates.survey.zh.text", 5, "templates.survey.zh.text", "expected a string, got 5"),
    ("templates.survey.zh.subject", "", "templates.survey.zh.subject", "at least 1 character"),
    ("templates.survey.zh.body", "x", "templates.survey.zh.body", "unknown key; expected one of: subject, text"),
    ("categories.netwrok", {"zh": "网络", "en": "Network"}, "categories.netwrok (key)", "unknown category \"netwrok\""),
    ("categories.device", _DELETE, "categories.device", "missing; every category needs a zh and an en name"),
    ("categories.network.en", _DELETE, "categories.network.en", "missing; this key is required"),
    ("statuses.held", _DELETE, "statuses.held", "missing; every ticket status needs"),
    ("statuses.onHold", {"zh": "挂起", "en": "On hold"}, "statuses.onHold (key)", "unknown ticket status"),
    ("resolution_codes.other", _DELETE, "resolution_codes.other", "missing; every default resolution code"),
    ("resolution_codes", ["refund"], "resolution_codes", "expected an object"),
])
def test_a_broken_templates_file_is_refused_with_the_problem_named(tmp_path, path, value, key, expected):
    data = packaged()
    _set(data, path, value if value is _DELETE else copy.deepcopy(value))
    file = tmp_path / "templates.json"
    file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TemplateFileError) as caught:
        load_templates(file)
    assert isinstance(caught.value, PolicyFileError)
    line = next((p for p in caught.value.problems if p.startswith(f"{file}: {key}: ")), None)
    assert line is not None and expected in line, caught.value.problems
    assert str(caught.value).splitlines() == list(caught.value.problems)


def test_an_operators_own_template_may_use_the_known_parameters(tmp_path):
    data = packaged()
    data["templates"]["reminder"] = {
        "zh": {"subject": "提醒（{complaint_id}）", "text": "【客户服务】您的投诉{complaint_id}正在处理。"},
        "en": {"subject": "Reminder", "text": "Complaint {complaint_id}: {status_text}."},
    }
    file = tmp_path / "templates.json"
    file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    templates = load_templates(str(file))
    message = templates.render("reminder", "en", {"complaint_id": "C-1", "status_text": "On hold"})
    assert message.text == "Complaint C-1: On hold."


def test_every_problem_of_a_file_is_listed_one_line_each(tmp_path):
    data = packaged()
    data["templates"]["survey"]["zh"]["text"] = "{oops}"
    data["templates"]["cancelled"]["en"]["text"] = "{0}"
    del data["categories"]["device"]
    file = tmp_path / "templates.json"
    file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TemplateFileError) as caught:
        load_templates(Path(file))
    keys = sorted(p.split(": ")[1] for p in caught.value.problems)
    assert keys == ["categories.device", "templates.cancelled.en.text", "templates.survey.zh.text"]


def test_a_file_that_is_not_json_or_not_there_is_refused(tmp_path):
    bad = tmp_path / "templates.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(TemplateFileError, match="not valid JSON"):
        load_templates(bad)
    with pytest.raises(TemplateFileError, match="cannot be read"):
        load_templates(tmp_path / "absent.json")


# -- quiet hours ------------------------------------------------------------------------------------

def cst(hour: int, minute: int = 0, second: int = 0, day: int = 3) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=CHINA)


@pytest.mark.parametrize("at, priority, expected", [
    (cst(20, 59, 59), Priority.P3, cst(20, 59, 59)),
    (cst(21, 0, 0), Priority.P3, cst(8, 0, 0, day=4)),
    (cst(23, 30), Priority.P2, cst(8, 0, 0, day=4)),
    (cst(0, 0), Priority.P4, cst(8, 0)),
    (cst(3, 0), Priority.P3, cst(8, 0)),
    (cst(7, 59, 59), Priority.P3, cst(8, 0)),
    (cst(8, 0, 0), Priority.P3, cst(8, 0, 0)),
    (cst(12, 0), Priority.P4, cst(12, 0)),
    (cst(23, 0), Priority.P1, cst(23, 0)),
    (datetime(2026, 12, 3, 13, 0, tzinfo=UTC), Priority.P2, cst(8, 0, 0, day=4)),      # 21:00 CST
    (datetime(2026, 12, 3, 12, 59, 59, tzinfo=UTC), Priority.P2, cst(20, 59, 59)),    # 20:59:59 CST
    (datetime(2026, 12, 3, 19, 0, tzinfo=UTC), Priority.P3, cst(8, 0, 0, day=4)),     # 03:00 CST on the 4th
    (datetime(2026, 12, 4, 0, 0, tzinfo=UTC), Priority.P3, cst(8, 0, 0, day=4)),      # 08:00 CST
    (datetime(2026, 12, 31, 14, 0, tzinfo=UTC), Priority.P3, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),  # year end
])
def test_quiet_hours_edges(at, priority, expected):
    result = QuietHours().send_after(at, priority)
    assert result == expected
    if result != at:
        assert result.tzinfo is UTC


def test_the_morning_is_returned_in_utc():
    assert QuietHours().send_after(cst(22, 0), Priority.P3) == datetime(2026, 12, 4, 0, 0, tzinfo=UTC)


def test_a_quiet_window_that_does_not_wrap_midnight():
    lunch = QuietHours(start=time(12, 0), end=time(14, 0))
    assert lunch.send_after(cst(11, 59, 59), Priority.P3) == cst(11, 59, 59)
    assert lunch.send_after(cst(12, 0), Priority.P3) == cst(14, 0)
    assert lunch.send_after(cst(13, 59), Priority.P2) == cst(14, 0)
    assert lunch.send_after(cst(14, 0), Priority.P3) == cst(14, 0)
    assert lunch.send_after(cst(22, 0), Priority.P3) == cst(22, 0)
    assert lunch.send_after(cst(13, 0), Priority.P1) == cst(13, 0)


def test_other_windows_zones_and_exemptions():
    assert not QuietHours(start=time(8, 0), end=time(8, 0)).is_quiet(cst(3, 0))
    utc_night = QuietHours(tz=UTC, exempt=frozenset({Priority.P1, Priority.P2}))
    assert utc_night.send_after(datetime(2026, 12, 3, 22, 0, tzinfo=UTC), Priority.P2) == datetime(
        2026, 12, 3, 22, 0, tzinfo=UTC)
    assert utc_night.send_after(datetime(2026, 12, 3, 22, 0, tzinfo=UTC), Priority.P3) == datetime(
        2026, 12, 4, 8, 0, tzinfo=UTC)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        QuietHours().send_after(datetime(2026, 12, 3, 22, 0), Priority.P3)
    with pytest.raises(ValueError, match="timezone-aware"):
        format_local(datetime(2026, 12, 3, 22, 0), "zh")
    with pytest.raises(ValueError, match="without a timezone"):
        QuietHours(start=time(21, 0, tzinfo=UTC))


@given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(
        [UTC, CHINA, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])),
    priority=st.sampled_from(list(Priority)),
)
def test_send_after_is_never_early_never_more_than_eleven_hours_late_and_never_quiet(at, priority):
    quiet = QuietHours()
    result = quiet.send_after(at, priority)
    assert result.tzinfo is not None
    assert at <= result <= at + timedelta(hours=11)
    if priority in quiet.exempt:
        assert result == at
    else:
        local = result.astimezone(CHINA).time()
        assert not (local >= time(21, 0) or local < time(8, 0)), (at, result)
        assert not quiet.is_quiet(result)
        if quiet.is_quiet(at):
            assert local == time(8, 0)
        else:
            assert result == at


# -- amounts, times, channel, language --------------------------------------------------------------

@pytest.mark.parametrize("fen, expected", [
    (0, "0.00"), (5, "0.05"), (10, "0.10"), (100, "1.00"), (1234, "12.34"), (123456789, "1234567.89"),
    (-150, "-1.50"), (10**20 + 1, "1000000000000000000.01"),
])
def test_yuan(fen, expected):
    assert yuan(fen) == expected


@pytest.mark.parametrize("value", [12.34, "1234", True])
def test_yuan_takes_integer_fen_only(value):
    with pytest.raises(TypeError):
        yuan(value)


@given(st.integers(min_value=0, max_value=10**15))
def test_yuan_round_trips(fen):
    whole, cents = yuan(fen).split(".")
    assert len(cents) == 2 and int(whole) * 100 + int(cents) == fen


@pytest.mark.parametrize("dt, zh, en", [
    (datetime(2026, 12, 3, 10, 0, tzinfo=UTC), "2026年12月3日 18:00", "3 Dec 2026 18:00"),
    (datetime(2026, 12, 31, 16, 5, tzinfo=UTC), "2027年1月1日 00:05", "1 Jan 2027 00:05"),
    (cst(9, 7), "2026年12月3日 09:07", "3 Dec 2026 09:07"),
])
def test_format_local(dt, zh, en):
    assert format_local(dt, "zh") == zh
    assert format_local(dt, "en") == en


@pytest.mark.parametrize("channel, notify_by, has_email, expected", [
    (Channel.HOTLINE, None, False, "sms"),
    (Channel.HOTLINE, "wechat", False, "wechat"),
    (Channel.HOTLINE, "email", True, "email"),
    (Channel.HOTLINE, "email", False, "sms"),           # no address: the preference is not usable
    (Channel.APP, "email", False, "app"),               # ... and the complaint's channel decides
    (Channel.APP, None, True, "app"),
    (Channel.WECHAT, None, False, "wechat"),
    (Channel.EMAIL, None, True, "email"),
    (Channel.EMAIL, None, False, "sms"),
    (Channel.EMAIL, "sms", True, "sms"),
    (Channel.WEB, None, True, "sms"),
    (Channel.STORE, None, False, "sms"),
    (Channel.SMS, "app", False, "app"),
    (Channel.REGULATOR, None, True, "sms"),
    (Channel.WECHAT, "fax", False, "wechat"),           # an unknown preference is ignored
])
def test_message_channel(channel, notify_by, has_email, expected):
    assert message_channel(channel, notify_by, has_email) == expected


@pytest.mark.parametrize("notify_language, complaint_language, expected", [
    ("en", "zh", "en"),
    ("zh", "en", "zh"),
    (None, "en", "en"),
    (None, "zh", "zh"),
    (None, "mixed", "zh"),
    (None, None, "zh"),
])
def test_message_language(notify_language, complaint_language, expected):
    assert message_language(notify_language, complaint_language) == expected
