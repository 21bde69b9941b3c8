"""A receiver's `Retry-After`, read the one way every caller needs."""

from __future__ import annotations

import email.utils
import math
from datetime import datetime, timezone

import httpx


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds from now: a number, or an HTTP date; never negative, and None
    when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if seconds is None or not math.isfinite(seconds):  # "nan" and "inf" parse as floats
        return None
    return max(0.0, seconds)


def _seconds_until(http_date: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # a "-0000" zone: UTC, and naive datetimes cannot be compared
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - datetime.now(timezone.utc)).total_seconds()
