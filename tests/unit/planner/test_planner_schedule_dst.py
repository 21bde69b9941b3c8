"""Property tests: the schedule is right in every timezone, around every clock change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import WEEKDAYS, AudienceData, BestTime, HistoricalPerformance, ScheduleInput
from planner_schedule_oracle import ceil_to_minute, expected_schedule, occurrences, transitions
from services.planner.domain import generate_optimal_schedule, hour_scores
from services.planner.domain._local_hour_starts import hour_starts_in_utc

ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Santiago",  # clocks change at midnight
    "America/Havana",  # midnight repeats in autumn
    "Asia/Kolkata",  # no DST, half-hour offset
    "Pacific/Chatham",  # +12:45, changes at 02:45
    "Europe/Dublin",  # negative DST in tzdata
    "Africa/Casablanca",  # DST suspended for Ramadan
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Asia/Tehran",
    "UTC",
]

settings.register_profile("planner", deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instants_near_clock_changes(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.integers(2008, 2032))
    changes = transitions(zone, year)
    if changes and draw(st.booleans()):
        base = draw(st.sampled_from(changes))
        offset = draw(st.integers(-3 * 86_400, 86_400))
    else:
        base = datetime(year, 1, 1, tzinfo=timezone.utc)
        offset = draw(st.integers(0, 365 * 86_400))
    micro = draw(st.sampled_from([0, 0, 1, 999_999, 500_000]))
    return zone, base + timedelta(seconds=offset, microseconds=micro)


schedule_inputs_for = st.builds(
    lambda zone, hours, days, rates: ScheduleInput(
        platform="tiktok",
        content_type="video",
        audience_data=AudienceData(timezone=zone, activity_hours=hours, peak_days=days),
        historical_performance=HistoricalPerformance(
            best_times=[BestTime(hour=h, engagement_rate=r) for h, r in rates]
        ),
    ),
    zone=st.just("UTC"),
    # every hour active and no history make the earliest slots win: those near the clock change
    hours=st.one_of(
        st.just(list(range(24))), st.lists(st.integers(0, 23), min_size=1, max_size=24)
    ),
    days=st.lists(st.sampled_from(WEEKDAYS), max_size=7),
    rates=st.one_of(
        st.just([]),
        st.lists(
            st.tuples(st.integers(0, 23), st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.2, 0.5])),
            max_size=8,
        ),
    ),
)


@st.composite
def schedule_cases(draw: st.DrawFn):
    zone, now = draw(instants_near_clock_changes())
    schedule_input = draw(schedule_inputs_for)
    audience = schedule_input.audience_data.model_copy(update={"timezone": zone})
    schedule_input = schedule_input.model_copy(update={"audience_data": audience})
    not_before = None
    if draw(st.booleans()):
        not_before = now + timedelta(minutes=draw(st.integers(-600, 3 * 1440)))
    not_after = None
    if draw(st.booleans()):
        not_after = max(now, not_before or now) + timedelta(minutes=draw(st.integers(1, 9 * 1440)))
    return schedule_input, now, {
        "count": draw(st.integers(1, 40)),
        "horizon_days": draw(st.sampled_from([0, 1, 2, 7])),
        "not_before": not_before,
        "not_after": not_after,
    }


@settings(settings.get_profile("planner"), max_examples=400)
@given(schedule_cases())
def test_slots_are_active_first_occurrences_inside_the_window(case) -> None:
    schedule_input, now, options = case
    audience = schedule_input.audience_data
    zone = ZoneInfo(audience.timezone)
    scores = hour_scores(schedule_input.historical_performance)
    start = max(now, options["not_before"] or now)
    end = start + timedelta(days=options["horizon_days"])
    end = min(end, options["not_after"]) if options["not_after"] else end
    opening = ceil_to_minute(start) if ceil_to_minute(start) <= end else start

    slots = generate_optimal_schedule(schedule_input, now, **options)

    assert 1 <= len(slots) <= options["count"]
    times = [slot.timestamp for slot in slots]
    assert len(set(times)) == len(times)
    assert [(-s.expected_engagement, s.timestamp) for s in slots] == sorted(
        (-s.expected_engagement, s.timestamp) for s in slots
    )
    for slot in slots:
        assert slot.timestamp.utcoffset() == timedelta(0)
        assert start <= slot.timestamp <= end
        local = slot.timestamp.astimezone(zone)
        if slot.timestamp == opening:
            continue  # the window's opening: any local time, scored by its hour if active
        assert local.hour in audience.activity_hours
        assert (local.minute, local.second, local.microsecond) == (0, 0, 0)
        # it is the first time this wall clock reading happens: never skipped, never a repeat
        assert occurrences(zone, local.date(), local.hour)[0] == slot.timestamp
        assert slot.expected_engagement == scores[local.hour]


@settings(settings.get_profile("planner"), max_examples=400)
@given(schedule_cases())
def test_schedule_matches_a_brute_force_reference(case) -> None:
    schedule_input, now, options = case

    slots = generate_optimal_schedule(schedule_input, now, **options)

    expected = expected_schedule(schedule_input, now, **options)
    assert [(s.timestamp, s.expected_engagement) for s in slots] == expected


@settings(settings.get_profile("planner"), max_examples=300)
@given(instants_near_clock_changes(), st.lists(st.integers(0, 23), min_size=1, unique=True))
def test_hour_starts_are_first_occurrences_of_wall_times_that_exist(zoned, hours) -> None:
    zone_name, moment = zoned
    zone = ZoneInfo(zone_name)
    hours = sorted(hours)
    for day in (moment.astimezone(zone).date() + timedelta(days=d) for d in (-1, 0, 1)):
        starts = hour_starts_in_utc(zone, day.toordinal(), hours)
        expected = [
            (h, int(first[0].timestamp())) for h in hours if (first := occurrences(zone, day, h))
        ]
        assert starts == expected
