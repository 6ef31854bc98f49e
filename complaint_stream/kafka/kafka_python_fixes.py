"""A fix to kafka-python 3.0.x that :func:`complaint_stream.kafka.clients.connect` applies before it builds a client.

**A broker's last words are dropped.** ``KafkaTCPTransport._read_from_sock`` (also used for TLS) reads
everything the socket has in one go and, when that read also met the end of the connection, aborts the
connection *without handing the bytes it did read to the protocol*. A broker that refuses a SASL login
sends its ``SaslAuthenticate`` error response and closes the connection at once, so the response and the
end of the connection usually arrive in the same read: the client then reports only
``KafkaConnectionError: socket disconnected``, and which of the two a failed login reports is down to timing
(measured on the test broker: the refusal was seen in roughly one bootstrap attempt in four).

The fix wraps ``_sock_recv`` of both transports: when a read returns data *and* an error, it returns the
data alone, so the protocol parses the response (the refusal fails the connection with
``SaslAuthenticationFailedError``); the error is not lost, the next read of the closed socket meets it
again. A read that returns only data or only an error is passed on unchanged, so the wrapper is harmless
on a kafka-python that no longer drops the data. Without ``kafka.net.transport`` (kafka-python 2.x) there is
nothing to fix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_MARK = "_complaint_stream_delivers_data_before_error"

Recv = Callable[[Any], tuple[bytes, BaseException | None]]


def deliver_data_before_error(recv: Recv) -> Recv:
    """``_sock_recv`` that never returns data together with an error: the data now, the error next time."""

    @functools.wraps(recv)
    def _sock_recv(self: Any) -> tuple[bytes, BaseException | None]:
        data, err = recv(self)
        if data and err is not None:
            return data, None
        return data, err

    setattr(_sock_recv, _MARK, True)
    return _sock_recv


def apply() -> bool:
    """Install the fix (idempotent); False when this kafka-python has no such transport to fix."""
    try:
        from kafka.net import transport
    except ImportError:
        return False
    patched = False
    for name in ("KafkaTCPTransport", "KafkaSSLTransport"):
        cls: Any = getattr(transport, name, None)
        recv = vars(cls).get("_sock_recv") if cls is not None else None
        if recv is None:
            continue
        if not getattr(recv, _MARK, False):
            cls._sock_recv = deliver_data_before_error(recv)
        patched = True
    return patched
