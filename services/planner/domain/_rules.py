"""Where a post may not go: blackouts, spacing, daily caps and quota windows of one account.

`SlotRules` answers two questions about an instant: may a post of this account go out then
(`allows`), and if not, from when might it (`next_allowed`). Everything is checked against
the other slots already planned for the same platform account.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType

from contracts import WEEKDAYS, Blackout, Platform

import numpy as np

from ._hour_of_week import Candidate, Candidates, candidate_at, zone_named

_MAX_STEPS = 10_000  # next_allowed gives up after this many jumps (it moves forward each time)


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """At most `limit` posts of one account in any span of `seconds` (a rolling window)."""

    limit: int
    seconds: float


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    min_spacing_seconds: float = 0.0  # between two posts of one account
    daily_cap: int | None = None  # posts per local calendar day of the audience
    quota_windows: tuple[QuotaWindow, ...] = ()


NO_LIMITS = PlatformLimits()

# The platforms' own caps (../shared/platforms.md: TikTok ~15 direct posts per creator per
# 24 h, Instagram 50 per rolling 24 h; YouTube's are per project, counted by the publishers),
# and a cadence that keeps one account's posts from competing with each other.
DEFAULT_LIMITS: Mapping[Platform, PlatformLimits] = MappingProxyType({
    Platform.TIKTOK: PlatformLimits(2 * 3600.0, 4, (QuotaWindow(15, 86_400.0),)),
    Platform.INSTAGRAM: PlatformLimits(2 * 3600.0, 3, (QuotaWindow(50, 86_400.0),)),
    Platform.YOUTUBE: PlatformLimits(2 * 3600.0, 2, ()),
})
UNLIMITED: Mapping[Platform, PlatformLimits] = MappingProxyType({p: NO_LIMITS for p in Platform})


@dataclass(frozen=True, slots=True)
class _Recurring:
    zone: tzinfo | None  # None: the audience's zone (candidates already carry its wall time)
    days: frozenset[int]
    start: int  # minute of the day
    end: int
    wraps: bool  # ends on the next day

    def covers(self, weekday: int, minute: int) -> bool:
        if not self.wraps:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or (
            (weekday - 1) % 7 in self.days and minute < self.end)

    def covers_all(self, weekdays: np.ndarray, minutes: np.ndarray) -> np.ndarray:
        days = list(self.days)
        on_day = np.isin(weekdays, days)
        if not self.wraps:
            return on_day & (minutes >= self.start) & (minutes < self.end)
        return (on_day & (minutes >= self.start)) | (np.isin((weekdays - 1) % 7, days) & (minutes < self.end))


@dataclass
class SlotRules:
    """The rules for one platform account in one plan; `planned` are its other slots."""

    limits: PlatformLimits
    zone: tzinfo
    planned: Sequence[float] = ()
    blackouts: Sequence[Blackout] = ()
    _absolute: list[tuple[float, float]] = field(init=False)
    _recurring: list[_Recurring] = field(init=False)
    _per_day: Counter[int] = field(init=False)
    _closed: bool = field(init=False)  # a cap of zero: nothing may go out at all
    _free: bool = field(init=False)  # nothing to check: every instant is allowed

    def __post_init__(self) -> None:
        limits = self.limits
        self.planned = sorted(self.planned)
        self._absolute = [(b.start.timestamp(), b.end.timestamp())
                          for b in self.blackouts if b.start is not None]
        self._recurring = [_recurring(b) for b in self.blackouts if b.local_start is not None]
        self._per_day = Counter()
        if limits.daily_cap is not None:
            self._per_day.update(datetime.fromtimestamp(p, self.zone).toordinal() for p in self.planned)
        self._closed = limits.daily_cap == 0 or any(q.limit <= 0 for q in limits.quota_windows)
        spaced = limits.min_spacing_seconds > 0 or limits.daily_cap is not None or limits.quota_windows
        self._free = not (self.blackouts or self._closed or (self.planned and spaced))

    def allows(self, candidate: Candidate) -> bool:
        return self._free or self._blocked_until(candidate) is None

    def mask(self, candidates: Candidates) -> np.ndarray | None:
        """Which candidates the rules allow (what `allows` says of each); None: all of them."""
        if self._free:
            return None
        if self._closed:
            return np.zeros(len(candidates), dtype=bool)
        t = candidates.epochs
        allowed = np.ones(len(t), dtype=bool)
        for start, end in self._absolute:
            allowed &= ~((t >= start) & (t < end))
        for rule in self._recurring:
            if rule.zone is None:
                weekdays, minutes = candidates.hows // 24, candidates.minutes
            else:
                local = [datetime.fromtimestamp(e, rule.zone) for e in t.tolist()]
                weekdays = np.array([d.weekday() for d in local], dtype=np.intp)
                minutes = np.array([d.hour * 60 + d.minute for d in local], dtype=np.intp)
            allowed &= ~rule.covers_all(weekdays, minutes)
        if not self.planned:
            return allowed
        planned = np.asarray(self.planned, dtype=np.float64)
        spacing = self.limits.min_spacing_seconds
        if spacing > 0:
            i = np.searchsorted(planned, t - spacing, side="right")
            near = planned[np.minimum(i, len(planned) - 1)]
            allowed &= ~((i < len(planned)) & (near < t + spacing))
        cap = self.limits.daily_cap
        if cap is not None:
            full = [day for day, posts in self._per_day.items() if posts >= cap]
            allowed &= ~np.isin(candidates.ordinals, full)
        for quota in self.limits.quota_windows:
            allowed &= _busiest_windows(planned, t, quota.seconds) < quota.limit
        return allowed

    def next_allowed(self, epoch: float, end: float) -> float | None:
        """The first instant at or after `epoch` (up to `end`) that the rules allow."""
        for _ in range(_MAX_STEPS):
            if epoch > end:
                return None
            until = None if self._free else self._blocked_until(candidate_at(epoch, self.zone))
            if until is None:
                return epoch
            epoch = max(until, epoch + 1.0)
        return None

    # -- the rules ---------------------------------------------------------------------------

    def _blocked_until(self, c: Candidate) -> float | None:
        """None when `c` is allowed, else an instant before which it stays blocked."""
        t = c.epoch
        if self._closed:
            return _FOREVER
        for start, end in self._absolute:
            if start <= t < end:
                return end
        for rule in self._recurring:
            if rule.zone is None:
                weekday, minute = c.how // 24, c.minute
            else:
                local = datetime.fromtimestamp(t, rule.zone)
                weekday, minute = local.weekday(), local.hour * 60 + local.minute
            if rule.covers(weekday, minute):
                return _recurring_end(rule, t, rule.zone or self.zone)
        if not self.planned:
            return None
        spacing = self.limits.min_spacing_seconds
        if spacing > 0:
            i = bisect.bisect_right(self.planned, t - spacing)
            if i < len(self.planned) and self.planned[i] < t + spacing:
                return self.planned[i] + spacing
        cap = self.limits.daily_cap
        if cap is not None and self._per_day[c.ordinal] >= cap:
            return _next_midnight(c.ordinal, self.zone)
        for quota in self.limits.quota_windows:
            if _busiest_window(self.planned, t, quota.seconds) >= quota.limit:
                # the window can free up no sooner than its oldest post leaves it
                i = bisect.bisect_right(self.planned, t - quota.seconds)
                return self.planned[i] + quota.seconds if i < len(self.planned) else t + quota.seconds
        return None


_FOREVER = float("inf")


def _busiest_window(planned: Sequence[float], t: float, seconds: float) -> int:
    """Most planned posts in one `seconds`-long window [a, a + seconds) that also holds `t`.

    The count over a in (t - seconds, t] is largest at a planned post (which it still holds)
    or at t itself: the window [t, t + seconds), which holds the posts planned after t."""
    lo = bisect.bisect_right(planned, t - seconds)
    hi = bisect.bisect_left(planned, t + seconds)
    starts = [t - seconds + 1e-6, t] + [p for p in planned[lo:hi] if p <= t]
    return max(bisect.bisect_left(planned, a + seconds, lo, hi) - bisect.bisect_left(planned, a, lo, hi)
               for a in starts)


def _busiest_windows(planned: np.ndarray, t: np.ndarray, seconds: float) -> np.ndarray:
    """`_busiest_window` for every instant of `t` at once."""
    edge = 1e-6
    # the window opening just after t - seconds ...
    busiest = np.searchsorted(planned, t + edge, "left") - np.searchsorted(planned, t - seconds + edge, "left")
    # ... the window opening at t, which holds the posts planned after it ...
    busiest = np.maximum(busiest, np.searchsorted(planned, t + seconds, "left") - np.searchsorted(planned, t, "left"))
    # ... and every window opening at a planned post in (t - seconds, t]
    from_post = np.searchsorted(planned, planned + seconds, "left") - np.searchsorted(planned, planned, "left")
    holds = (planned[None, :] > t[:, None] - seconds) & (planned[None, :] <= t[:, None])
    return np.maximum(busiest, np.where(holds, from_post[None, :], 0).max(axis=1))


def _recurring(blackout: Blackout) -> _Recurring:
    assert blackout.local_start is not None and blackout.local_end is not None
    start = blackout.local_start.hour * 60 + blackout.local_start.minute
    end = blackout.local_end.hour * 60 + blackout.local_end.minute
    days = frozenset(WEEKDAYS.index(d) for d in blackout.weekdays) or frozenset(range(7))
    zone = zone_named(blackout.timezone) if blackout.timezone else None
    return _Recurring(zone, days, start, end, wraps=end <= start)


def _recurring_end(rule: _Recurring, t: float, zone: tzinfo) -> float:
    """When the occurrence of `rule` that covers `t` ends (first time its end shows)."""
    local = datetime.fromtimestamp(t, zone)
    minute = local.hour * 60 + local.minute
    day = local.date()
    if rule.wraps and minute >= rule.start:
        day += timedelta(days=1)
    wall = datetime(day.year, day.month, day.day, rule.end // 60, rule.end % 60, tzinfo=zone)
    # fold=0 reads a wall time the clocks skipped as the instant just after the jump
    return wall.timestamp()


def _next_midnight(ordinal: int, zone: tzinfo) -> float:
    day = datetime.fromordinal(ordinal + 1)
    return day.replace(tzinfo=zone).timestamp()
