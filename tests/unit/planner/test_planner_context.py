"""Planning with what the planner knows: its record of planned slots, the rules, readings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from contracts import ContentSubmitted, Platform, target_id_for, post_id_for
from services.planner.domain import (
    ChosenTime,
    LearnedStrategy,
    PlanningContext,
    PlanningRejected,
    PlatformLimits,
    plan_content,
)

UTC = timezone.utc
NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
KEY = (Platform.TIKTOK, "brand")
LIMITS = {p: PlatformLimits(min_spacing_seconds=2 * 3600, daily_cap=2) for p in Platform}


def event(upstream_id: str = "u-1", **overrides: Any) -> ContentSubmitted:
    payload: dict[str, Any] = {
        "upstreamId": upstream_id,
        "targets": [{"platform": "tiktok", "accountId": "brand"}],
        "media": [{"url": "https://cdn.example.com/clip.mp4"}],
        "contentType": "video",
        "schedule": {"mode": "optimal", "notBefore": NOW.isoformat(),
                     "notAfter": (NOW + timedelta(days=1)).isoformat()},
        "audienceData": {"timezone": "UTC", "activityHours": [12, 19, 20]},
        "historicalPerformance": {"bestTimes": [{"hour": 19, "engagementRate": 0.08}]},
    }
    payload.update(overrides)
    return ContentSubmitted.model_validate(payload)


def context(**kwargs: Any) -> PlanningContext:
    return PlanningContext(strategy=LearnedStrategy(), limits=LIMITS, **kwargs)


def slot(planned) -> datetime:
    return planned.targets[0].scheduled_time


def test_each_new_slot_is_recorded_so_the_next_event_keeps_its_distance():
    ctx = context()
    first, second = slot(plan_content(event("a"), NOW, ctx)), slot(plan_content(event("b"), NOW, ctx))
    assert first.hour == 19 and abs(second - first) >= timedelta(hours=2)
    assert ctx.calendars[KEY] == sorted([first.timestamp(), second.timestamp()])


def test_the_daily_cap_moves_a_third_post_to_another_day():
    ctx = context()
    window = {"mode": "optimal", "notBefore": NOW.isoformat(), "notAfter": (NOW + timedelta(days=3)).isoformat()}
    days = [slot(plan_content(event(f"e{n}", schedule=window), NOW, ctx)).date() for n in range(3)]
    assert max(days.count(d) for d in days) <= 2


def test_an_event_planned_twice_in_one_batch_gets_the_same_slots():
    ctx = context()
    first, again = plan_content(event(), NOW, ctx), plan_content(event(), NOW, ctx)
    assert first == again and len(ctx.calendars[KEY]) == 1


def test_a_target_planned_before_keeps_its_slot():
    target_id = target_id_for(post_id_for("u-1"), Platform.TIKTOK, "brand")
    earlier = ChosenTime(NOW + timedelta(hours=30), 0.05, "learned")
    ctx = context(planned={target_id: earlier}, calendars={KEY: [earlier.scheduled_time.timestamp()]})
    planned = plan_content(event(), NOW + timedelta(days=5), ctx)  # even once its window has passed
    assert slot(planned) == earlier.scheduled_time and planned.targets[0].expected_engagement == 0.05
    assert ctx.calendars[KEY] == [earlier.scheduled_time.timestamp()], "recorded once"


def test_when_the_rules_leave_no_time_the_event_is_rejected_and_nothing_recorded():
    ctx = context(calendars={KEY: [(NOW + timedelta(hours=h)).timestamp() for h in (1, 12)]})
    window = {"mode": "optimal", "notBefore": NOW.isoformat(), "notAfter": (NOW + timedelta(hours=14)).isoformat()}
    with pytest.raises(PlanningRejected) as rejected:
        plan_content(event(schedule=window), NOW, ctx)  # cap of two that day, both taken
    assert rejected.value.reason == "no_allowed_slot"
    assert len(ctx.calendars[KEY]) == 2


def test_asap_goes_at_the_first_time_the_rules_allow():
    ctx = context(calendars={KEY: [(NOW - timedelta(minutes=30)).timestamp()]})
    planned = plan_content(event(schedule={"mode": "asap"}), NOW, ctx)
    assert slot(planned) == NOW + timedelta(minutes=90)
    assert planned.targets[0].strategy == "asap"


def test_asap_outside_blackouts():
    blackout = {"start": NOW.isoformat(), "end": (NOW + timedelta(hours=3)).isoformat()}
    planned = plan_content(event(schedule={"mode": "asap"}, blackouts=[blackout]), NOW, context())
    assert slot(planned) == NOW + timedelta(hours=3)


def test_an_at_time_is_kept_as_asked_and_counts_for_the_next_ones():
    at = NOW + timedelta(hours=13)  # 19:00 UTC, the account's best hour
    ctx = context()
    fixed = plan_content(event("fixed", schedule={"mode": "at", "scheduledTime": at.isoformat()}), NOW, ctx)
    assert slot(fixed) == at and fixed.targets[0].strategy == "fixed"
    assert fixed.targets[0].expected_engagement > 0, "scored by the learned estimate"
    chosen = slot(plan_content(event("chosen"), NOW, ctx))
    assert abs(chosen - at) >= timedelta(hours=2)


def test_blackouts_keep_optimal_slots_out():
    blackout = {"localStart": "18:00", "localEnd": "21:00"}
    planned = plan_content(event(blackouts=[blackout]), NOW, context())
    assert not 18 <= slot(planned).hour < 21
