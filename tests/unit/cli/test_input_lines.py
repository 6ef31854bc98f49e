"""Input read as bytes, one line at a time: binary lines, oversized records and failed deliveries are
reported by line number (and dead-lettered by `publish`), the other lines still go; failures of the
cluster are one line with an exit code. No broker: the producer is a fake."""

from __future__ import annotations

import hashlib
import json

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, SaslAuthenticationFailedError
from kafka.future import Future

from complaint_stream import topics
from complaint_stream.channel_api import ChannelPublisher, NotText, SubmissionRejected, line_text
from complaint_stream.cli.main import EXIT_NOPERM, EXIT_UNAVAILABLE, describe_failure, main
from complaint_stream.kafka.clients import KafkaAuthFailed, KafkaUnavailable, client_config
from complaint_stream.kafka.clients import describe_failure as describe_connect_failure
from complaint_stream.kafka.records import RecordTooLarge, human_size
from complaint_stream.schemas import DeadLetter
from complaint_stream.settings import SettingsError, load_settings
from tests.support.factories import submission

SETTINGS = load_settings(environ={})


def jline(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


# -- line_text ------------------------------------------------------------------------------

def test_a_line_is_its_utf8_text_without_the_line_break_or_a_leading_bom():
    assert line_text("价格 {}\r\n".encode()) == "价格 {}"
    assert line_text(b"\xef\xbb\xbf{}\n", number=1) == "{}"
    assert line_text("already text\n") == "already text"


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"text": "ab\xffcd"}\n', "not UTF-8 text (byte 0xff at offset 12)"),
    (b"\xc3", "not UTF-8 text (byte 0xc3 at offset 0)"),             # cut in the middle of a character
    (b'{"a": 1}\x00\x00', "not text: NUL byte at offset 8"),         # valid UTF-8, but binary
    (b"\x00\xff", "not text: NUL byte at offset 0"),                 # the first offending byte is named
    (b"ok \xfe\x00", "not UTF-8 text (byte 0xfe at offset 3)"),
])
def test_a_line_that_is_not_text_says_which_byte_and_where(raw, message):
    with pytest.raises(NotText) as err:
        line_text(raw)
    assert str(err.value) == message


def test_sizes_read_like_the_limit():
    assert human_size(1_258_400) == "1.2 MiB" and human_size(1 << 20) == "1 MiB"
    assert human_size(2048) == "2 KiB" and human_size(12) == "12 bytes"
    assert str(RecordTooLarge(1_258_400, 1 << 20)) == \
        "record of 1.2 MiB exceeds the 1 MiB limit (1258400 > 1048576 bytes)"


# -- publish_lines with a fake producer --------------------------------------------------------

class FakeProducer:
    """Records what is sent; a key in ``too_large`` raises at send, one in ``fail`` fails its future later,
    one in ``never`` is never acknowledged."""

    max_request_size = 1 << 20

    def __init__(self, too_large=(), fail=None, never=(), dead_letters_fail=False):
        self.too_large, self.fail, self.never = set(too_large), dict(fail or {}), set(never)
        self.dead_letters_fail = dead_letters_fail
        self.sent: list[tuple[str, str, object]] = []
        self.unresolved: list[tuple[str, Future]] = []
        self.closed = False

    def send(self, topic, key, envelope):
        if key in self.too_large:
            raise RecordTooLarge(1_258_400, self.max_request_size)
        fut = Future()
        self.sent.append((topic.name, key, envelope))
        self.unresolved.append((key, fut))
        if topic is topics.DEAD_LETTERS and self.dead_letters_fail:
            fut.failure(KafkaTimeoutError("dead letter timed out"))
        return fut

    def flush(self, timeout=None):
        for key, fut in self.unresolved:
            if fut.is_done or key in self.never:
                continue
            if key in self.fail:
                fut.failure(self.fail[key])
            else:
                fut.success(None)
        self.unresolved = [(k, f) for k, f in self.unresolved if not f.is_done]

    def close(self, timeout=None):
        self.closed = True

    def letters(self) -> dict[int, DeadLetter]:
        return {int(key.rsplit(":", 1)[1]): env.data for topic, key, env in self.sent
                if topic == topics.DEAD_LETTERS.name}

    def submissions(self) -> list[str]:
        return [key for topic, key, _ in self.sent if topic == topics.SUBMISSIONS.name]


def key_of(i: int) -> str:
    sub = submission(i)
    return f"{sub['channel']}:{sub['channel_ref']}"


def test_binary_and_oversized_lines_are_reported_and_dead_lettered_and_the_rest_still_go():
    huge = submission(3, text="长" * 600_000)  # 1.8 MB: a schema violation whose dead letter must still fit
    lines = [jline(submission(1)), b"\xff\xfe binary \x00 junk\n", jline(huge), jline(submission(4)),
             b"\n", jline(submission(6)), b'{"channel": "app"\x00}\n', jline(submission(8))]
    fake = FakeProducer(too_large={key_of(4)})
    summary = ChannelPublisher(SETTINGS, producer=fake).publish_lines(lines, source_name="in.jsonl")

    assert summary.sent == 3 and fake.submissions() == [key_of(1), key_of(6), key_of(8)]
    reasons = dict(summary.rejected)
    assert sorted(reasons) == [2, 3, 4, 7]
    assert reasons[2] == "not UTF-8 text (byte 0xff at offset 0)"
    assert "text has 600000 characters" in reasons[3]
    assert reasons[4] == "record of 1.2 MiB exceeds the 1 MiB limit (1258400 > 1048576 bytes)"
    assert reasons[7] == "not text: NUL byte at offset 17"

    letters = fake.letters()
    assert sorted(letters) == [2, 3, 4, 7]
    assert {n: dl.error.type for n, dl in letters.items()} == {
        2: "invalid_encoding", 3: "schema_violation", 4: "delivery_failed", 7: "invalid_encoding"}
    assert letters[2].original_value == b"\xff\xfe binary \x00 junk" and not letters[2].truncated
    big = jline(huge).rstrip(b"\n")
    assert letters[3].truncated and letters[3].original_size == len(big)
    assert letters[3].original_sha256 == hashlib.sha256(big).hexdigest()
    assert len(letters[3].original_value) < len(big) and big.startswith(letters[3].original_value)
    for dl in letters.values():  # every dead letter fits in a record
        assert len(dl.model_dump_json()) < fake.max_request_size


def test_failures_that_come_back_through_the_future_are_reported_per_line():
    lines = [jline(submission(i)) for i in range(1, 6)]
    fake = FakeProducer(fail={key_of(2): MessageSizeTooLargeError("too big for the topic"),
                              key_of(4): KafkaTimeoutError("Batch expired")})
    summary = ChannelPublisher(SETTINGS, producer=fake).publish_lines(lines, source_name="in.jsonl")
    assert summary.sent == 3
    reasons = dict(summary.rejected)
    assert sorted(reasons) == [2, 4]
    assert reasons[2].startswith("delivery failed: the broker refused the record of")
    assert "as too large: [Error 10] MessageSizeTooLargeError: too big for the topic" in reasons[2]
    assert reasons[4] == "delivery failed: KafkaTimeoutError: Batch expired"
    # the refused record is dead-lettered; the timed-out one is not (its dead letter would not get through)
    assert sorted(fake.letters()) == [2] and fake.letters()[2].error.type == "delivery_failed"


def test_a_dead_letter_that_fails_is_reported_with_its_line():
    fake = FakeProducer(dead_letters_fail=True)
    summary = ChannelPublisher(SETTINGS, producer=fake).publish_lines([b"not json\n", jline(submission(2))])
    assert summary.sent == 1
    (number, reason), = summary.rejected
    assert number == 1 and reason.startswith("invalid JSON: Expecting value")
    assert reason.endswith("; its dead letter was not written either: KafkaTimeoutError: dead letter timed out")


def test_records_never_acknowledged_are_reported_after_the_flush_timeout():
    fake = FakeProducer(never={key_of(2)})
    pub = ChannelPublisher(SETTINGS, producer=fake)
    pub.flush_timeout = 0.01
    summary = pub.publish_lines([jline(submission(i)) for i in (1, 2, 3)])
    assert summary.sent == 2
    assert summary.rejected == [(2, "delivery failed: no acknowledgement from Kafka at 127.0.0.1:19092 within 0.01 s")]


# -- classify, replay and train read bytes too ------------------------------------------------------

def test_classify_reports_binary_lines_and_classifies_the_rest(tmp_path, capsys):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "\xe4\xbf\xa1\xe5\x8f\xb7\xe5\xb7\xae", "channel": "app"}\n'
                     b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n"
                     b'{"text": "Internet keeps dropping", "channel": "web"}\n')
    assert main(["classify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert err.splitlines() == ["line 2: not UTF-8 text (byte 0x89 at offset 0)",  # a PNG signature and header
                                "line 3: invalid JSON: Expecting value", "line 4: not text: NUL byte at offset 0"]
    assert [json.loads(line)["category"] for line in out.splitlines()][0] == "network" and len(out.splitlines()) == 2


def test_replay_reports_a_line_that_is_not_utf8(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COMPLAINTS_STATE_DIR", str(tmp_path))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xff\xfe\x00junk\n\n")
    assert main(["replay", "intake", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 1: rejected: invalid_encoding: value is not UTF-8" in err and "Traceback" not in err


def test_classifier_train_reports_binary_lines(tmp_path, capsys):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\xff\n")
    assert main(["classifier", "train", str(path), "--out", str(tmp_path / "m.npz")]) == 1
    assert "line 1: not UTF-8 text (byte 0xff at offset 0)" in capsys.readouterr().err


# -- failures of the cluster: one line and an exit code ---------------------------------------------

def test_every_client_waits_a_bounded_time_and_backs_off_exponentially_up_to_a_cap():
    cfg = client_config(SETTINGS.with_overrides(kafka_connect_timeout_seconds=2.5))
    assert cfg["bootstrap_timeout_ms"] == 2500
    assert 100 <= cfg["reconnect_backoff_ms"] <= 250 and 5000 <= cfg["reconnect_backoff_max_ms"] <= 10000
    with pytest.raises(SettingsError, match="KAFKA_CONNECT_TIMEOUT_SECONDS"):
        load_settings(environ={"COMPLAINTS_KAFKA_CONNECT_TIMEOUT_SECONDS": "0"})


@pytest.mark.parametrize(("error", "reason"), [
    (None, "no connection could be made"),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (OSError("111 ECONNREFUSED"), "connection refused"),
    (OSError("DNS Resolution failure"), "host name not found"),
    (OSError("Request timed out after 4997 ms"), "the port accepts connections but no Kafka answer came"
                                                 " (is it a Kafka listener for PLAINTEXT?)"),
    (OSError("[Errno 104] Connection reset by peer"), "the server closed the connection"
                                                      " (is it a Kafka listener for PLAINTEXT?)"),
    (ValueError("something else"), "ValueError: something else"),
])
def test_why_the_cluster_could_not_be_reached_is_said_in_words(error, reason):
    assert describe_connect_failure(error, SETTINGS) == reason


@pytest.mark.parametrize(("exc", "line", "code"), [
    (KafkaUnavailable("cannot reach Kafka at b:1 within 10 s: connection refused"),
     "cannot reach Kafka at b:1 within 10 s: connection refused", EXIT_UNAVAILABLE),
    (KafkaAuthFailed("Kafka at b:1 refused this client"), "Kafka at b:1 refused this client", EXIT_NOPERM),
    (SaslAuthenticationFailedError("bad password"),
     "Kafka at 127.0.0.1:19092: [Error 58] SaslAuthenticationFailedError: bad password", EXIT_NOPERM),
    (KafkaTimeoutError("Timeout waiting for future"),
     "Kafka at 127.0.0.1:19092: KafkaTimeoutError: Timeout waiting for future", EXIT_UNAVAILABLE),
    (UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
     "input is not UTF-8 text: invalid start byte (byte 0xff at offset 2)", 1),
    (PermissionError(13, "Permission denied"), "[Errno 13] Permission denied", 1),
])
def test_known_failures_are_one_line_and_an_exit_code(exc, line, code):
    assert describe_failure(exc, SETTINGS) == (line, code)


def test_a_bug_is_not_disguised():
    assert describe_failure(KeyError("x"), SETTINGS) is None
    assert describe_failure(SubmissionRejected("x"), SETTINGS) is None
