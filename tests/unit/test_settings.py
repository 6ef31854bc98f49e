"""Settings: defaults, config file, environment precedence, errors, secrets and the unsafe-start refusal."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from complaint_stream.kafka.clients import client_config, effective_replication
from complaint_stream.settings import (
    DEV_CUSTOMER_SECRET,
    SettingsError,
    UnsafeWorkerStart,
    load_settings,
    to_environ,
)


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


# --- secrets, types and the production-safety refusal -------------------------------------------

CUSTOMER_SECRET = "hmac-Very-Secret-42-long-enough-for-prod"
SECRETS_ENV = {"COMPLAINTS_CUSTOMER_KEY_SECRET": CUSTOMER_SECRET, "COMPLAINTS_KAFKA_SASL_PASSWORD": "pw-Secret-77"}


def test_secrets_never_appear_in_repr_str_or_json():
    s = load_settings(environ=SECRETS_ENV)
    for text in (repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json")), f"{s}", f"{s!r}"):
        assert "hmac-Very-Secret-42" not in text and "pw-Secret-77" not in text
    assert isinstance(s.customer_key_secret, SecretStr)
    assert s.customer_key_secret.get_secret_value() == CUSTOMER_SECRET
    assert s.kafka_sasl_password.get_secret_value() == "pw-Secret-77"


def test_a_malformed_secret_is_reported_without_its_value(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('customer_key_secret = ["hmac-Very-Secret-42"]\n')
    with pytest.raises(SettingsError, match="COMPLAINTS_CUSTOMER_KEY_SECRET") as info:
        load_settings(environ={}, config_file=cfg)
    assert "hmac-Very-Secret-42" not in str(info.value)


def test_child_processes_get_the_secret_values():
    env = to_environ(load_settings(environ=SECRETS_ENV))
    assert env["COMPLAINTS_CUSTOMER_KEY_SECRET"] == CUSTOMER_SECRET
    assert load_settings(environ=env) == load_settings(environ=SECRETS_ENV)


def test_the_environment_beats_the_toml_file_for_every_kind_of_field(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('customer_key_secret = "from-file"\nkafka_security_protocol = "SSL"\nmax_text_chars = 10\n')
    from_file = load_settings(environ={}, config_file=cfg)
    assert (from_file.customer_key_secret.get_secret_value(), from_file.kafka_security_protocol,
            from_file.max_text_chars) == ("from-file", "SSL", 10)
    s = load_settings(environ={"COMPLAINTS_CUSTOMER_KEY_SECRET": "from-env", "COMPLAINTS_MAX_TEXT_CHARS": "20",
                               "COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, config_file=cfg)
    assert (s.customer_key_secret.get_secret_value(), s.kafka_security_protocol, s.max_text_chars) == \
        ("from-env", "SASL_SSL", 20)


def test_a_bad_security_protocol_names_the_variable_and_the_allowed_values(tmp_path):
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"COMPLAINTS_KAFKA_SECURITY_PROTOCOL": "sasl-ssl"})
    message = str(info.value)
    assert message.startswith("COMPLAINTS_KAFKA_SECURITY_PROTOCOL:")
    assert all(p in message for p in ("'PLAINTEXT'", "'SSL'", "'SASL_PLAINTEXT'", "'SASL_SSL'", "'sasl-ssl'"))
    cfg = tmp_path / "c.toml"
    cfg.write_text('kafka_security_protocol = "TLS"\n')
    with pytest.raises(SettingsError, match=r"kafka_security_protocol in .*c\.toml"):
        load_settings(environ={}, config_file=cfg)


def test_overrides_are_validated_too():
    s = load_settings(environ={})
    assert s.with_overrides(metrics_port="9400").metrics_port == 9400
    with pytest.raises(SettingsError, match="SECURITY_PROTOCOL"):
        s.with_overrides(kafka_security_protocol="TLS")
    with pytest.raises(SettingsError, match="unknown setting"):
        s.with_overrides(worker_concurrency=4)


@pytest.mark.parametrize("bootstrap", ["kafka-1.prod.example:9093", "10.0.0.5:9092", "127.0.0.1:9092,b2:9092",
                                       "[2001:db8::1]:9092"])
def test_a_worker_refuses_a_remote_cluster_with_the_development_secret(bootstrap):
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": bootstrap})
    assert s.customer_key_secret.get_secret_value() == DEV_CUSTOMER_SECRET
    with pytest.raises(UnsafeWorkerStart, match="COMPLAINTS_CUSTOMER_KEY_SECRET") as info:
        s.refuse_unsafe_worker_start()
    assert bootstrap in str(info.value) and DEV_CUSTOMER_SECRET not in str(info.value)


@pytest.mark.parametrize("bootstrap", ["", "127.0.0.1:19092", "localhost:9092", "127.3.2.1:9092,[::1]:9092",
                                       "PLAINTEXT://localhost:9092"])
def test_a_worker_on_a_loopback_cluster_may_use_the_development_secret(bootstrap):
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": bootstrap})
    assert s.check_production_safety() == []
    s.refuse_unsafe_worker_start()


def test_a_worker_on_a_remote_cluster_with_a_real_secret_starts():
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "kafka-1.prod.example:9093", **SECRETS_ENV})
    assert s.check_production_safety() == []
    s.refuse_unsafe_worker_start()


def test_the_refusal_is_a_settings_error_so_commands_report_it_like_one():
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "kafka-1.prod.example:9093"})
    with pytest.raises(SettingsError):
        s.refuse_unsafe_worker_start()


@pytest.mark.parametrize("secret", ["change-me-in-production", "abc", "x" * 31])
def test_a_worker_refuses_a_remote_cluster_with_a_short_secret(secret):
    s = load_settings(environ={"COMPLAINTS_KAFKA_BOOTSTRAP": "kafka-1.prod.example:9093",
                               "COMPLAINTS_CUSTOMER_KEY_SECRET": secret})
    with pytest.raises(UnsafeWorkerStart, match="shorter than 32 characters") as info:
        s.refuse_unsafe_worker_start()
    assert secret not in str(info.value)


def test_the_compose_file_has_no_default_secret():
    import re
    from pathlib import Path

    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text(encoding="utf-8")
    refs = re.findall(r"\$\{COMPLAINTS_CUSTOMER_KEY_SECRET([^}]*)\}", compose)
    assert refs and all(r.startswith(":?") for r in refs), refs  # required, never defaulted
