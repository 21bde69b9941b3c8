"""The original spec's `generateOptimalSchedule` behaviour, made correct."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from contracts import (
    AudienceData,
    BestTime,
    HistoricalPerformance,
    ScheduleInput,
    ScheduleSlot,
    decode,
)
from services.planner.domain import UNKNOWN_HOUR_DISCOUNT, generate_optimal_schedule, hour_scores

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_ONLY = ["monday", "tuesday", "wednesday", "thursday", "friday"]


def schedule_input(
    zone: str = "America/New_York",
    hours: list[int] = [9, 12, 18, 19, 20],
    days: list[str] = WEEKDAYS_ONLY,
    best: dict[int, float] | None = None,
) -> ScheduleInput:
    best = {19: 0.12, 12: 0.08, 9: 0.03} if best is None else best
    return ScheduleInput(
        platform="instagram",
        content_type="reel",
        audience_data=AudienceData(timezone=zone, activity_hours=hours, peak_days=days),
        historical_performance=HistoricalPerformance(
            best_times=[BestTime(hour=h, engagement_rate=r) for h, r in best.items()]
        ),
    )


# Wednesday 2025-01-15, 08:00 in New York (UTC-5)
WEDNESDAY_MORNING = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)


def local(slot: ScheduleSlot, zone: ZoneInfo = NEW_YORK) -> datetime:
    return slot.timestamp.astimezone(zone)


def test_the_best_slot_is_the_best_hour_on_the_next_peak_day() -> None:
    (slot,) = generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING)

    assert local(slot) == datetime(2025, 1, 15, 19, 0, tzinfo=NEW_YORK)
    assert slot.timestamp == datetime(2025, 1, 16, 0, 0, tzinfo=UTC)
    assert slot.timestamp.tzinfo == UTC
    assert slot.expected_engagement == 0.12
    assert (slot.platform.value, slot.content_type.value) == ("instagram", "reel")


def test_slots_are_ranked_by_engagement_then_time_and_count_is_honoured() -> None:
    slots = generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING, count=8)

    assert len(slots) == 8
    # Wed, Thu, Fri at 19:00 (0.12), then Mon and Tue; then 12:00 (0.08) from Wednesday on
    assert [(local(s).strftime("%a %H"), s.expected_engagement) for s in slots] == [
        ("Wed 19", 0.12), ("Thu 19", 0.12), ("Fri 19", 0.12), ("Mon 19", 0.12), ("Tue 19", 0.12),
        ("Wed 12", 0.08), ("Thu 12", 0.08), ("Fri 12", 0.08),
    ]


def test_every_slot_is_an_active_hour_on_a_peak_day_in_the_audience_timezone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    slots = generate_optimal_schedule(
        schedule_input(zone="Asia/Tokyo", days=["sat", "sunday"]), WEDNESDAY_MORNING, count=50
    )

    assert len(slots) == 10  # 5 hours on one Saturday and one Sunday in the next 7 days
    for slot in slots:
        assert local(slot, tokyo).strftime("%A") in {"Saturday", "Sunday"}
        assert local(slot, tokyo).hour in {9, 12, 18, 19, 20}
        assert local(slot, tokyo).minute == 0


def test_count_larger_than_the_candidates_returns_them_all_once() -> None:
    slots = generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING, count=1000)

    assert len(slots) == len({s.timestamp for s in slots}) == 5 * 5


@pytest.mark.parametrize("horizon_days", [0.25, 1, 3, 7, 14])
def test_slots_stay_inside_the_horizon(horizon_days: float) -> None:
    end = WEDNESDAY_MORNING + timedelta(days=horizon_days)

    slots = generate_optimal_schedule(
        schedule_input(), WEDNESDAY_MORNING, count=100, horizon_days=horizon_days
    )

    assert all(WEDNESDAY_MORNING <= s.timestamp <= end for s in slots)


def test_slots_stay_inside_not_before_and_not_after() -> None:
    not_before = WEDNESDAY_MORNING + timedelta(days=1, hours=5)  # Thursday 13:00 local
    not_after = WEDNESDAY_MORNING + timedelta(days=2, hours=11)  # Friday 19:00 local

    slots = generate_optimal_schedule(
        schedule_input(), WEDNESDAY_MORNING, count=100, not_before=not_before, not_after=not_after
    )

    assert [local(s).strftime("%a %H") for s in slots] == [
        "Thu 19", "Fri 19", "Fri 12", "Thu 18", "Thu 20", "Fri 18", "Fri 09"
    ]
    assert all(not_before <= s.timestamp <= not_after for s in slots)


def test_the_horizon_counts_from_not_before() -> None:
    not_before = WEDNESDAY_MORNING + timedelta(days=30)

    slots = generate_optimal_schedule(
        schedule_input(), WEDNESDAY_MORNING, count=100, not_before=not_before
    )

    assert slots and all(
        not_before <= s.timestamp <= not_before + timedelta(days=7) for s in slots
    )


def test_a_window_opening_inside_an_active_hour_is_a_slot_rounded_up_to_the_minute() -> None:
    now = datetime(2025, 1, 15, 17, 20, 5, 7, tzinfo=UTC)  # 12:20:05 in New York, active

    slots = generate_optimal_schedule(schedule_input(best={12: 0.5}), now, count=2)

    assert slots[0].timestamp == datetime(2025, 1, 15, 17, 21, tzinfo=UTC)
    assert slots[0].expected_engagement == 0.5
    assert local(slots[1]).strftime("%a %H:%M") == "Thu 12:00"


def test_a_window_opening_on_an_hour_start_is_one_slot_not_two() -> None:
    now = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)  # 12:00 sharp in New York

    slots = generate_optimal_schedule(schedule_input(), now, count=100)

    assert slots.count(slots[0]) == 1
    assert len({s.timestamp for s in slots}) == len(slots)
    assert now in {s.timestamp for s in slots}


def test_a_window_opening_outside_active_hours_is_not_a_slot() -> None:
    slots = generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING, count=100)

    assert WEDNESDAY_MORNING + timedelta(minutes=1) not in {s.timestamp for s in slots}
    assert all(local(s).minute == 0 for s in slots)


def test_without_a_peak_day_in_the_window_any_day_will_do() -> None:
    saturday = datetime(2025, 1, 18, 12, 0, tzinfo=UTC)  # 07:00 in New York

    (slot,) = generate_optimal_schedule(schedule_input(), saturday, horizon_days=1)

    assert local(slot).strftime("%a %H") == "Sat 19"


def test_without_an_active_hour_in_the_window_the_window_opening_is_the_slot() -> None:
    now = datetime(2025, 1, 15, 13, 0, 30, tzinfo=UTC)  # 08:00:30 in New York

    (slot,) = generate_optimal_schedule(schedule_input(), now, horizon_days=1 / 48)

    assert slot.timestamp == datetime(2025, 1, 15, 13, 1, tzinfo=UTC)
    assert slot.expected_engagement == 0.0


def test_an_empty_history_prefers_the_earliest_active_hour() -> None:
    slots = generate_optimal_schedule(schedule_input(best={}), WEDNESDAY_MORNING, count=2)

    assert [local(s).strftime("%a %H") for s in slots] == ["Wed 09", "Wed 12"]
    assert [s.expected_engagement for s in slots] == [0.0, 0.0]


def test_hours_missing_from_the_history_score_a_discounted_mean() -> None:
    history = HistoricalPerformance(best_times=[
        BestTime(hour=19, engagement_rate=0.1),
        BestTime(hour=19, engagement_rate=0.3),  # reported twice: the mean counts
        BestTime(hour=9, engagement_rate=0.2),
    ])

    scores = hour_scores(history)

    assert scores[19] == pytest.approx(0.2)
    assert scores[9] == pytest.approx(0.2)
    assert scores[0] == pytest.approx(UNKNOWN_HOUR_DISCOUNT * 0.2)
    assert hour_scores(HistoricalPerformance()) == [0.0] * 24


@pytest.mark.parametrize(
    ("zone", "day", "hour", "expected_utc"),
    [
        ("America/New_York", "2025-03-09", 2, None),  # skipped in spring
        ("America/New_York", "2025-11-02", 1, "2025-11-02T05:00"),  # repeated: the first
        ("Europe/London", "2025-03-30", 1, None),
        ("Europe/London", "2025-10-26", 1, "2025-10-26T00:00"),
        ("Australia/Lord_Howe", "2025-10-05", 2, None),  # half-hour jump over 02:00
        ("America/Santiago", "2025-09-07", 0, None),  # midnight skipped
        ("America/Santiago", "2025-04-05", 23, "2025-04-06T02:00"),  # 23:00 repeated
        ("Pacific/Chatham", "2025-09-28", 3, None),  # 02:45 -> 03:45
        ("Pacific/Chatham", "2025-04-06", 3, "2025-04-05T13:15"),
        ("Pacific/Apia", "2011-12-30", 12, None),  # the day Samoa skipped
    ],
)
def test_clock_changes(zone: str, day: str, hour: int, expected_utc: str | None) -> None:
    start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone)) - timedelta(hours=6)

    slots = generate_optimal_schedule(
        schedule_input(zone=zone, hours=[hour], days=[]), start, count=10, horizon_days=1.5
    )

    timestamps = {s.timestamp for s in slots}
    day_slots = [t for t in timestamps if t.astimezone(ZoneInfo(zone)).date().isoformat() == day]
    if expected_utc is None:
        assert day_slots == []
    else:
        assert day_slots == [datetime.fromisoformat(expected_utc).replace(tzinfo=UTC)]


def test_slots_are_valid_wire_models() -> None:
    for slot in generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING, count=5):
        assert decode(ScheduleSlot, slot.to_bytes()) == slot
        assert ScheduleSlot.model_validate(slot.model_dump()) == slot


@pytest.mark.parametrize(
    "options",
    [
        {"count": 0},
        {"horizon_days": -1},
        {"not_after": WEDNESDAY_MORNING - timedelta(seconds=1)},
        {"not_before": datetime(2025, 1, 20)},
    ],
)
def test_bad_arguments_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        generate_optimal_schedule(schedule_input(), WEDNESDAY_MORNING, **options)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_optimal_schedule(schedule_input(), datetime(2025, 1, 15, 13))
