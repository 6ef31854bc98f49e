"""docker-compose.yml, the Makefile and .ci/run stay consistent with the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from complaint_stream.workers.registry import WORKERS

REPO = Path(__file__).resolve().parents[2]


def test_compose_runs_every_worker_and_publishes_ports_on_loopback_only():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    commands = {tuple(s.get("command", ())) for s in services.values()}
    assert {("worker", name) for name in WORKERS} <= commands
    for name, entry in WORKERS.items():
        assert f"127.0.0.1:{entry.metrics_port}:{entry.metrics_port}" in services[name]["ports"]
    assert ("topics", "create") in commands
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert "make test" in ci


def test_a_built_wheel_carries_the_policy_files_and_the_model_and_no_compiled_code(tmp_path):
    """A non-editable install (the Docker image, a deployment) gets everything
    the classifier loads at run time, and is pure Python: building it needs
    no compiler.  Built from a clean copy of the source, so nothing compiled
    in place for development can stand in."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "__pycache__", "*.so", "build", "*.egg-info", ".pytest_cache"))
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = out.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    package = "complaint_stream/domain/"
    for needed in ("priority_rules.json", "classification/rules.json", "classification/default_model.npz"):
        assert package + needed in names
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".c"))]
    assert compiled == []
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
