"""`complaints kafka start|status|stop` provisions and manages a real broker."""

from __future__ import annotations

from complaint_stream import topics
from complaint_stream.kafka.local_broker import free_port
from tests.support.cli import run_cli


def test_start_is_idempotent_and_stop_shuts_the_broker_down(base_settings, tmp_path):
    settings = base_settings.with_overrides(state_dir=tmp_path / "state", local_kafka_port=free_port(),
                                            local_controller_port=free_port(), local_kafka_heap="512m")
    bootstrap = f"127.0.0.1:{settings.local_kafka_port}"
    try:
        assert run_cli(settings, "kafka", "status").returncode == 3

        first = run_cli(settings, "kafka", "start")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1] == bootstrap
        assert "started" in first.stdout

        second = run_cli(settings, "kafka", "start")
        assert second.returncode == 0 and "already running" in second.stdout

        status = run_cli(settings, "kafka", "status")
        assert status.returncode == 0 and bootstrap in status.stdout

        created = run_cli(settings, "topics", "create")
        assert created.returncode == 0 and f"{len(topics.ALL)} created, 0 already present" in created.stdout
    finally:
        stop = run_cli(settings, "kafka", "stop")
    assert stop.returncode == 0 and "Kafka stopped" in stop.stdout
    assert run_cli(settings, "kafka", "status").returncode == 3
    assert "not running" in run_cli(settings, "kafka", "stop").stdout


def test_commands_that_need_the_broker_say_how_to_start_it(base_settings, tmp_path):
    settings = base_settings.with_overrides(state_dir=tmp_path / "none", local_kafka_port=free_port())
    out = run_cli(settings, "topics", "check")
    assert out.returncode == 1 and "complaints kafka start" in out.stderr


def test_a_missing_java_is_reported_clearly(base_settings, tmp_path):
    settings = base_settings.with_overrides(state_dir=tmp_path / "nojava", cache_dir=tmp_path / "emptycache",
                                            local_kafka_port=free_port(), local_controller_port=free_port())
    import subprocess
    import sys

    from tests.support.cli import REPO, settings_env

    env = settings_env(settings)
    env["PATH"] = "/nonexistent"
    out = subprocess.run([sys.executable, "-m", "complaint_stream.cli.main", "kafka", "start"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "`java` was not found" in out.stderr
