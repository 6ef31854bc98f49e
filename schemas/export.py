"""Export JSON Schemas of every event and an AsyncAPI 3.0 document of every topic.

The AsyncAPI channels and operations come from the topic catalogue: one
channel per topic and, per channel, one ``send`` operation for each worker
that writes it and one ``receive`` operation for each worker that reads it.
A message is declared per topic and payload (``<channel id>.<Payload>``):
the Kafka binding of a message says what its record key is, and one payload
travels under different keys on different topics (``ComplaintReceived`` by
complaint id on ``received``, by customer key on ``classify.by-customer``).
Parties outside the pipeline are listed on the channel (``x-written-by``,
``x-read-by``). This module takes the catalogue as an argument so that
schemas never import topics (topics depend on schemas, not the reverse).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from complaint_stream.schemas.base import Payload
from complaint_stream.schemas.codec import PAYLOADS
from complaint_stream.schemas.envelope import CONTENT_TYPE, envelope_type

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"


class TopicLike(Protocol):
    """What the export reads from a ``topics.TopicSpec``."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def key_label(self) -> str: ...
    @property
    def values(self) -> Sequence[type[Payload]]: ...
    @property
    def partitions(self) -> int: ...
    @property
    def replication_factor(self) -> int: ...
    @property
    def retention_ms(self) -> int: ...
    @property
    def cleanup_policy(self) -> str: ...
    @property
    def producers(self) -> Sequence[str]: ...
    @property
    def consumers(self) -> Sequence[str]: ...
    @property
    def producing_workers(self) -> Sequence[str]: ...
    @property
    def consuming_workers(self) -> Sequence[str]: ...


def channel_id(topic_name: str) -> str:
    """A topic name without the ``complaints.`` prefix and the version suffix, dots as dashes."""
    return topic_name.removeprefix("complaints.").removesuffix(".v1").replace(".", "-")


def message_id(topic_name: str, payload: type[Payload]) -> str:
    """The component name of one payload on one topic: ``classify-by-customer.ComplaintReceived``."""
    return f"{channel_id(topic_name)}.{payload.__name__}"


def _key_schema(topic: TopicLike) -> dict[str, Any]:
    """The record key of ``topic`` as the catalogue declares it."""
    # The label is written for the README's table (markdown): the title takes it without the backticks.
    return {"type": "string", "title": (topic.key_label or topic.key).replace("`", ""), "description": topic.key}


def operation_id(worker: str, action: str, topic_name: str) -> str:
    """``intake-receive-intake-submissions``: who, what, where."""
    return f"{worker}-{action}-{channel_id(topic_name)}"


def _party(party: str, workers: Sequence[str]) -> dict[str, Any]:
    kind = "worker" if party in workers else "external"
    out: dict[str, Any] = {"name": str(party), "kind": kind}
    if kind == "worker" and getattr(party, "planned", False):
        out["planned"] = True
    return out


def _operations(topic: TopicLike) -> dict[str, Any]:
    cid = channel_id(topic.name)
    ops: dict[str, Any] = {}
    for action, workers in (("send", topic.producing_workers), ("receive", topic.consuming_workers)):
        for worker in workers:
            planned = bool(getattr(worker, "planned", False))
            verb = "writes to" if action == "send" else "reads from"
            ops[operation_id(str(worker), action, topic.name)] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "title": f"{worker} {verb} {topic.name}",
                "summary": f"The {worker} worker{' (planned)' if planned else ''} {verb} {topic.name}.",
                "tags": [{"name": f"worker:{worker}"}, *([{"name": "planned"}] if planned else [])],
                "messages": [{"$ref": f"#/channels/{cid}/messages/{p.__name__}"} for p in topic.values],
                "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION}},
            }
    return ops


def event_json_schema(payload: type[Payload]) -> dict[str, Any]:
    """The stand-alone JSON Schema (2020-12) of one event: the envelope around the payload."""
    schema = envelope_type(payload).model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = payload.__name__
    schema.setdefault("properties", {}).setdefault("type", {})["const"] = payload.event_type
    return schema


def _component_schemas(payloads: Iterable[type[Payload]]) -> dict[str, Any]:
    """All models as AsyncAPI component schemas, references rewritten to #/components/schemas."""
    out: dict[str, Any] = {}
    template = "#/components/schemas/{model}"
    for payload in payloads:
        env = envelope_type(payload)
        schema = env.model_json_schema(ref_template=template, mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            out[name] = sub
        schema["title"] = f"{payload.__name__}Event"
        schema["properties"]["type"] = {"type": "string", "const": payload.event_type}
        out[f"{payload.__name__}Event"] = schema
    return out


def asyncapi_document(topics: Iterable[TopicLike], bootstrap: str = "127.0.0.1:19092",
                      version: str = "0.1.0") -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic (messages, key, schema, Kafka bindings) and the workers' operations."""
    specs = list(topics)
    payloads = list(dict.fromkeys(p for t in specs for p in t.values))
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in specs:
        cid = channel_id(topic.name)
        written = ", ".join(str(p) for p in topic.producers) or "nobody yet"
        read = ", ".join(str(p) for p in topic.consumers) or "nobody yet"
        channels[cid] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Key: {topic.key}. Written by: {written}. Read by: {read}.",
            "messages": {
                p.__name__: {"$ref": f"#/components/messages/{message_id(topic.name, p)}"} for p in topic.values
            },
            "bindings": {"kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "replicas": topic.replication_factor,
                "topicConfiguration": {
                    "cleanup.policy": topic.cleanup_policy.split(","),
                    "retention.ms": topic.retention_ms,
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }},
            "x-written-by": [_party(p, topic.producing_workers) for p in topic.producers],
            "x-read-by": [_party(p, topic.consuming_workers) for p in topic.consumers],
        }
        operations.update(_operations(topic))
        for p in topic.values:
            messages[message_id(topic.name, p)] = {
                "name": p.__name__,
                "title": f"{p.__name__} on {topic.name}",
                "summary": (p.__doc__ or "").strip().splitlines()[0],
                "contentType": CONTENT_TYPE.split(";")[0],
                "payload": {"$ref": f"#/components/schemas/{p.__name__}Event"},
                "bindings": {"kafka": {"key": _key_schema(topic), "bindingVersion": KAFKA_BINDING_VERSION}},
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Complaint Stream",
            "version": version,
            "description": "Topics and events of the Complaint Stream pipeline. Every record is a CloudEvents 1.0"
                           " structured-mode JSON envelope; `subject` is the complaint id.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": bootstrap, "protocol": "kafka", "description": "Local single-node broker."}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _component_schemas(payloads)},
    }


def export(directory: Path, topics: Iterable[TopicLike]) -> list[Path]:
    """Write ``<Event>.schema.json`` per event and ``asyncapi.json``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for payload in PAYLOADS:
        path = directory / f"{payload.__name__}.schema.json"
        path.write_text(json.dumps(event_json_schema(payload), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_text(json.dumps(asyncapi_document(topics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    return written
