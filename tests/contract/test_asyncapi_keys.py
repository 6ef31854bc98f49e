"""Every channel of the AsyncAPI document states its own topic's record key, from the catalogue.

A payload carried by two topics under different keys (``ComplaintReceived``: by complaint id on
``received``, by customer key on ``classify.by-customer``) used to get one message, with the key of
whichever topic came first. Consumers generated from the document would then key the re-keying
topic by complaint id, which breaks the co-partitioning the classifier's history depends on.
"""

from __future__ import annotations

import pytest

from complaint_stream import topics
from complaint_stream.schemas.export import asyncapi_document, channel_id, message_id

DOC = asyncapi_document(topics.ALL)


def resolve(ref: str) -> dict:
    node: dict = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("topic", topics.ALL, ids=lambda t: t.name)
def test_every_message_on_a_channel_carries_its_topics_key(topic):
    channel = DOC["channels"][channel_id(topic.name)]
    assert set(channel["messages"]) == {p.__name__ for p in topic.values}
    for payload in topic.values:
        message = resolve(channel["messages"][payload.__name__]["$ref"])
        key = message["bindings"]["kafka"]["key"]
        assert key == {"type": "string", "title": (topic.key_label or topic.key).replace("`", ""),
                       "description": topic.key}
        assert message["name"] == payload.__name__
        assert resolve(message["payload"]["$ref"])["title"] == f"{payload.__name__}Event"


@pytest.mark.parametrize("topic", topics.ALL, ids=lambda t: t.name)
def test_operations_on_a_topic_reach_messages_with_its_key(topic):
    ops = [op for op in DOC["operations"].values() if op["channel"]["$ref"] == f"#/channels/{channel_id(topic.name)}"]
    assert len(ops) == len(topic.producing_workers) + len(topic.consuming_workers)
    for op in ops:
        for ref in op["messages"]:
            message = resolve(resolve(ref["$ref"])["$ref"])  # channel message -> component message
            assert message["bindings"]["kafka"]["key"]["description"] == topic.key


def test_a_payload_on_two_topics_gets_each_topics_key():
    received = resolve(f"#/components/messages/{message_id(topics.RECEIVED.name, topics.RECEIVED.values[0])}")
    rekeyed = resolve(f"#/components/messages/{message_id(topics.CLASSIFY_BY_CUSTOMER.name, topics.RECEIVED.values[0])}")
    assert received["bindings"]["kafka"]["key"]["description"] == "complaint_id"
    assert rekeyed["bindings"]["kafka"]["key"]["description"].startswith("customer_key")
    assert received["payload"] == rekeyed["payload"]  # one schema, two keys


def test_there_is_one_message_per_topic_and_payload_and_no_other():
    expected = {message_id(t.name, p) for t in topics.ALL for p in t.values}
    assert set(DOC["components"]["messages"]) == expected
