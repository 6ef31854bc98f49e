"""Personal data: keyed hashing for re-keying by customer; masking (from ``schemas.privacy``) for logs."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from complaint_stream.schemas.privacy import mask_msisdn, redact_phone_numbers

__all__ = ["customer_key", "mask_msisdn", "redact_phone_numbers"]


def customer_key(msisdn: str, secret: str | SecretStr) -> str:
    """A stable pseudonymous key for one customer: HMAC-SHA256 of the E.164 number, hex, 32 chars."""
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not raw:
        raise ValueError("customer key secret must not be empty")
    return hmac.new(raw.encode("utf-8"), msisdn.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
