"""Personal data: masking phone numbers for logs, keyed hashing for re-keying by customer."""

from __future__ import annotations

import hashlib
import hmac
import re

_DIGITS = re.compile(r"\d")


def mask_msisdn(msisdn: str) -> str:
    """Show the national number as 138****1234; never more than 3 leading and 4 trailing digits."""
    digits = "".join(_DIGITS.findall(msisdn or ""))
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 8:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def customer_key(msisdn: str, secret: str) -> str:
    """A stable pseudonymous key for one customer: HMAC-SHA256 of the E.164 number, hex, 32 chars."""
    if not secret:
        raise ValueError("customer key secret must not be empty")
    return hmac.new(secret.encode("utf-8"), msisdn.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def redact_phone_numbers(text: str) -> str:
    """Mask every Chinese mobile number inside free text (for error messages and logs)."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
