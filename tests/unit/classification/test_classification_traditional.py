"""Complaints written in traditional Chinese (繁體) are classified like their simplified form.

The rules and the model are written in simplified Chinese; without conversion a
traditional text matches almost nothing (律師 is not 律师, 訊號 is not 信号).
Classification reads the text converted by OpenCC; the complaint record keeps
what the customer wrote.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import opencc
import pytest

from complaint_stream.bootstrap import build_classifier
from complaint_stream.channel_api import validate_submission
from complaint_stream.domain.classification import Classifier
from complaint_stream.domain.classification.text import normalise, normalise_form, to_simplified
from complaint_stream.domain.stage import run_in_event_time
from complaint_stream.schemas import ComplaintClassified, ComplaintReceived, wrap
from complaint_stream.settings import load_settings
from complaint_stream.workers import classify, intake
from tests.support.factories import submission

ROOT = Path(__file__).resolve().parents[3]
SETS = [ROOT / "data" / "eval" / "complaints_dev.jsonl", ROOT / "tests" / "data" / "complaints_blind.jsonl"]


def _rows() -> list[dict]:
    return [json.loads(line) for path in SETS for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ROWS = _rows()
CHINESE = [r for r in ROWS if any("\u4e00" <= ch <= "\u9fff" for ch in r["text"])]


@pytest.fixture(scope="module")
def deployed() -> Classifier:
    return build_classifier(load_settings(environ={}))[0]


@pytest.mark.parametrize("text, category, flags", [
    ("我要找律師起訴你們", None, ("legal",)),
    ("手機訊號很差，電話老是斷線", "network", ()),
    ("寬頻三天上不了網，光貓一直亮紅燈", "broadband", ()),
    ("帳單上多扣了我50元話費，要求退還", "billing", ()),
    ("再不處理我就向工信部申訴", None, ("regulator",)),
    ("我要打給消費者協會，還要找記者曝光", None, ("consumer_association", "media")),
])
def test_traditional_text_gets_the_category_and_flags_of_its_simplified_form(deployed, text, category, flags):
    result = deployed.classify(text, "app")
    assert set(flags) <= set(result.risk_flags)
    if category is not None:
        assert result.category == category
    assert "text: traditional Chinese read as simplified (OpenCC tw2sp)" in result.explanation


@pytest.mark.parametrize("config", ["s2t", "s2tw", "s2hk"])
def test_every_labelled_complaint_rendered_in_traditional_is_classified_as_the_original(deployed, config):
    convert = opencc.OpenCC(config).convert
    for row in CHINESE:
        original = deployed.classify(row["text"], row["channel"])
        traditional = deployed.classify(convert(row["text"]), row["channel"])
        assert (traditional.category, traditional.risk_flags) == (original.category, original.risk_flags), row["text"]


def test_simplified_text_is_never_converted():
    # Mainland text is read exactly as written (the phrase step would also rewrite words both
    # scripts spell alike, 影片 -> 视频): to_simplified returns the very same string.
    for row in ROWS:
        form = normalise_form(row["text"])
        assert to_simplified(form) is form, row["text"]
    assert to_simplified("这部影片在手机上放不了") == "这部影片在手机上放不了"
    assert to_simplified("no chinese at all 😡") == "no chinese at all 😡"


def test_conversion_uses_mainland_words():
    assert normalise("手機訊號很差") == "手机信号很差"
    assert normalise("簡訊收不到，網路很慢") == "短信收不到,网络很慢"
    assert normalise("寬頻") == "宽带"


def test_the_received_record_keeps_the_text_as_written(base_settings):
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    text = "我要找律師起訴你們，手機訊號很差"
    sub = validate_submission(submission(1, now, text=text, channel="app"), now=now)
    received = [o.event for o in run_in_event_time(intake.binding(base_settings).stage,
                                                    [wrap(sub, source="/t", subject=sub.dedup_key, time=now)])]
    assert isinstance(received[0].data, ComplaintReceived) and received[0].data.text == text
    classified = [o.event.data for o in run_in_event_time(classify.binding(base_settings).stage, received)]
    assert isinstance(classified[0], ComplaintClassified)
    assert classified[0].risk_flags[0].value == "legal" and classified[0].category.value == "network"
    assert classified[0].priority.value == "P1"
    assert received[0].data.text == text  # classifying did not change the record
