"""Property tests: the learned strategy and the rules, in every timezone, around every clock change.

No slot at a local time the clocks skip, never two slots at the two passes of a repeated
local hour, daily caps counted in local days, spacing kept, whatever the zone does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContentSubmitted, ContentType, Platform
from planner_schedule_oracle import ceil_to_minute, occurrences
from test_planner_schedule_dst import instants_near_clock_changes
from services.planner.domain import (
    DEFAULT_LIMITS,
    AccountReadings,
    Exploration,
    ExplorationSettings,
    LearnedStrategy,
    NO_LIMITS,
    PlanningContext,
    PlanningRejected,
    PlatformLimits,
    Reading,
    ScoringRequest,
    SlotRules,
    hour_of_week,
    plan_content,
    rank_slots,
    scheduling_window,
)

PROFILE = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def readings_for(draw: st.DrawFn, now: datetime) -> tuple[Reading, ...]:
    return tuple(
        Reading(how=draw(st.integers(0, 167)), epoch=now.timestamp() - draw(st.integers(3600, 60 * 86_400)),
                rate=draw(st.sampled_from([0.001, 0.02, 0.05, 0.2])), age_seconds=86_400.0,
                content_type=ContentType.VIDEO)
        for _ in range(draw(st.integers(0, 30))))


@st.composite
def learned_cases(draw: st.DrawFn):
    zone, now = draw(instants_near_clock_changes())
    from contracts import AudienceData, HistoricalPerformance

    audience = AudienceData(timezone=zone, activity_hours=draw(st.lists(st.integers(0, 23), min_size=1, unique=True)))
    mode = draw(st.sampled_from(list(Exploration)))
    strategy = LearnedStrategy(exploration=ExplorationSettings(mode=mode, budget=draw(st.sampled_from([0.0, 0.3]))))
    request = ScoringRequest(platform=Platform.TIKTOK, content_type=ContentType.VIDEO, audience=audience,
                             audience_given=True, history=HistoricalPerformance(), now_epoch=now.timestamp(),
                             readings=readings_for(draw, now), seed=draw(st.integers(0, 99)))
    return zone, now, strategy.scores(request), draw(st.integers(1, 80)), draw(st.sampled_from([1, 2, 7]))


@PROFILE
@given(learned_cases())
def test_learned_slots_are_real_first_occurrences_of_local_hour_starts(case):
    zone_name, now, scores, count, horizon = case
    zone = ZoneInfo(zone_name)
    window = scheduling_window(now, horizon)
    opening = ceil_to_minute(now)

    slots = rank_slots(window, zone, scores, SlotRules(NO_LIMITS, zone), count)

    instants = [datetime.fromtimestamp(s.epoch, timezone.utc) for s in slots]
    assert 1 <= len(slots) <= count and len(set(instants)) == len(instants)
    walls = []
    for instant in instants:
        assert now <= instant <= now + timedelta(days=horizon)
        local = instant.astimezone(zone)
        if instant == opening:
            continue
        assert (local.minute, local.second, local.microsecond) == (0, 0, 0)
        # a wall time that happens (never one the clocks skip), at its first occurrence
        assert occurrences(zone, local.date(), local.hour)[0] == instant
        walls.append(local.replace(tzinfo=None, fold=0))
    assert len(set(walls)) == len(walls), "never two slots at one local hour repeated by a clock change"


@st.composite
def planning_cases(draw: st.DrawFn):
    zone, now = draw(instants_near_clock_changes())
    cap = draw(st.integers(1, 3))
    spacing = draw(st.sampled_from([0.0, 3600.0, 3 * 3600.0]))
    events = []
    for n in range(draw(st.integers(2, 8))):
        opens = now + timedelta(hours=draw(st.integers(0, 48)))
        events.append(ContentSubmitted.model_validate({
            "upstreamId": f"e{n}", "targets": [{"platform": "tiktok", "accountId": "acct"}],
            "media": [{"url": "https://cdn.example.com/v.mp4"}], "contentType": "video",
            "schedule": {"mode": "optimal", "notBefore": opens.isoformat(),
                         "notAfter": (opens + timedelta(days=draw(st.sampled_from([1, 2, 3])))).isoformat()},
            "audienceData": {"timezone": zone, "activityHours": draw(st.lists(st.integers(0, 23), min_size=1, unique=True))},
            "blackouts": [{"localStart": "02:00", "localEnd": "04:00"}] if draw(st.booleans()) else [],
        }))
    return zone, now, cap, spacing, events


@PROFILE
@given(planning_cases())
def test_an_accounts_slots_keep_caps_per_local_day_and_spacing_across_clock_changes(case):
    zone_name, now, cap, spacing, events = case
    zone = ZoneInfo(zone_name)
    limits = {p: PlatformLimits(min_spacing_seconds=spacing, daily_cap=cap) for p in Platform}
    context = PlanningContext(strategy=LearnedStrategy(), limits=limits,
                              readings={(Platform.TIKTOK, "acct"): AccountReadings((), 1)})
    slots = []
    for event in events:
        try:
            slot = plan_content(event, now, context).targets[0].scheduled_time
        except PlanningRejected as rejection:
            assert rejection.reason == "no_allowed_slot"
            continue
        slots.append(slot)
        if event.blackouts:  # each event's own blackout
            assert not 2 <= slot.astimezone(zone).hour < 4, "inside the local blackout"
    per_day: dict = {}
    for slot in slots:
        per_day.setdefault(slot.astimezone(zone).date(), []).append(slot)
    assert all(len(day) <= cap for day in per_day.values())
    ordered = sorted(slots)
    assert all(b - a >= timedelta(seconds=spacing) for a, b in zip(ordered, ordered[1:]))
    assert sorted(context.calendars[(Platform.TIKTOK, "acct")]) == [s.timestamp() for s in ordered]


def test_the_default_limits_are_the_platforms():
    assert DEFAULT_LIMITS[Platform.INSTAGRAM].quota_windows[0].limit == 50
    assert DEFAULT_LIMITS[Platform.TIKTOK].quota_windows[0].limit == 15
    assert all(limit.min_spacing_seconds > 0 and limit.daily_cap for limit in DEFAULT_LIMITS.values())
    assert hour_of_week(6, 23) == 167
