"""Shared fixtures. Integration tests get one real Kafka broker per session (never a mock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from complaint_stream.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs two pytest-xdist processes: the fault suite, whose package fixtures (its brokers, the
    hostile run) its modules share, as one unit of work on one process, beside everything else; every other
    file is a unit of its own (its module fixtures built once). The scheduler decides by node id (pytest-xdist's
    ``xdist_group`` marks rewrite node ids, which pytest 9 no longer allows)."""
    from xdist.scheduler import LoadScopeScheduling

    class FaultSuiteTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/fault" if path.startswith("tests/fault/") else path

    return FaultSuiteTogether(config, log)


#: Lines the session prints at its end (the fault suite's figures), gathered from the reports of the test
#: processes: under pytest-xdist a test's own output never reaches the terminal, its report's
#: ``user_properties`` do.
SUMMARY_KEYS = ("reliability_row", "summary_line")
_SUMMARY: dict[str, list] = {key: [] for key in SUMMARY_KEYS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    from dataclasses import asdict

    from tests.support import reliability

    outcome = yield
    report = outcome.get_result()
    for row in reliability.ROWS:  # recorded during this phase (each phase's report takes its own)
        report.user_properties.append(("reliability_row", asdict(row)))  # plain data: it crosses processes
    for line in reliability.LINES:
        report.user_properties.append(("summary_line", line))
    reliability.ROWS.clear()
    reliability.LINES.clear()


def pytest_runtest_logreport(report):
    for key, value in report.user_properties:
        if key in _SUMMARY:
            _SUMMARY[key].append(value)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Settings from defaults only (the environment of the test run is ignored)."""
    return load_settings(environ={})


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory, base_settings):
    """A fresh single-node KRaft broker on free loopback ports, shared by all integration tests."""
    from complaint_stream.kafka.local_broker import ephemeral_broker

    broker = ephemeral_broker(tmp_path_factory.mktemp("kafka"), base_settings.cache_dir, base_settings.kafka_version)
    broker.start(timeout=120)  # fails loudly (no skip) when Java, Maven or the jars are missing
    yield broker
    broker.destroy()


@pytest.fixture(scope="session")
def kafka_settings(kafka_broker, base_settings, tmp_path_factory) -> Settings:
    """Settings pointing every client at the session broker, with all topics created."""
    from complaint_stream.kafka.admin import create_topics

    settings = base_settings.with_overrides(
        kafka_bootstrap=kafka_broker.layout.bootstrap,
        topic_replication_factor=1,
        state_dir=tmp_path_factory.mktemp("state"),
    )
    create_topics(settings)
    return settings


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    path = DATA / "eval"
    assert path.is_dir(), f"the dev set is missing at {path}"
    return path


def pytest_terminal_summary(terminalreporter):
    """The fault-injection suite's measured figures (tests/support/reliability.py)."""
    from tests.support.reliability import table

    lines = table(_SUMMARY["reliability_row"])
    if lines or _SUMMARY["summary_line"]:
        terminalreporter.section("reliability (fault-injection suite)")
        for line in [*_SUMMARY["summary_line"], *lines]:
            terminalreporter.write_line(line)
