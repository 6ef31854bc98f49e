"""``complaints classify`` decides what the classify stage decides.

Both call ``triage.assess``: the same cleaning of the text (what intake does to a
submission), the same classifier, the same ranking. The CLI's own options are
read strictly: ``"repeat": "false"`` is refused, not taken as true.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime

import pytest

from complaint_stream.channel_api import validate_submission
from complaint_stream.cli.classifier_cmds import classify_lines
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.schemas import ComplaintClassified, wrap
from complaint_stream.workers import classify, intake
from tests.support.factories import submission

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

TEXTS = [
    "宽\u200b带断网三天了，光猫亮红灯",            # a zero-width space inside 宽带
    "手机\u00a0\u00a0信号很差\r\n经常掉线",         # odd blanks and a CRLF
    "本月话费\x07多扣了50元，要求退还",              # a control character
    "我要找律師起訴你們",                          # traditional Chinese
    "扣了12345元，订单号12315",                    # numbers that are not hotlines
    "不是信号问题，是你们乱扣话费",                  # a negation
    "再不修我就打12300",
    "Roaming charges of RMB 640 on my bill, I will go to the consumer association.",
]


def cli(settings, lines: list[dict]) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = classify_lines([json.dumps(line, ensure_ascii=False) for line in lines], out, settings)
    return code, [json.loads(row) for row in out.getvalue().splitlines()], err.getvalue()


@pytest.fixture(scope="module")
def stages(base_settings):
    """The intake and classify stages as the workers build them."""
    return intake.binding(base_settings).stage, classify.binding(base_settings).stage


def staged(stages, text: str, channel: str, tier: str) -> ComplaintClassified:
    intake_stage, classify_stage = stages
    sub = validate_submission(submission(1, NOW, text=text, channel=channel,
                                         customer={"msisdn": "13812345678", "tier": tier}), now=NOW)
    received = [o.event for o in run_in_event_time(intake_stage, [wrap(sub, source="/t", subject=sub.dedup_key,
                                                                       time=NOW)])]
    (out,) = run_in_event_time(classify_stage, received, state={})
    data = out.event.data
    assert isinstance(data, ComplaintClassified)
    return data


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("channel, tier", [("app", "standard"), ("hotline", "diamond")])
def test_the_cli_and_the_classify_stage_decide_alike(base_settings, stages, text, channel, tier):
    code, (row,), _ = cli(base_settings, [{"text": text, "channel": channel, "customer_tier": tier}])
    event = staged(stages, text, channel, tier)
    assert code == 0
    assert row["category"] == event.category.value
    assert row["confidence"] == event.confidence
    assert row["risk_flags"] == [f.value for f in event.risk_flags]
    assert row["priority"] == event.priority.value
    assert row["needs_review"] == event.needs_review
    assert row["explanation"] == list(event.explanation)
    assert row["priority_reasons"] == list(event.priority_reasons)


def test_the_cli_cleans_the_text_as_intake_does(base_settings):
    _, (row,), _ = cli(base_settings, [{"text": "宽\u200b带断网三天了", "channel": "app"}])
    assert row["category"] == "broadband"


def test_repeat_must_be_a_json_boolean(base_settings):
    text = "手机信号很差，经常掉线"
    code, rows, err = cli(base_settings, [
        {"text": text, "repeat": False},
        {"text": text, "repeat": True},
        {"text": text, "repeat": "false"},
        {"text": text, "repeat": 1},
    ])
    assert code == 1
    assert [r["priority"] for r in rows] == ["P3", "P2"]  # network baseline P3, one step up for a repeat
    assert "repeat complaint +1 -> P2" in rows[1]["priority_reasons"]
    assert 'line 3: repeat must be true or false (a JSON boolean); got "false"' in err
    assert "line 4: repeat must be true or false (a JSON boolean); got 1" in err


def test_customer_tier_must_be_a_tier_of_the_schema(base_settings):
    code, rows, err = cli(base_settings, [
        {"text": "手机信号很差", "customer_tier": "diamond"},
        {"text": "手机信号很差", "customer_tier": "golden"},
        {"text": "手机信号很差", "customer_tier": True},
    ])
    assert code == 1 and [r["priority"] for r in rows] == ["P2"]
    assert 'line 2: customer_tier must be one of standard, silver, gold, platinum, diamond; got "golden"' in err
    assert "line 3: customer_tier must be one of" in err


def test_a_text_of_control_characters_only_is_refused_like_intake_refuses_it(base_settings):
    code, rows, err = cli(base_settings, [{"text": "\x00\x07\u200b"}])
    assert code == 1 and rows == [] and "line 1: text is empty" in err
