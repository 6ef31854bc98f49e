"""Every log record masks phone numbers, including exception traces and records of other libraries.

Masking the worker's own log lines is not enough: a traceback carries the text of its exception, and
pydantic's messages quote the input (``input_value='我的号码13812345678…'``). :func:`install` replaces the
process's log record factory, so each record is redacted once, when it is made — before any handler
or formatter sees it, whoever configures the handlers (faust's worker sets up its own) — and masks
what an uncaught exception prints through ``sys.excepthook``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from complaint_stream.schemas.privacy import redact_phone_numbers

_installed = False


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record's message, exception text and stack in place (args are merged into the message)."""
    record.template = str(record.msg)  # the unformatted message, for filters that group similar lines
    try:
        message = record.getMessage()
    except Exception:
        message = f"{record.msg!r} % {record.args!r}"
    # () and not None: formatters such as mode's (faust's logging) turn None into (None,) and format again
    record.msg, record.args = redact_phone_numbers(message), ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact_phone_numbers("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        # keep exc_info for handlers that only test it; formatters use the cached, masked exc_text
    if record.stack_info:
        record.stack_info = redact_phone_numbers(record.stack_info)
    return record


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact_phone_numbers("".join(traceback.format_exception(kind, value, tb))))


def install() -> None:
    """Redact every log record made from now on in this process (idempotent)."""
    global _installed
    if _installed:
        return
    base: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(base(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    sys.excepthook = _excepthook
    _installed = True
