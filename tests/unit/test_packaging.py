"""docker-compose.yml, the Makefile and .ci/run stay consistent with the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from complaint_stream.cli.commands import WORKERS

REPO = Path(__file__).resolve().parents[2]


def test_compose_runs_every_worker_and_publishes_ports_on_loopback_only():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    commands = {tuple(s.get("command", ())) for s in services.values()}
    assert {("worker", name) for name in WORKERS} <= commands
    assert ("topics", "create") in commands
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert "make test" in ci
