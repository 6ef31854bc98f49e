"""Negated terms must not count for their category."""

import pytest

from complaint_stream.domain.classification import Classifier, load_rules


@pytest.fixture(scope="module")
def classifier():
    return Classifier(load_rules())


@pytest.mark.parametrize("text", [
    "不是信号问题，是你们乱扣我话费，每月多扣十几块",
    "信号没问题，就是这个月账单多收了50元",
    "It's not a signal problem, I was charged twice for the same plan.",
    "The signal is fine but my bill doubled this month.",
])
def test_a_negated_network_term_does_not_win_over_the_real_complaint(classifier, text):
    result = classifier.classify(text, "hotline")
    assert result.category == "billing"
    assert any(reason.startswith("negated:") for reason in result.explanation)


def test_a_negated_term_alone_contributes_nothing(classifier):
    assert classifier.classify("信号没问题", "app").category == "other"
    assert classifier.classify("not a signal problem", "app").category == "other"


def test_no_signal_is_not_a_negation(classifier):
    assert classifier.classify("家里手机没有信号", "app").category == "network"
    assert classifier.classify("No signal at all in my flat.", "app").category == "network"


def test_a_question_is_not_a_negation(classifier):
    result = classifier.classify("是不是基站坏了？手机一直没信号", "app")
    assert result.category == "network"


def test_a_negation_reaches_only_the_nearest_term(classifier):
    # 还行 clears 态度, not the broadband fault earlier in the clause.
    result = classifier.classify("师傅修宽带态度还行，但修完第二天又断网了", "app")
    assert result.category == "broadband"


def test_not_my_doing_is_not_a_negation_of_the_service(classifier):
    # 不是我开的 says the customer did not order it; the ringback tone still counts.
    assert classifier.classify("彩铃不是我开的，每月扣5块", "app").category == "vas_subscription"


def test_replacing_a_part_without_effect_clears_that_part(classifier):
    result = classifier.classify("换了网线也一样，宽带还是老掉线", "app")
    assert result.category == "broadband"
    assert any('negated: "网线"' in reason for reason in result.explanation)
