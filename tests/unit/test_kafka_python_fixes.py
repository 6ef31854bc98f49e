"""kafka-python hands a broker's last response to the protocol before it reports the closed connection."""

from __future__ import annotations

import socket

import pytest

from complaint_stream.kafka import kafka_python_fixes


def test_data_read_together_with_an_error_is_delivered_first():
    err = ConnectionError("socket disconnected")
    replies = iter([(b"response", err)])
    recv = kafka_python_fixes.deliver_data_before_error(lambda self: next(replies))
    assert recv(None) == (b"response", None)


@pytest.mark.parametrize("reply", [(b"data", None), (b"", ConnectionError("gone")), (b"", None)])
def test_a_read_with_only_data_or_only_an_error_is_unchanged(reply):
    recv = kafka_python_fixes.deliver_data_before_error(lambda self: reply)
    assert recv(None) == reply


def test_the_real_transport_returns_the_broker_s_last_words_then_the_disconnection():
    import kafka.net.transport as transport  # kafka-python 3's transport: a missing module must fail, not skip
    assert kafka_python_fixes.apply() is True
    assert kafka_python_fixes.apply() is True  # idempotent: wrapped once
    recv = transport.KafkaTCPTransport._sock_recv
    assert getattr(recv, "__wrapped__", None) is not None
    assert getattr(recv.__wrapped__, "__wrapped__", None) is None

    ours, broker = socket.socketpair()
    with ours, broker:
        ours.setblocking(False)
        broker.sendall(b"SaslAuthenticate error response")
        broker.close()  # the broker closes right after its answer
        tr = object.__new__(transport.KafkaTCPTransport)
        tr._sock, tr._closed = ours, False
        data, err = tr._sock_recv()
        assert (data, err) == (b"SaslAuthenticate error response", None)
        data, err = tr._sock_recv()
        assert data == b"" and "socket disconnected" in str(err)
