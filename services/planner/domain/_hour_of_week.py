"""Local hours of the week, and the instants a window offers to post at.

Hour of the week: Monday 00:00-00:59 local is 0, Sunday 23:00-23:59 is 167. Every estimate
is kept per local hour of the week, because people live by their wall clocks: after a
daylight-saving change the same audience shows up at the same local hour, an hour earlier or
later in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from ._local_hour_starts import hour_starts_in_utc
from ._window import SchedulingWindow

HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7
HOURS_PER_WEEK = HOURS_PER_DAY * DAYS_PER_WEEK
_ALL_HOURS = tuple(range(HOURS_PER_DAY))


def hour_of_week(weekday: int, hour: int) -> int:
    """Monday is weekday 0."""
    return weekday * HOURS_PER_DAY + hour


def local_hour_of_week(epoch: float, zone: tzinfo) -> int:
    local = datetime.fromtimestamp(epoch, zone)
    return hour_of_week(local.weekday(), local.hour)


@dataclass(frozen=True, slots=True)
class Candidate:
    """An instant to post at: UTC epoch seconds, its local hour of the week and local day."""

    epoch: float
    how: int
    ordinal: int  # local `date.toordinal()`
    minute: int  # local minute of the day


@dataclass(frozen=True, slots=True)
class Candidates:
    """The instants a window offers, in time order, as arrays (one entry per candidate)."""

    epochs: np.ndarray  # float64, UTC epoch seconds
    hows: np.ndarray  # local hour of the week
    ordinals: np.ndarray  # local day
    minutes: np.ndarray  # local minute of the day

    def __len__(self) -> int:
        return len(self.epochs)

    def at(self, index: int) -> Candidate:
        return Candidate(float(self.epochs[index]), int(self.hows[index]), int(self.ordinals[index]),
                         int(self.minutes[index]))


@lru_cache(maxsize=4096)
def _hour_starts(zone: tzinfo, first_day: int, last_day: int) -> Candidates:
    """Every local hour start of days `first_day`..`last_day`, in time order. Zones are few and
    windows of one day overlap, so these are worth keeping."""
    epochs, hours, ordinals = [], [], []
    for ordinal in range(first_day, last_day + 1):
        for hour, epoch in hour_starts_in_utc(zone, ordinal, _ALL_HOURS):
            epochs.append(epoch)
            hours.append(hour)
            ordinals.append(ordinal)
    order = np.argsort(np.array(epochs, dtype=np.float64), kind="stable")
    epoch_array = np.array(epochs, dtype=np.float64)[order]
    hour_array = np.array(hours, dtype=np.intp)[order]
    ordinal_array = np.array(ordinals, dtype=np.intp)[order]
    weekdays = (ordinal_array - 1) % 7  # ordinal 1 is a Monday
    found = Candidates(epoch_array, weekdays * HOURS_PER_DAY + hour_array, ordinal_array, hour_array * 60)
    for array in (found.epochs, found.hows, found.ordinals, found.minutes):
        array.setflags(write=False)
    return found


def window_candidates(window: SchedulingWindow, zone: tzinfo) -> Candidates:
    """The window's opening minute, then every local hour start inside it, in time order.

    Hour starts the clocks skip never appear; a repeated one appears once, at its first
    occurrence. The opening is left out when it is itself an hour start (it comes once).
    """
    start, end = window.start.timestamp(), window.end.timestamp()
    opening = window.opening.timestamp()
    local = window.opening.astimezone(zone)
    # One day past the end's local date: a fall-back across midnight can put a first
    # occurrence there.
    starts = _hour_starts(zone, window.start.astimezone(zone).toordinal(),
                          window.end.astimezone(zone).toordinal() + 1)
    lo = int(np.searchsorted(starts.epochs, max(start, opening), "left"))
    hi = int(np.searchsorted(starts.epochs, end, "right"))
    if lo < hi and starts.epochs[lo] == opening:
        lo += 1
    ordinal = local.toordinal()
    return Candidates(
        np.concatenate(((opening,), starts.epochs[lo:hi])),
        np.concatenate((((ordinal - 1) % 7 * HOURS_PER_DAY + local.hour,), starts.hows[lo:hi])),
        np.concatenate(((ordinal,), starts.ordinals[lo:hi])),
        np.concatenate(((local.hour * 60 + local.minute,), starts.minutes[lo:hi])),
    )


def candidate_at(epoch: float, zone: tzinfo) -> Candidate:
    local = datetime.fromtimestamp(epoch, zone)
    return Candidate(epoch, hour_of_week(local.weekday(), local.hour), local.toordinal(),
                     local.hour * 60 + local.minute)


@lru_cache(maxsize=1024)
def zone_named(name: str | None) -> tzinfo:
    """The zone, kept: ZoneInfo holds few zones strongly and reads the others' files again."""
    return ZoneInfo(name) if name else timezone.utc
