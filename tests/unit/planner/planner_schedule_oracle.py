"""A slow, obviously-correct reference for the planner's schedule tests.

It finds when a local wall time happens by converting both folds and keeping the ones that
convert back to the same wall time, and it ranks every candidate of every day by brute force.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from contracts import WEEKDAYS, ScheduleInput


def occurrences(zone: ZoneInfo, day: date, hour: int) -> list[datetime]:
    """Every UTC instant at which the local wall time `day hour:00` is shown, earliest first."""
    wall = datetime.combine(day, time(hour))
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            found.add(instant)
    return sorted(found)


def ceil_to_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def expected_schedule(
    schedule_input: ScheduleInput,
    now: datetime,
    count: int = 1,
    horizon_days: float = 7,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> list[tuple[datetime, float]]:
    """(timestamp, score) pairs the planner should return, by brute force."""
    from services.planner.domain import hour_scores

    audience = schedule_input.audience_data
    zone = ZoneInfo(audience.timezone)
    scores = hour_scores(schedule_input.historical_performance)
    start = max(now, not_before) if not_before else now
    end = start + timedelta(days=horizon_days)
    end = min(end, not_after) if not_after else end
    opening = ceil_to_minute(start) if ceil_to_minute(start) <= end else start
    peak = {WEEKDAYS.index(d) for d in audience.peak_days} or set(range(7))

    def ranked(days: set[int]) -> list[tuple[datetime, float]]:
        found: dict[datetime, float] = {}
        local_opening = opening.astimezone(zone)
        if local_opening.hour in audience.activity_hours and local_opening.weekday() in days:
            found[opening] = scores[local_opening.hour]
        day = start.astimezone(zone).date() - timedelta(days=2)
        while day <= end.astimezone(zone).date() + timedelta(days=2):
            for hour in audience.activity_hours if day.weekday() in days else ():
                first = occurrences(zone, day, hour)[:1]
                if first and start <= first[0] <= end:
                    found.setdefault(first[0], scores[hour])
            day += timedelta(days=1)
        return sorted(found.items(), key=lambda item: (-item[1], item[0]))[:count]

    return ranked(peak) or ranked(set(range(7))) or [(opening, 0.0)]


@lru_cache(maxsize=None)
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The UTC instants in `year` at which `zone_name` changes its offset (to the second)."""
    zone = ZoneInfo(zone_name)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(zone).utcoffset()

    found = []
    day = datetime(year, 1, 1, tzinfo=timezone.utc)
    while day.year == year:
        later = day + timedelta(days=1)
        if offset(day) != offset(later):
            low, high = day, later  # offset(low) is the old one, offset(high) the new one
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(day) else (low, middle)
            found.append(high.replace(microsecond=0))
        day = later
    return tuple(found)
