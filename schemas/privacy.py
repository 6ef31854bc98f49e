"""Masking personal data in text meant for people: logs, error messages, dead letters."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def mask_msisdn(msisdn: str) -> str:
    """Show the national number as 138****1234; never more than 3 leading and 4 trailing digits."""
    digits = "".join(_DIGITS.findall(msisdn or ""))
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 8:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def redact_phone_numbers(text: str) -> str:
    """Mask every Chinese mobile number inside free text (for error messages and logs)."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
