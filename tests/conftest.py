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

    lines = table()
    if lines:
        terminalreporter.section("reliability (fault-injection suite)")
        for line in lines:
            terminalreporter.write_line(line)
