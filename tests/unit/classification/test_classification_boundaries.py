"""Each taxonomy boundary, in Chinese and in English (texts written for the tests)."""

import pytest

from complaint_stream.domain.classification import Classifier, load_rules


@pytest.fixture(scope="module")
def classifier():
    return Classifier(load_rules())


def category(classifier, text, channel="hotline"):
    return classifier.classify(text, channel).category


@pytest.mark.parametrize("text", [
    "每个月莫名其妙多出10元的视频彩铃费用，谁给我开的？",
    "话费里扣了三个月的音乐会员费，我从来没订过",
    "There's a 'game zone' membership charging me 15 yuan a month that I never subscribed to.",
])
def test_a_charge_for_an_unordered_value_added_service_is_vas_not_billing(classifier, text):
    assert category(classifier, text) == "vas_subscription"


@pytest.mark.parametrize("text", [
    "这个月话费怎么多了60块？我什么都没用，给我查清楚",
    "Why was I charged a data overage fee twice this month?",
])
def test_an_unexplained_charge_with_no_service_named_is_billing(classifier, text):
    assert category(classifier, text) == "billing"


@pytest.mark.parametrize("text", [
    "家里宽带晚上一到8点就卡，打游戏延迟几百",
    "光猫灯都亮着，就是上网特别慢",
    "Our home broadband is painfully slow every evening.",
])
def test_a_slow_home_connection_is_broadband(classifier, text):
    assert category(classifier, text) == "broadband"


@pytest.mark.parametrize("text", [
    "手机4G网速太慢了，刷个网页要一分钟",
    "Mobile data has been extremely slow near the station for a week.",
])
def test_slow_mobile_data_is_network(classifier, text):
    assert category(classifier, text) == "network"


@pytest.mark.parametrize("text", [
    "你们给装的路由器老是自己重启，一天死机好几次",
    "The router you leased me overheats and reboots every hour.",
])
def test_a_faulty_router_supplied_by_the_operator_is_device(classifier, text):
    assert category(classifier, text) == "device"


@pytest.mark.parametrize("text", [
    "路由器没问题，光纤线路一直断，师傅说是楼道的分光箱坏了",
    "The router works fine, but the fibre line keeps going down.",
])
def test_a_working_router_on_a_failing_line_is_broadband(classifier, text):
    assert category(classifier, text) == "broadband"


@pytest.mark.parametrize("text", [
    "宽带不用了想拆机，营业厅说办不了",
    "想销户，客服让我回归属地办理",
    "I want to cancel my second line but the store won't process it.",
])
def test_difficulty_cancelling_a_plan_or_line_is_business_handling(classifier, text):
    assert category(classifier, text) == "business_handling"


@pytest.mark.parametrize("text", [
    "发短信退订了好几次，下个月照样扣费",
    "I tried to unsubscribe from the ringback tone three times and it is still active.",
])
def test_difficulty_cancelling_a_value_added_service_is_vas(classifier, text):
    assert category(classifier, text) == "vas_subscription"


@pytest.mark.parametrize("text", [
    "我要携号转网，你们说我欠费不让转，我明明交清了",
    "My port-out request was refused because of an unpaid bill.",
])
def test_porting_blocked_for_an_unpaid_bill_stays_number_portability(classifier, text):
    assert category(classifier, text) == "number_portability"


@pytest.mark.parametrize("text", [
    "每天都收到贷款和赌博的骚扰短信，都是陌生号码",
    "I get spam calls about loans every day from unknown numbers.",
])
def test_third_party_spam_is_security_fraud(classifier, text):
    assert category(classifier, text) == "security_fraud"


@pytest.mark.parametrize("text", [
    "10085天天给我打电话推销升级套餐，我已经拒绝很多次了",
    "I keep getting marketing calls from 10085 about upgrading my plan.",
])
def test_unwanted_marketing_from_the_operators_own_numbers_is_marketing(classifier, text):
    assert category(classifier, text) == "marketing"


@pytest.mark.parametrize("text", [
    "营业厅排队两个小时，工作人员态度很差",
    "The hotline agent was rude and hung up on me.",
])
def test_rude_or_slow_staff_alone_is_service_quality(classifier, text):
    assert category(classifier, text) == "service_quality"


@pytest.mark.parametrize("text, expected", [
    ("营业员态度很差，携号转网拖了一个月还没办好", "number_portability"),
    ("客服态度也不好，关键是这个月又乱扣了我80元话费", "billing"),
    ("The agent was rude, but the real problem is my broadband has been down for three days.", "broadband"),
])
def test_staff_attitude_gives_way_to_a_stronger_underlying_issue(classifier, text, expected):
    assert category(classifier, text) == expected


@pytest.mark.parametrize("text", [
    "营业员说办这个套餐送200元话费，结果一分都没到账",
    "The ad said free 5G upgrade but now I'm paying 30 more every month.",
])
def test_a_promise_that_was_not_kept_is_marketing(classifier, text):
    assert category(classifier, text) == "marketing"


def test_a_text_with_no_known_terms_falls_to_other_with_low_confidence(classifier):
    result = classifier.classify("今天天气不错", "app")
    assert result.category == "other"
    assert result.confidence < 0.3
    assert any("no rule matched" in reason for reason in result.explanation)
