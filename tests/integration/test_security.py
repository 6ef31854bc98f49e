"""SASL_SSL with SCRAM-SHA-512 end to end, on a broker of this module's own (a throwaway CA, loopback only).

Every client below is given only the SASL_SSL listener: topic creation, the channel API, the intake and
classify workers (real subprocesses, faust/aiokafka) and the reading back all authenticate with SCRAM
over TLS, trusting nothing but the test CA.
"""

from __future__ import annotations

import secrets
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

import pytest

from complaint_stream import topics
from complaint_stream.channel_api import ChannelPublisher
from complaint_stream.kafka.admin import create_topics
from complaint_stream.kafka.local_broker import BrokerSecurity, ephemeral_broker
from complaint_stream.kafka.records import read_topic
from tests.support.cli import run_cli
from tests.support.factories import submission
from tests.support.tls import make_test_pki
from tests.support.workers import running_workers, wait_caught_up

USER = "complaints"
PASSWORD = secrets.token_urlsafe(18)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory, base_settings):
    root = tmp_path_factory.mktemp("secure-kafka")
    pki = make_test_pki(root / "pki")
    security = BrokerSecurity(cafile=pki.cafile, certfile=pki.certfile, keyfile=pki.keyfile, users={USER: PASSWORD})
    broker = ephemeral_broker(root / "kafka", base_settings.cache_dir, base_settings.kafka_version, security=security)
    broker.start(timeout=120)  # waits for the SASL_SSL listener too, logged in as USER
    yield broker
    broker.destroy()


@pytest.fixture(scope="module")
def secure_settings(secure_broker, base_settings, tmp_path_factory):
    """Settings that know only the SASL_SSL listener, with USER's credentials and the test CA."""
    settings = base_settings.with_overrides(**secure_broker.layout.client_overrides(USER),
                                            topic_replication_factor=1,
                                            state_dir=tmp_path_factory.mktemp("secure-state"))
    assert settings.bootstrap == secure_broker.layout.secure_bootstrap != secure_broker.layout.bootstrap
    created, _ = create_topics(settings)
    assert topics.SUBMISSIONS.name in created and topics.CLASSIFIED.name in created
    return settings


def test_the_sasl_ssl_listener_presents_the_test_ca_s_certificate_for_127_0_0_1(secure_broker):
    host, port = secure_broker.layout.secure_bootstrap.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(secure_broker.layout.security.cafile))
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        subject = dict(item[0] for item in tls.getpeercert()["subject"])
    assert subject["commonName"] == "127.0.0.1"


def test_a_submission_is_classified_by_workers_that_log_in_with_scram_over_tls(secure_settings, tmp_path):
    ref = f"SEC-{secrets.token_hex(4)}"
    with running_workers(secure_settings, ["intake", "classify"], tmp_path / "logs"):
        with ChannelPublisher(secure_settings) as pub:
            pub.submit(submission(1, channel_ref=ref))
        wait_caught_up(secure_settings, "intake", [topics.SUBMISSIONS.name])
        wait_caught_up(secure_settings, "classify", [topics.RECEIVED.name, topics.RESOLVED.name,
                                                      topics.CLASSIFY_BY_CUSTOMER.name])
    received = [r.envelope.data for r in read_topic(secure_settings, topics.RECEIVED, idle_timeout=2)
                if r.envelope is not None and r.envelope.data.channel_ref == ref]
    assert len(received) == 1
    classified = [r.envelope.data for r in read_topic(secure_settings, topics.CLASSIFIED, idle_timeout=2)
                  if r.envelope is not None and r.envelope.data.complaint_id == received[0].complaint_id]
    assert len(classified) == 1
    assert classified[0].category and classified[0].priority.value in {"P1", "P2", "P3", "P4"}


def test_a_wrong_password_fails_with_one_clear_line(secure_settings):
    wrong = secure_settings.with_overrides(kafka_sasl_password="not-" + PASSWORD)
    commands = [("topics", "check"), ("publish", "-")]
    with ThreadPoolExecutor(len(commands)) as pool:  # side by side: each waits out the connect timeout
        results = list(pool.map(lambda command: run_cli(wrong, *command, input="", timeout=90), commands))
    for command, result in zip(commands, results):
        err = result.stderr.strip()
        assert result.returncode != 0, command
        assert "Traceback" not in result.stderr, (command, err)
        assert len(err.splitlines()) == 1, (command, err)
        assert "authentication failed" in err.lower() and repr(USER) in err, (command, err)
        assert secure_settings.bootstrap in err, (command, err)
        assert PASSWORD not in result.stderr + result.stdout


def test_a_worker_pointed_at_a_remote_cluster_with_the_development_secret_refuses_to_start(secure_settings):
    """The process-level counterpart of tests/unit/test_settings.py::
    test_a_worker_refuses_a_remote_cluster_with_the_development_secret: `complaints worker` refuses before it
    connects anywhere (192.0.2.0/24 is TEST-NET-1: nothing would answer)."""
    remote = secure_settings.with_overrides(kafka_bootstrap="192.0.2.10:9093")
    assert remote.uses_dev_customer_secret
    result = run_cli(remote, "worker", "intake", timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "refusing to start the worker" in result.stderr and "COMPLAINTS_CUSTOMER_KEY_SECRET" in result.stderr
