"""Worker wiring that needs no broker: credentials and app configuration."""

from __future__ import annotations

import faust

from complaint_stream.settings import load_settings
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import broker_credentials, make_app


def test_plaintext_needs_no_credentials():
    assert broker_credentials(load_settings(environ={})) is None


def test_sasl_ssl_settings_become_faust_credentials(tmp_path):
    settings = load_settings(environ={
        "COMPLAINTS_KAFKA_BOOTSTRAP": "b1:9093,b2:9093",
        "COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "COMPLAINTS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "COMPLAINTS_KAFKA_SASL_USERNAME": "svc",
        "COMPLAINTS_KAFKA_SASL_PASSWORD": "pw",
        "COMPLAINTS_STATE_DIR": str(tmp_path),
    })
    creds = broker_credentials(settings)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.ssl_context is not None) == ("svc", "pw", True)
    assert creds.mechanism.value == "SCRAM-SHA-256"
    app = make_app("complaints-test", settings)
    assert [str(u) for u in app.conf.broker] == ["kafka://b1:9093", "kafka://b2:9093"]
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)


def test_ssl_alone_gives_ssl_credentials(tmp_path):
    settings = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "b:9093", "COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "SSL",
                                      "COMPLAINTS_STATE_DIR": str(tmp_path)})
    assert isinstance(broker_credentials(settings), faust.SSLCredentials)


def test_each_registered_worker_has_its_own_consumer_group_port_and_stage(tmp_path, base_settings):
    entries = list(WORKERS.values())
    assert len({e.app_id for e in entries}) == len({e.metrics_port for e in entries}) == len(entries)
    for entry in entries:
        module = entry.load()
        assert module.binding(base_settings).stage.name == entry.name
    app = make_app(WORKERS["intake"].app_id, base_settings.with_overrides(state_dir=tmp_path))
    assert app.conf.id == "complaints-intake" and app.conf.web_enabled is False
    assert app.conf.broker_consumer[0].host == "127.0.0.1"
