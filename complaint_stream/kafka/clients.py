"""kafka-python clients from settings (bootstrap, SASL/TLS), with a bounded wait for the cluster.

Every client is built through :func:`connect`: it waits at most ``kafka_connect_timeout_seconds`` for
the cluster (kafka-python's ``bootstrap_timeout_ms``: connect, version probe, first metadata) and turns
a failure into :class:`KafkaUnavailable` or :class:`KafkaAuthFailed`, whose message names the cluster
and says why (connection refused, host not found, no Kafka answer ...), instead of a bare
``KafkaTimeoutError`` after kafka-python's default 30 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from complaint_stream.kafka import kafka_python_fixes
from complaint_stream.settings import Settings

T = TypeVar("T")

#: Reconnect backoff of every client: exponential from 200 ms, capped at 5 s (with jitter). kafka-python's
#: default cap of 30 s would leave a client that failed a few times idle for most of a bounded wait.
RECONNECT_BACKOFF_MS = 200
RECONNECT_BACKOFF_MAX_MS = 5000


class KafkaUnavailable(RuntimeError):
    """The cluster could not be reached, or did not answer, within the configured time."""


class KafkaAuthFailed(RuntimeError):
    """The cluster refused this client's credentials or permissions."""


def connect_timeout_ms(settings: Settings) -> int:
    return max(1, int(settings.kafka_connect_timeout_seconds * 1000))


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Keyword arguments shared by every kafka-python client."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap.split(","),
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
        "bootstrap_timeout_ms": connect_timeout_ms(settings),
        "reconnect_backoff_ms": RECONNECT_BACKOFF_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
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


# -- bounded connection ------------------------------------------------------------------

class _LastError(logging.Handler):
    """Remembers the last exception kafka-python logs while a client bootstraps: the bootstrap's own
    ``KafkaTimeoutError`` does not say why the attempts failed, its log records do."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.error: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            # a refused login stays the reason: the broker then closes the socket ("socket disconnected")
            sticky = self.error is not None and is_auth_error(self.error)
            if isinstance(arg, BaseException) and type(arg).__name__ != "KafkaTimeoutError" and not sticky:
                self.error = arg


def describe_failure(error: BaseException | None, settings: Settings) -> str:
    """Why the bootstrap attempts failed, in words (the last error kafka-python saw)."""
    protocol = settings.kafka_security_protocol
    if error is None:
        return "no connection could be made"
    text = str(error)
    low = text.lower()
    name = type(error).__name__
    if isinstance(error, ConnectionRefusedError) or "econnrefused" in low or "connection refused" in low:
        return "connection refused"
    if "dns" in low or "name or service not known" in low or "nodename nor servname" in low:
        return "host name not found"
    if name in ("RequestTimedOutError", "KafkaRequestTimedOutError") or "request timed out" in low:
        return (f"the port accepts connections but no Kafka answer came (is it a Kafka listener for"
                f" {protocol}?)")
    if "reset by peer" in low or "connection closed" in low or "broken pipe" in low or "eof" in low:
        return f"the server closed the connection (is it a Kafka listener for {protocol}?)"
    if "timed out" in low or "timeout" in low:
        return "the connection attempt timed out"
    return text if text.startswith(name) else f"{name}: {text}"


_AUTH_ERRORS = ("SaslAuthenticationFailedError", "UnsupportedSaslMechanismError", "IllegalSaslStateError",
                "AuthenticationFailedError", "AuthenticationMethodNotSupported")


def is_auth_error(exc: BaseException) -> bool:
    """A refusal of credentials (SASL) or of permissions (any ``AuthorizationError``)."""
    return any(c.__name__ in _AUTH_ERRORS or c.__name__ == "AuthorizationError" for c in type(exc).__mro__)


def connect(settings: Settings, factory: Callable[..., T], **config: Any) -> T:
    """``factory(**config)`` (a kafka-python client), failing within the connect timeout with one clear
    error naming the cluster: :class:`KafkaUnavailable` or :class:`KafkaAuthFailed`."""
    from kafka import errors

    kafka_python_fixes.apply()  # else a refused login often reads as "socket disconnected"
    unreachable: tuple[type[BaseException], ...] = (errors.KafkaTimeoutError,)
    if hasattr(errors, "NoBrokersAvailable"):  # kafka-python 2.x
        unreachable += (errors.NoBrokersAvailable,)
    seconds = f"{settings.kafka_connect_timeout_seconds:g}"
    capture = _LastError()
    logger = logging.getLogger("kafka")
    logger.addHandler(capture)
    try:
        return factory(**config)
    except unreachable as exc:
        if capture.error is not None and is_auth_error(capture.error):  # kafka-python retries a refused login
            raise _auth_failed(capture.error, settings) from exc
        reason = describe_failure(capture.error, settings)
        raise KafkaUnavailable(f"cannot reach Kafka at {settings.bootstrap} within {seconds} s: {reason}") from exc
    except errors.KafkaError as exc:
        if not is_auth_error(exc):
            raise
        raise _auth_failed(exc, settings) from exc
    finally:
        logger.removeHandler(capture)


def _auth_failed(exc: BaseException, settings: Settings) -> KafkaAuthFailed:
    who = f" as {settings.kafka_sasl_username!r}" if settings.kafka_sasl_username else ""
    return KafkaAuthFailed(f"Kafka at {settings.bootstrap} refused this client{who}: {exc}")


def producer(settings: Settings, **extra: Any):
    """An idempotent, acks=all producer (no duplicates on retry, nothing lost on leader change).

    ``send`` waits at most the connect timeout for a topic's metadata or for buffer space
    (``max_block_ms``) before it raises ``KafkaTimeoutError``."""
    from kafka import KafkaProducer

    opts = dict(acks="all", enable_idempotence=True, linger_ms=10, batch_size=256 * 1024, retries=2**31 - 1,
                max_in_flight_requests_per_connection=5, compression_type=None,
                max_block_ms=connect_timeout_ms(settings))
    opts.update(extra)
    return connect(settings, KafkaProducer, **client_config(settings, **opts))


def consumer(settings: Settings, **extra: Any):
    from kafka import KafkaConsumer

    return connect(settings, KafkaConsumer, **client_config(settings, **extra))


def admin(settings: Settings):
    from kafka import KafkaAdminClient

    return connect(settings, KafkaAdminClient, **client_config(settings, request_timeout_ms=30000))
