"""Export JSON Schemas of every event and an AsyncAPI 3.0 document of every topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from complaint_stream.schemas.base import Payload
from complaint_stream.schemas.codec import PAYLOADS
from complaint_stream.schemas.envelope import CONTENT_TYPE, envelope_type

ASYNCAPI_VERSION = "3.0.0"


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


def asyncapi_document(topics: Iterable[Any], bootstrap: str = "127.0.0.1:19092",
                      version: str = "0.1.0") -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic, its messages, key, schema and Kafka bindings."""
    topics = list(topics)
    payloads = list(dict.fromkeys(p for t in topics for p in t.values))
    messages: dict[str, Any] = {}
    for payload in payloads:
        messages[payload.__name__] = {
            "name": payload.__name__,
            "title": payload.__name__,
            "summary": (payload.__doc__ or "").strip().splitlines()[0],
            "contentType": CONTENT_TYPE.split(";")[0],
            "payload": {"$ref": f"#/components/schemas/{payload.__name__}Event"},
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in topics:
        cid = topic.name.removeprefix("complaints.").removesuffix(".v1").replace(".", "-")
        channels[cid] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Key: {topic.key}.",
            "messages": {
                p.__name__: {
                    "$ref": f"#/components/messages/{p.__name__}",
                } for p in topic.values
            },
            "bindings": {"kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "replicas": topic.replication_factor,
                "topicConfiguration": {
                    "cleanup.policy": topic.cleanup_policy.split(","),
                    "retention.ms": topic.retention_ms,
                },
                "bindingVersion": "0.5.0",
            }},
        }
        action = "receive" if topic.name.startswith("complaints.intake") else "send"
        operations[f"{action}-{cid}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"The pipeline {'receives from' if action == 'receive' else 'publishes to'} {topic.name}.",
            "messages": [{"$ref": f"#/channels/{cid}/messages/{p.__name__}"} for p in topic.values],
            "bindings": {"kafka": {"bindingVersion": "0.5.0"}},
        }
        for p in topic.values:
            messages[p.__name__].setdefault("bindings", {"kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": "0.5.0",
            }})
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


def export(directory: Path, topics: Iterable[Any]) -> list[Path]:
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
