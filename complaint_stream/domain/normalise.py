"""Normalisation of what channel systems send. The functions live beside the schemas that
validate with them (``complaint_stream.schemas.normalise``); this module keeps the old name."""

from __future__ import annotations

from complaint_stream.schemas.normalise import (
    CHANNEL_ALIASES,
    CHANNELS,
    CHINA_TZ,
    check_time_window,
    clean_text,
    normalise_channel,
    normalise_msisdn,
    to_utc,
)

__all__ = ["CHANNELS", "CHANNEL_ALIASES", "CHINA_TZ", "check_time_window", "clean_text", "normalise_channel",
           "normalise_msisdn", "to_utc"]
