"""The exported AsyncAPI document passes the reference AsyncAPI parser (npm @asyncapi/parser)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.cli import REPO, run_cli
from complaint_stream import topics

VALIDATOR = REPO / "tools" / "asyncapi" / "validate.mjs"


def validate(path):
    node = shutil.which("node")
    assert node, "node must be installed"
    assert (REPO / "tools" / "asyncapi" / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        "run `make test` (it installs tools/asyncapi with npm ci)"
    return subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)


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
