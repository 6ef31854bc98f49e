"""Phone numbers are masked in every log record, exception traces included, whatever handler prints it."""

from __future__ import annotations

import subprocess
import sys

CODE = r"""
import logging, sys
from complaint_stream import redacted_logs
redacted_logs.install()
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
from mode.utils.logging import ExtensionFormatter  # faust's worker formats with this one
modehandler = logging.StreamHandler(sys.stdout)
modehandler.setFormatter(ExtensionFormatter(fmt="mode %(message)s"))
logging.getLogger("viamode").addHandler(modehandler)
logging.getLogger("viamode").warning("100%% sure, %s", "50% s done for 13812345678")
from pydantic import BaseModel, Field
class M(BaseModel):
    text: str = Field(max_length=5)
logging.getLogger("thirdparty").info("call %s back", "13812345678")
try:
    M(text="我的号码13912345678请回电")
except Exception:
    logging.getLogger("faust.agent").exception("agent crashed")
logging.getLogger("x").warning("stack", stack_info=True)
raise RuntimeError("uncaught: +86 137-1234-5678")
"""


def test_messages_exception_traces_and_uncaught_errors_are_masked():
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert "thirdparty call 138****5678 back" in out
    assert "mode 100% sure, 50% s done for 138****5678" in out and "Logging error" not in out
    assert "agent crashed" in out and "ValidationError" in out and "139****5678" in out
    assert "RuntimeError: uncaught: 137****5678" in out
    for number in ("13812345678", "13912345678", "1234-5678", "12345678"):
        assert number not in out, f"{number} leaked:\n{out}"


def test_a_record_with_a_bad_format_string_is_kept():
    import logging

    from complaint_stream.redacted_logs import redact_record

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items for 13812345678", ("many",), None)
    redact_record(record)
    assert "138****5678" in record.getMessage() and "13812345678" not in record.getMessage()
