"""Normalisation of what channel systems send. The functions live beside the schemas that
validate with them (``complaint_stream.schemas.normalise``); this module keeps the old name."""

from __future__ import annotations

from complaint_stream.schemas.normalise import (
    ACCEPTED_PHONE_TYPES,
    CHANNEL_ALIASES,
    CHANNELS,
    CHINA_TZ,
    ResolvedRegion,
    check_time_window,
    clean_region_name,
    clean_required_text,
    clean_text,
    has_visible_text,
    normalise_channel,
    normalise_msisdn,
    resolve_region,
    to_utc,
)

__all__ = ["ACCEPTED_PHONE_TYPES", "CHANNELS", "CHANNEL_ALIASES", "CHINA_TZ", "ResolvedRegion", "check_time_window",
           "clean_region_name", "clean_required_text", "clean_text", "has_visible_text", "normalise_channel",
           "normalise_msisdn", "resolve_region", "to_utc"]
