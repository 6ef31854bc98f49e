"""docker-compose.yml, the Makefile and .ci/run stay consistent with the code."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a clean copy of the source, so nothing compiled in place for development can stand in."""
    source = tmp_path_factory.mktemp("src") / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "__pycache__", "*.so", "build", "*.egg-info", ".pytest_cache"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    (built,) = out.glob("*.whl")
    return built


@pytest.mark.slow
def test_a_built_wheel_carries_the_policy_files_and_the_model_and_no_compiled_code(wheel):
    """A non-editable install (the Docker image, a deployment) gets everything the classifier loads at
    run time, and is pure Python: building it needs no compiler."""
    names = zipfile.ZipFile(wheel).namelist()
    package = "complaint_stream/domain/"
    for needed in ("priority_rules.json", "classification/rules.json", "classification/default_model.npz"):
        assert package + needed in names
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".dylib", ".c"))]
    assert compiled == []
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name


@pytest.mark.slow
def test_the_install_is_one_package_and_claims_no_generic_top_level_names(wheel, tmp_path):
    """`schemas`, `topics`, `workers` are folders of this repository, installed as complaint_stream.*:
    PyPI has distributions with those names, and pip would let one overwrite the other."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    installed = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info"))
    assert installed == ["bin", "complaint_stream"]  # bin: the `complaints` console script
    probe = ("import importlib.util, sys; sys.path.insert(0, sys.argv[1]);"
             "import complaint_stream.schemas, complaint_stream.topics, complaint_stream.workers.registry;"
             "assert complaint_stream.schemas.__file__.startswith(sys.argv[1]);"
             "print([n for n in ('schemas', 'topics', 'workers', 'monitoring') if importlib.util.find_spec(n)])")
    result = subprocess.run([sys.executable, "-c", probe, str(target)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
