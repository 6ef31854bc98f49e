"""Risk signals: regulator, consumer association, media, legal; direct and indirect."""

import pytest

from complaint_stream.domain.classification import RISK_FLAGS, Classifier, detect_risk, load_rules


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.mark.parametrize("text, flag", [
    ("已向工信部申诉", "regulator"),
    ("再不处理我就去工信部告你们", "regulator"),
    ("我会向通信管理局反映", "regulator"),
    ("打12300投诉你们", "regulator"),
    ("明天就去管局", "regulator"),
    ("I will report you to the ministry.", "regulator"),
    ("I'll file a complaint with MIIT.", "regulator"),
    ("再不退钱我就打12315", "consumer_association"),
    ("我已经向消协反映了", "consumer_association"),
    ("去消费者协会投诉", "consumer_association"),
    ("I'm taking this to the consumer association.", "consumer_association"),
    ("你们等着，我要找媒体曝光", "media"),
    ("我已经联系了记者", "media"),
    ("我会把这件事发到网上让大家都看看", "media"),
    ("I'll contact a journalist about this.", "media"),
    ("If this isn't fixed I'm going to the press.", "media"),
    ("I'm taking this to the papers.", "media"),
    ("我要找律师", "legal"),
    ("再拖我就去法院起诉你们", "legal"),
    ("See you in court.", "legal"),
    ("My lawyer will be in touch.", "legal"),
    ("I am considering legal action.", "legal"),
])
def test_risk_phrasing_raises_the_matching_flag(rules, text, flag):
    flags, reasons = detect_risk(text, "hotline", rules)
    assert flag in flags
    assert reasons


def test_the_regulator_channel_always_raises_the_regulator_flag(rules):
    flags, reasons = detect_risk("用户反映宽带经常断网", "regulator", rules)
    assert flags == ("regulator",)
    assert "channel" in reasons[0]


@pytest.mark.parametrize("text", [
    "手机上网好卡",
    "发个朋友圈都要转半天",
    "Police report filed after my SIM was swapped.",
    "I subscribed to the news SMS by mistake, please cancel it.",
    "Press 0 for an agent never works.",
    "投诉了三次都没人处理",
])
def test_ordinary_complaints_raise_no_flag(rules, text):
    assert detect_risk(text, "app", rules) == ((), ())


def test_flags_are_an_alphabetically_sorted_subset_of_the_risk_flags(rules):
    flags, _ = detect_risk("我要找律师，还要找记者，再去工信部和12315", "hotline", rules)
    assert flags == tuple(sorted(RISK_FLAGS))


def test_classification_carries_the_flags_and_risk_property(rules):
    result = Classifier(rules).classify("宽带断了一周了，再不修我就找媒体曝光", "wechat")
    assert result.category == "broadband"
    assert result.risk_flags == ("media",)
    assert result.risk is True
    assert Classifier(rules).classify("宽带断了一周了", "wechat").risk is False
