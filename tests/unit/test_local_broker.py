"""The local broker's pieces that need no Java: port choice, SASL_SSL configuration, SCRAM users."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from complaint_stream.kafka import local_broker
from complaint_stream.kafka.local_broker import (
    DEFAULT_EPHEMERAL_RANGE,
    BrokerError,
    BrokerLayout,
    BrokerSecurity,
    ephemeral_port_range,
    free_port,
)


def _range_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ip_local_port_range"
    path.write_text(text, encoding="ascii")
    return path


def test_the_ephemeral_range_is_read_from_the_kernel_file(tmp_path):
    assert ephemeral_port_range(_range_file(tmp_path, "40000\t50000\n")) == (40000, 50000)


@pytest.mark.parametrize("text", [None, "", "garbage", "50000 40000", "0 70000"])
def test_an_absent_or_unusable_range_file_falls_back_to_linux_s_default(tmp_path, text):
    path = tmp_path / "missing" if text is None else _range_file(tmp_path, text)
    assert ephemeral_port_range(path) == DEFAULT_EPHEMERAL_RANGE == (32768, 60999)


def test_ports_lie_outside_the_ephemeral_range_read_from_the_file(tmp_path):
    path = _range_file(tmp_path, "30000 60000\n")
    ports = [free_port(range_file=path, rng=random.Random(seed)) for seed in range(40)]
    assert all(20000 <= p < 30000 or p > 60000 for p in ports), ports
    assert len(set(ports)) == len(ports)  # never the same port twice in one process


def test_ports_lie_outside_an_injected_range_and_can_be_bound(tmp_path):
    for _ in range(20):
        port = free_port(ephemeral=(21000, 65000))
        assert 1024 <= port < 21000 or port > 65000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))  # free when handed out


def test_ports_above_the_range_when_there_is_no_room_below(tmp_path):
    path = _range_file(tmp_path, "1024 64999\n")
    ports = {free_port(range_file=path) for _ in range(20)}
    assert all(p >= 65000 for p in ports)


def test_a_port_that_is_taken_or_already_handed_out_is_skipped(monkeypatch):
    monkeypatch.setattr(local_broker, "_handed_out", set())
    # a range that leaves two candidates, 65534 and 65535; the first is taken (a fake bind check, so the
    # test does not depend on what else listens on this machine)
    monkeypatch.setattr(local_broker, "_port_bindable", lambda port, host="127.0.0.1": port != 65534)
    assert free_port(ephemeral=(1024, 65533)) == 65535
    with pytest.raises(BrokerError, match="no free port"):
        free_port(ephemeral=(1024, 65533), attempts=50)


def test_the_bind_check_sees_a_port_held_by_a_listener():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert not local_broker._port_bindable(busy.getsockname()[1])


def test_no_room_outside_the_range_is_an_error():
    with pytest.raises(BrokerError, match="outside the ephemeral range"):
        free_port(ephemeral=(1024, 65535))


def test_the_default_range_gives_ports_outside_it_on_this_machine():
    first, last = ephemeral_port_range()
    assert all(not first <= free_port() <= last for _ in range(10))


def test_with_linux_s_default_range_ports_come_from_20000_32767_or_61000_65535(tmp_path):
    ports = [free_port(range_file=tmp_path / "absent") for _ in range(50)]
    assert all(20000 <= p <= 32767 or 61000 <= p <= 65535 for p in ports), ports


# -- SASL_SSL ------------------------------------------------------------------------------

def _security(tmp_path: Path, **users: str) -> BrokerSecurity:
    return BrokerSecurity(cafile=tmp_path / "ca.pem", certfile=tmp_path / "server.pem",
                          keyfile=tmp_path / "server-key.pem", users=users or {"admin": "admin-pw"})


def test_a_plain_broker_has_only_plaintext_listeners(tmp_path):
    props = BrokerLayout(home=tmp_path, port=21001, controller_port=21002).server_properties()
    assert "listeners=PLAINTEXT://127.0.0.1:21001,CONTROLLER://127.0.0.1:21002\n" in props
    assert "SASL" not in props and "ssl." not in props


def test_a_secure_broker_adds_a_sasl_ssl_listener_with_a_pem_key_store(tmp_path):
    lay = BrokerLayout(home=tmp_path, port=21001, controller_port=21002, security=_security(tmp_path),
                       secure_port=21003)
    props = dict(line.split("=", 1) for line in lay.server_properties().splitlines() if line)
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:21001,CONTROLLER://127.0.0.1:21002,"
                                  "SASL_SSL://127.0.0.1:21003")
    assert props["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert props["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert props["listener.name.sasl_ssl.ssl.keystore.location"] == str(lay.keystore_file)
    assert props["listener.name.sasl_ssl.ssl.truststore.location"] == str(tmp_path / "ca.pem")
    assert lay.bootstrap == "127.0.0.1:21001" and lay.secure_bootstrap == "127.0.0.1:21003"


def test_scram_users_are_created_when_the_storage_is_formatted(tmp_path):
    sec = _security(tmp_path, admin="a-pw", complaints="c-pw")
    assert sec.scram_arguments() == ["--add-scram", "SCRAM-SHA-512=[name=admin,password=a-pw]",
                                     "--add-scram", "SCRAM-SHA-512=[name=complaints,password=c-pw]"]


def test_passwords_never_show_in_a_repr(tmp_path):
    lay = BrokerLayout(home=tmp_path, port=1, controller_port=2, security=_security(tmp_path, u="sekrit-pw"),
                       secure_port=3)
    assert "sekrit-pw" not in repr(lay)


def test_client_settings_for_a_user(tmp_path, base_settings):
    lay = BrokerLayout(home=tmp_path, port=1, controller_port=2, security=_security(tmp_path, app="app-pw"),
                       secure_port=21003)
    s = base_settings.with_overrides(**lay.client_overrides("app"))
    assert (s.bootstrap, s.kafka_security_protocol, s.kafka_sasl_mechanism, s.kafka_sasl_username) == (
        "127.0.0.1:21003", "SASL_SSL", "SCRAM-SHA-512", "app")
    assert s.kafka_sasl_password.get_secret_value() == "app-pw" and s.kafka_ssl_cafile == str(tmp_path / "ca.pem")
    with pytest.raises(BrokerError, match="no SCRAM user"):
        lay.client_overrides("nobody")


@pytest.mark.parametrize("users", [{}, {"a b": "pw"}, {"admin": "pw,with,commas"}, {"admin": 'quote"'}])
def test_users_the_format_tool_could_misread_are_refused(tmp_path, users):
    with pytest.raises(BrokerError):
        BrokerSecurity(tmp_path / "ca", tmp_path / "c", tmp_path / "k", users)


def test_a_secure_layout_needs_its_port(tmp_path):
    with pytest.raises(BrokerError, match="secure_port"):
        BrokerLayout(home=tmp_path, port=1, controller_port=2, security=_security(tmp_path))


def test_the_key_store_holds_the_key_then_the_chain_and_only_the_owner_reads_it(tmp_path):
    sec = _security(tmp_path)
    sec.keyfile.write_text("-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n")
    sec.certfile.write_text("-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n")
    lay = BrokerLayout(home=tmp_path / "home", port=1, controller_port=2, security=sec, secure_port=3)
    lay.write_keystore()
    text = lay.keystore_file.read_text()
    assert text.index("PRIVATE KEY") < text.index("CERTIFICATE")
    assert lay.keystore_file.stat().st_mode & 0o077 == 0


def test_an_rsa_or_encrypted_key_is_refused_with_a_hint(tmp_path):
    sec = _security(tmp_path)
    sec.keyfile.write_text("-----BEGIN RSA PRIVATE KEY-----\nK\n-----END RSA PRIVATE KEY-----\n")
    sec.certfile.write_text("-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n")
    lay = BrokerLayout(home=tmp_path / "home", port=1, controller_port=2, security=sec, secure_port=3)
    with pytest.raises(BrokerError, match="PKCS#8"):
        lay.write_keystore()
