"""When a local day's hour starts happen in UTC, with daylight-saving time done right.

A local hour start may never happen (the clocks jump over it in spring) or happen twice (the
clocks go back in autumn). The first gives no instant; the second gives its first occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600
_HOURS = tuple(timedelta(hours=h) for h in range(24))


def hour_starts_in_utc(zone: tzinfo, ordinal: int, hours: Sequence[int]) -> list[tuple[int, int]]:
    """`(hour, UTC epoch seconds)` for each of `hours` (ascending) that happens on local day
    `ordinal` (`date.toordinal()`), in time order."""
    midnight = datetime.fromordinal(ordinal)
    offset = zone.utcoffset(midnight)
    local_midnight = (ordinal - _UNIX_EPOCH_ORDINAL) * _SECONDS_PER_DAY
    # fold=1 at the next midnight reads the offset after any transition at that very moment.
    # Equal offsets at both ends mean the day has no transition: tzdata has no zone whose
    # offset changes and changes back within two days (checked for 1970-2100).
    if offset == zone.utcoffset(datetime.fromordinal(ordinal + 1).replace(fold=1)):
        utc_midnight = local_midnight - _seconds(offset)
        return [(h, utc_midnight + h * _SECONDS_PER_HOUR) for h in hours]
    return _hour_starts_across_transition(zone, midnight, local_midnight, hours)


def _hour_starts_across_transition(
    zone: tzinfo, midnight: datetime, local_midnight: int, hours: Sequence[int]
) -> list[tuple[int, int]]:
    starts = []
    for h in hours:
        wall = midnight + _HOURS[h]
        # PEP 495: fold=0 reads the offset before a transition, fold=1 the one after.
        before = zone.utcoffset(wall)
        after = zone.utcoffset(wall.replace(fold=1))
        if before < after:  # the clocks moved forward over this wall time: it never happens
            continue
        starts.append((h, local_midnight + h * _SECONDS_PER_HOUR - _seconds(before)))
    return starts


def _seconds(offset: timedelta | None) -> int:
    if offset is None:
        raise ValueError("the zone must give a UTC offset for local times")
    return offset.days * _SECONDS_PER_DAY + offset.seconds
