"""Normalisation of what channel systems send: channel aliases, phone numbers, text, time.

Pure functions; they raise ``ValueError`` with a message a channel team can act on.
They run inside schema validation on every decode, so values already in normal
form (what every event after intake carries) take a short path.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

CHANNELS = ("hotline", "app", "web", "store", "sms", "email", "wechat", "regulator")

#: Names channel systems use for the same channel. Keys are compared case-insensitively.
CHANNEL_ALIASES = {
    "10086": "hotline", "call_centre": "hotline", "call_center": "hotline", "callcenter": "hotline",
    "phone": "hotline", "ivr": "hotline", "热线": "hotline", "客服热线": "hotline",
    "mobile_app": "app", "ios": "app", "android": "app", "掌厅": "app", "掌上营业厅": "app", "app客户端": "app",
    "website": "web", "online": "web", "网厅": "web", "网上营业厅": "web",
    "retail": "store", "shop": "store", "营业厅": "store", "门店": "store",
    "text": "sms", "短信": "sms", "10086sms": "sms",
    "e-mail": "email", "mail": "email", "邮件": "email",
    "weixin": "wechat", "wx": "wechat", "微信": "wechat",
    "miit": "regulator", "12300": "regulator", "工信部": "regulator", "通信管理局": "regulator",
    "regulator_appeal": "regulator", "申诉": "regulator",
}

#: China Standard Time. Channel systems that send naive timestamps mean local time (no DST in China).
CHINA_TZ = timezone(timedelta(hours=8), "CST")

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CN_E164 = re.compile(r"\+861[3-9][0-9]{9}")  # already normal: returned as is
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# C0/C1 controls, DEL, zero-width and bidi controls; tabs and newlines are folded separately.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_NEWLINES = re.compile(r"\s*(?:\r\n|\r|\n)\s*")


def normalise_channel(raw: str) -> str:
    """Map a channel name or alias to one of :data:`CHANNELS`."""
    key = str(raw).strip().lower().replace(" ", "_")
    if key in CHANNELS:
        return key
    if key in CHANNEL_ALIASES:
        return CHANNEL_ALIASES[key]
    raise ValueError(f"unknown channel {str(raw)[:40]!r}; expected one of {', '.join(CHANNELS)}")


def normalise_msisdn(raw: str) -> str:
    """Return the phone number in E.164 form (+8613812345678).

    Accepts Chinese mobile numbers with or without +86/0086/86 and with spaces
    or dashes, and any number already in E.164 form.
    """
    if isinstance(raw, str) and _CN_E164.fullmatch(raw):
        return raw
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if _CN_MOBILE.match(digits):
        return "+86" + digits
    if digits.startswith("86") and _CN_MOBILE.match(digits[2:]):
        return "+" + digits
    if digits.startswith("+86"):
        if _CN_MOBILE.match(digits[3:]):
            return digits
        raise ValueError("not a valid Chinese mobile number: +86 must be followed by 11 digits starting 13-19")
    if _E164.match(digits):
        return digits
    raise ValueError("not a valid phone number: expected an 11-digit Chinese mobile number or E.164 (+<country><number>)")


def clean_text(raw: str) -> str:
    """Remove control characters, fold runs of blanks, keep single line breaks, NFC-normalise."""
    text = str(raw)
    # Already clean: every character the steps below change is non-printable except runs of
    # spaces and spaces at either end.
    if (text.isprintable() and "  " not in text and not text.startswith(" ") and not text.endswith(" ")
            and unicodedata.is_normalized("NFC", text)):
        return text
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _NEWLINES.sub("\n", text)
    text = _SPACES.sub(" ", text)
    return text.strip()


def to_utc(value: datetime) -> datetime:
    """Timezone-aware UTC; a naive time is read as China Standard Time (UTC+8)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA_TZ)
    return value.astimezone(UTC)


def check_time_window(value: datetime, now: datetime, max_future: timedelta, max_age: timedelta) -> datetime:
    """Reject times implausibly far in the future or past (clock errors, unit mistakes)."""
    if value > now + max_future:
        raise ValueError(
            f"is {(value - now).total_seconds() / 60:.0f} minutes in the future"
            f" (at most {max_future.total_seconds() / 60:.0f} allowed)"
        )
    if value < now - max_age:
        raise ValueError(f"is more than {max_age.days} days in the past")
    return value
