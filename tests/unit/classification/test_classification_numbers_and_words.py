"""Hotline numbers count only as hotline mentions, and short terms do not cut through words.

A risk flag raises a complaint to P1 or P2, so a flag from digits inside an
amount or an order number, or from two characters borrowed from two
neighbouring words (不管|局面 read as 管局), sends ordinary complaints to the
top of the queue.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from complaint_stream.domain.classification import Classifier, load_rules
from complaint_stream.domain.priority import decide_priority, load_priority_rules

RULES = load_rules()
CLASSIFIER = Classifier(RULES)
PRIORITY = load_priority_rules()
#: Every risk term made of digits: the hotlines (12300, 12315, 12345).
HOTLINES = sorted(t for t, e in RULES.entries.items() if e.risk and t.isascii() and t.isdigit())
NUMBERS = RULES.terms.numbers
# Text around a number that carries no risk term of its own.
NEUTRAL = ["", "我的", "本月", "账单上写着", "系统显示", "my bill says ", "说是", "，", " "]


def flags(text: str) -> tuple[str, ...]:
    return CLASSIFIER.classify(text, "app").risk_flags


def priority(text: str, category: str = "billing") -> str:
    return decide_priority(PRIORITY, category=category, channel="app", risk_flags=flags(text), is_repeat=False,
                           tier="standard").priority


def test_the_rules_declare_hotlines_units_and_labels():
    assert {"12300", "12315", "12345"} <= set(HOTLINES)
    assert NUMBERS is not None and "元" in NUMBERS.units and "订单号" in NUMBERS.labels


@pytest.mark.parametrize("text", [
    "扣了12345元",          # an amount
    "消费12300元",          # an amount
    "订单号12315",          # an order number
    "订单号：12315，还没发货",
    "充值12300 yuan没到账",
    "余额 12345",
    "流量用了12315.5mb",     # a decimal
    "话费3.12345元",
    "我的号码13812345678",   # digits inside a longer number
    "order no. 12315 never arrived",
    "不管局面怎样，你们先把网修好",  # 不管 + 局面, not 管局
    "我要取消协议",           # 取消 + 协议, not 消协
    "广告到处都是",           # 广告 + 到处, not 告到
    "马上访问你们网站",        # 马上 + 访问, not 上访
])
def test_numbers_and_borrowed_characters_raise_no_flag(text):
    assert flags(text) == ()
    assert priority(text) == "P3"


@pytest.mark.parametrize("text, flag", [
    ("手机没信号，再不修我就打12300", "regulator"),
    ("我要打12315投诉你们", "consumer_association"),
    ("拨打12315，12300都没人管", "consumer_association"),
    ("拨打12315，12300都没人管", "regulator"),
    ("已经打了0531-12345市长热线", "regulator"),
    ("12345转办：用户称宽带断网三天", "regulator"),
    ("I will call 12315 tomorrow.", "consumer_association"),
    ("我已经找管局投诉了", "regulator"),
    ("不管怎样我都要去管局", "regulator"),
    ("向市场监管局反映", "consumer_association"),
    ("已经向消协投诉", "consumer_association"),
    ("我要告你们", "legal"),
])
def test_real_mentions_still_raise_their_flag(text, flag):
    assert flag in flags(text)


digits = st.text(alphabet="0123456789", max_size=6)


@settings(max_examples=300, deadline=None)
@given(hotline=st.sampled_from(HOTLINES), before=digits, after=digits,
       left=st.sampled_from(NEUTRAL), right=st.sampled_from(NEUTRAL))
@example(hotline="12345", before="", after="6", left="扣了", right="")
@example(hotline="12315", before="1", after="", left="", right="")
def test_a_hotline_inside_a_longer_digit_run_never_raises_a_flag(hotline, before, after, left, right):
    if not before and not after:
        before = "9"
    assert flags(f"{left}{before}{hotline}{after}{right}") == ()


@settings(max_examples=300, deadline=None)
@given(hotline=st.sampled_from(HOTLINES), unit=st.sampled_from(sorted(NUMBERS.units)),
       space=st.sampled_from(["", " "]), left=st.sampled_from(NEUTRAL))
def test_a_hotline_followed_by_a_unit_is_an_amount(hotline, unit, space, left):
    assert flags(f"{left}{hotline}{space}{unit}") == ()


@settings(max_examples=300, deadline=None)
@given(hotline=st.sampled_from(HOTLINES), label=st.sampled_from(sorted(NUMBERS.labels)),
       between=st.text(alphabet=NUMBERS.separators, max_size=3), right=st.sampled_from(NEUTRAL))
def test_a_hotline_after_a_label_is_an_identifier_or_an_amount(hotline, label, between, right):
    # An ASCII label needs a separator before the digits (no12315 is one word, so no match anyway).
    if label[-1].isascii() and label[-1].isalnum() and not between:
        between = " "
    assert flags(f"{label}{between}{hotline}{right}") == ()


@settings(max_examples=200, deadline=None)
@given(hotline=st.sampled_from(HOTLINES), left=st.sampled_from(["打", "拨打", "call ", "投诉到", "找", "去"]),
       right=st.sampled_from(["", "投诉", "热线", "，", "。", " hotline", "了"]))
def test_a_hotline_named_on_its_own_raises_its_flag(hotline, left, right):
    assert flags(f"我要{left}{hotline}{right}") != ()


@pytest.mark.parametrize("word", RULES.terms.words)
def test_a_declared_word_blocks_every_term_that_cuts_through_it(word):
    # For every term that overlaps the word's start or end without containing it, the
    # joined text matches neither the term at the cut nor a flag from it.
    for term in RULES.lookup:
        for k in range(1, min(len(word), len(term))):
            if word[-k:] == term[:k]:  # the term starts inside the word
                text, cut = word + term[k:], len(word) - k
            elif term[-k:] == word[:k]:  # the term ends inside the word
                text, cut = term + word[k:], 0
            else:
                continue
            found = [(t, s) for t, s, _ in RULES.terms.find(text)]
            assert (term, cut) not in found, (word, term, text)
