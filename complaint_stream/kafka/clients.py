"""kafka-python client configuration from settings (bootstrap, SASL/TLS)."""

from __future__ import annotations

from typing import Any

from complaint_stream.settings import Settings


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Keyword arguments shared by every kafka-python client."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap.split(","),
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        cfg["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_cafile:
            cfg["ssl_cafile"] = settings.kafka_ssl_cafile
        if settings.kafka_ssl_certfile:
            cfg["ssl_certfile"] = settings.kafka_ssl_certfile
        if settings.kafka_ssl_keyfile:
            cfg["ssl_keyfile"] = settings.kafka_ssl_keyfile
    cfg.update(extra)
    return cfg


def effective_replication(spec_rf: int, settings: Settings) -> int:
    """Replication factor to create a topic with in this environment."""
    if settings.topic_replication_factor > 0:
        return settings.topic_replication_factor
    return 1 if settings.uses_local_broker else spec_rf


def producer(settings: Settings, **extra: Any):
    """An idempotent, acks=all producer (no duplicates on retry, nothing lost on leader change)."""
    from kafka import KafkaProducer

    opts = dict(acks="all", enable_idempotence=True, linger_ms=10, batch_size=256 * 1024, retries=2**31 - 1,
                max_in_flight_requests_per_connection=5, compression_type=None)
    opts.update(extra)
    return KafkaProducer(**client_config(settings, **opts))


def admin(settings: Settings):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**client_config(settings, request_timeout_ms=30000))
