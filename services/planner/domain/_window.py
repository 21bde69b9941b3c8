"""The span of time a schedule may use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True, slots=True)
class SchedulingWindow:
    """Both ends inclusive, in UTC; `opening` is the first whole minute in it (or `start`)."""

    start: datetime
    end: datetime
    opening: datetime


def scheduling_window(
    now: datetime,
    horizon_days: float,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> SchedulingWindow:
    """[max(now, not_before), min(not_after, that start + horizon)].

    The horizon counts from the window's start, not from now, so a `not_before` further out
    than the horizon still gets a window instead of an empty one.
    """
    if horizon_days < 0:
        raise ValueError("horizon_days must not be negative")
    start = as_utc(now, "now")
    if not_before is not None:
        start = max(start, as_utc(not_before, "not_before"))
    end = start + timedelta(days=horizon_days)
    if not_after is not None:
        end = min(end, as_utc(not_after, "not_after"))
    if end < start:
        raise ValueError(f"the scheduling window is empty: it ends ({end}) before {start}")
    opening = _ceil_to_minute(start)
    return SchedulingWindow(start, end, opening if opening <= end else start)


def as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(timezone.utc)


def _ceil_to_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)
