"""Settings: defaults, config file, environment precedence and errors."""

from __future__ import annotations

import pytest

from complaint_stream.kafka.clients import client_config, effective_replication
from complaint_stream.settings import SettingsError, load_settings


def test_defaults_use_the_local_broker_on_loopback():
    s = load_settings(environ={})
    assert s.uses_local_broker and s.bootstrap == "127.0.0.1:19092"


def test_environment_overrides_the_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('kafka_bootstrap = "file:9092"\ndedup_window_days = 3\n')
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "env:9092"}, config_file=cfg)
    assert s.kafka_bootstrap == "env:9092" and s.dedup_window_days == 3.0 and not s.uses_local_broker


def test_the_config_file_can_be_named_by_the_environment(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('metrics_port = 9999\n')
    assert load_settings(environ={"COMPLAINTS_CONFIG": str(cfg)}).metrics_port == 9999


def test_unknown_settings_in_the_file_are_an_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('kafka_bootstrapp = "x"\n')
    with pytest.raises(SettingsError, match="unknown setting 'kafka_bootstrapp'"):
        load_settings(environ={}, config_file=cfg)


def test_a_malformed_number_names_the_variable():
    with pytest.raises(SettingsError, match="COMPLAINTS_METRICS_PORT"):
        load_settings(environ={"COMPLAINTS_METRICS_PORT": "eighty"})


def test_an_unknown_security_protocol_is_an_error():
    with pytest.raises(SettingsError, match="SECURITY_PROTOCOL"):
        load_settings(environ={"COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "TLS"})


def test_sasl_and_tls_settings_reach_the_kafka_client_config():
    s = load_settings(environ={
        "COMPLAINTS_KAFKA_BOOTSTRAP": "b1:9093,b2:9093",
        "COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "COMPLAINTS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "COMPLAINTS_KAFKA_SASL_USERNAME": "svc",
        "COMPLAINTS_KAFKA_SASL_PASSWORD": "secret",
        "COMPLAINTS_KAFKA_SSL_CAFILE": "/etc/ca.pem",
    })
    cfg = client_config(s)
    assert cfg["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert (cfg["security_protocol"], cfg["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (cfg["sasl_plain_username"], cfg["sasl_plain_password"], cfg["ssl_cafile"]) == ("svc", "secret", "/etc/ca.pem")


def test_replication_is_one_on_the_local_broker_and_the_catalogue_value_elsewhere():
    assert effective_replication(3, load_settings(environ={})) == 1
    assert effective_replication(3, load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "b:9092"})) == 3
    assert effective_replication(3, load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "b:9092",
                                                           "COMPLAINTS_TOPIC_REPLICATION_FACTOR": "2"})) == 2
