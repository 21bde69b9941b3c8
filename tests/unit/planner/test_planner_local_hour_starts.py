"""Clock changes over midnight, which tzdata (1970-2100) never has but a zone could."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo

import pytest

from contracts import AudienceData, ScheduleInput
from planner_schedule_oracle import occurrences
from services.planner.domain import generate_optimal_schedule
from services.planner.domain import _optimal_schedule
from services.planner.domain._local_hour_starts import hour_starts_in_utc

D = date(2030, 6, 12)


class OneClockChange(tzinfo):
    """A zone whose offset changes once, at `at` (naive UTC), from `before` to `after`."""

    def __init__(self, at: datetime, before: timedelta, after: timedelta):
        self.at, self.before, self.after = at, before, after

    def utcoffset(self, dt: datetime | None) -> timedelta:
        assert dt is not None
        wall = dt.replace(tzinfo=None, fold=0)
        old_wall, new_wall = self.at + self.before, self.at + self.after
        if wall < min(old_wall, new_wall):
            return self.before
        if wall >= max(old_wall, new_wall):
            return self.after
        return self.after if dt.fold else self.before  # skipped or repeated: PEP 495

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "test"

    def fromutc(self, dt: datetime) -> datetime:
        utc = dt.replace(tzinfo=None)
        if utc < self.at:
            return (utc + self.before).replace(tzinfo=self)
        wall = utc + self.after
        repeated = self.after < self.before and wall < self.at + self.before
        return wall.replace(tzinfo=self, fold=int(repeated))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


# clocks jump from 22:00 to 00:30 the next day
LONG_GAP_OVER_MIDNIGHT = OneClockChange(at(D, 22), timedelta(0), timedelta(hours=2, minutes=30))
# clocks go back from 00:30 to 22:30 the day before
LONG_REPEAT_OVER_MIDNIGHT = OneClockChange(at(D, 22, 30), timedelta(hours=2), timedelta(0))


@pytest.mark.parametrize("zone", [LONG_GAP_OVER_MIDNIGHT, LONG_REPEAT_OVER_MIDNIGHT])
@pytest.mark.parametrize("day", [D - timedelta(days=1), D, D + timedelta(days=1)])
def test_hour_starts_match_the_wall_clock(zone: OneClockChange, day: date) -> None:
    hours = list(range(24))
    expected = [
        (h, int(found[0].timestamp())) for h in hours if (found := occurrences(zone, day, h))
    ]
    assert hour_starts_in_utc(zone, day.toordinal(), hours) == expected


def test_a_long_gap_over_midnight_skips_the_hours_before_midnight_too() -> None:
    starts = dict(hour_starts_in_utc(LONG_GAP_OVER_MIDNIGHT, D.toordinal(), list(range(24))))
    assert 21 in starts and 22 not in starts and 23 not in starts


def test_a_first_occurrence_past_the_end_dates_local_day_is_found(monkeypatch) -> None:
    # The window ends at 23:00 UTC, shown as 23:00 on D (after the clocks went back); the
    # 00:00 of D+1 was first shown at 22:00 UTC, inside the window.
    monkeypatch.setattr(_optimal_schedule, "ZoneInfo", lambda name: LONG_REPEAT_OVER_MIDNIGHT)
    schedule_input = ScheduleInput(
        platform="youtube",
        content_type="video",
        audience_data=AudienceData(timezone="UTC", activity_hours=[0]),
    )
    now = at(D, 21).replace(tzinfo=timezone.utc)
    not_after = at(D, 23).replace(tzinfo=timezone.utc)

    (slot,) = generate_optimal_schedule(schedule_input, now, not_after=not_after)

    assert slot.timestamp == at(D, 22).replace(tzinfo=timezone.utc)
