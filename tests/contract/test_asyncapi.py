"""The exported AsyncAPI document passes the reference AsyncAPI parser (npm @asyncapi/parser)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from complaint_stream import topics
from tests.support.cli import REPO, run_cli

VALIDATOR = REPO / "tools" / "asyncapi" / "validate.mjs"


def validate(path):
    node = shutil.which("node")
    assert node, "node must be installed"
    assert (REPO / "tools" / "asyncapi" / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        "run `make test` (it installs tools/asyncapi with npm ci)"
    return subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, base_settings):
    out_dir = tmp_path_factory.mktemp("schemas")
    result = run_cli(base_settings, "schema", "export", str(out_dir))
    assert result.returncode == 0, result.stderr
    return out_dir


def test_export_writes_one_schema_per_event_and_the_asyncapi_document(exported):
    from complaint_stream.schemas import PAYLOADS

    names = {p.name for p in exported.iterdir()}
    assert names == {f"{p.__name__}.schema.json" for p in PAYLOADS} | {"asyncapi.json"}
    schema = json.loads((exported / "ComplaintReceived.schema.json").read_text())
    assert schema["properties"]["type"]["const"] == "org.complaintstream.complaint.received.v1"
    assert {"id", "source", "type", "time", "subject", "data"} <= set(schema["required"])


def test_the_asyncapi_document_is_valid_and_describes_every_topic(exported):
    result = validate(exported / "asyncapi.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(topics.ALL)} channels" in result.stdout
    doc = json.loads((exported / "asyncapi.json").read_text())
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in topics.ALL}
    for channel in doc["channels"].values():
        for ref in channel["messages"].values():
            msg = doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            assert msg["bindings"]["kafka"]["key"]["type"] == "string"


def test_the_validator_rejects_a_broken_document(exported, tmp_path):
    doc = json.loads((exported / "asyncapi.json").read_text())
    first = next(iter(doc["operations"].values()))
    first["channel"] = {"$ref": "#/channels/does-not-exist"}
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    result = validate(broken)
    assert result.returncode == 1 and "INVALID" in result.stdout


def test_operations_are_the_workers_declared_in_the_catalogue(exported):
    from complaint_stream.schemas.export import channel_id, operation_id

    doc = json.loads((exported / "asyncapi.json").read_text())
    expected = {}
    for t in topics.ALL:
        for w in t.producing_workers:
            expected[operation_id(w, "send", t.name)] = ("send", channel_id(t.name))
        for w in t.consuming_workers:
            expected[operation_id(w, "receive", t.name)] = ("receive", channel_id(t.name))
    actual = {oid: (op["action"], op["channel"]["$ref"].rsplit("/", 1)[1]) for oid, op in doc["operations"].items()}
    assert actual == expected
    assert doc["operations"]["intake-receive-intake-submissions"]["tags"] == [{"name": "worker:intake"}]
    assert doc["operations"]["assign-receive-classified"]["tags"] == [{"name": "worker:assign"}]
    assert {"name": "planned"} in doc["operations"]["stats-receive-lifecycle"]["tags"]
    assert {"name": "planned"} not in doc["operations"]["sla-receive-lifecycle"]["tags"]
    status = doc["channels"][channel_id(topics.STATUS.name)]
    assert [p["kind"] for p in status["x-written-by"]] == ["external", "external"]
    assert {p["name"] for p in status["x-read-by"]} == {"lifecycle"}
    result = validate(exported / "asyncapi.json")
    assert f"{len(expected)} operations" in result.stdout
