"""Planning a content event: every target gets a slot, its own text, a stable id."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from contracts import (
    ContentSubmitted,
    PostPlanned,
    ScheduleInput,
    post_id_for,
    target_id_for,
)
from services.planner.domain import (
    DEFAULT_AUDIENCES,
    PlanningRejected,
    generate_optimal_schedule,
    plan_content,
)

UTC = timezone.utc
NOW = datetime(2025, 1, 15, 13, 0, 0, tzinfo=UTC)  # Wednesday, 08:00 in New York
AUDIENCE = {
    "timezone": "America/New_York", "activityHours": [9, 12, 19], "peakDays": ["mon", "wed"]
}
HISTORY = {"bestTimes": [{"hour": 19, "engagementRate": 0.2}, {"hour": 8, "engagementRate": 0.1}]}


def event(**overrides: Any) -> ContentSubmitted:
    payload: dict[str, Any] = {
        "upstreamId": "cms-42",
        "contentType": "video",
        "media": [{"url": "https://cdn.example.com/clip.mp4"}],
        "caption": "Launch day",
        "hashtags": ["launch", "#news", "launch"],
        "targets": [
            {"platform": "tiktok", "accountId": "brand.tt"},
            {"platform": "instagram", "accountId": "brand.ig", "caption": "Launch day on IG",
             "hashtags": ["insta"]},
            {"platform": "youtube", "accountId": "brand-yt", "hashtags": []},
        ],
        "schedule": {"mode": "optimal"},
        "audienceData": AUDIENCE,
        "historicalPerformance": HISTORY,
    }
    payload.update(overrides)
    return ContentSubmitted.model_validate({k: v for k, v in payload.items() if v is not None})


def test_every_target_is_planned() -> None:
    planned = plan_content(event(), NOW)

    assert [(t.platform.value, t.account_id) for t in planned.targets] == [
        ("tiktok", "brand.tt"), ("instagram", "brand.ig"), ("youtube", "brand-yt")
    ]


def test_ids_derive_from_the_upstream_id() -> None:
    first, again = plan_content(event(), NOW), plan_content(event(), NOW)

    post_id = post_id_for("cms-42")
    assert first == again
    assert first.post_id == post_id and first.upstream_id == "cms-42"
    assert first.message_id == uuid.uuid5(post_id, "planned")
    assert [t.target_id for t in first.targets] == [
        target_id_for(post_id, t.platform, t.account_id) for t in first.targets
    ]
    assert len({t.target_id for t in first.targets}) == 3
    assert plan_content(event(upstreamId="cms-43"), NOW).post_id != post_id


def test_a_targets_own_caption_and_hashtags_replace_the_events() -> None:
    tiktok, instagram, youtube = plan_content(event(), NOW).targets

    assert (tiktok.caption, tiktok.hashtags) == ("Launch day", ["#launch", "#news"])
    assert (instagram.caption, instagram.hashtags) == ("Launch day on IG", ["#insta"])
    assert (youtube.caption, youtube.hashtags) == ("Launch day", [])


def test_the_content_is_the_events() -> None:
    planned = plan_content(event(), NOW)

    assert planned.content.content_type.value == "video"
    assert [str(m.url) for m in planned.content.media] == ["https://cdn.example.com/clip.mp4"]
    assert planned.content.caption == "Launch day"
    assert planned.content.hashtags == ["#launch", "#news"]
    assert planned.planned_at == NOW


def test_optimal_uses_the_audience_and_history() -> None:
    submitted = event()
    planned = plan_content(submitted, NOW)

    (best,) = generate_optimal_schedule(
        ScheduleInput(platform="tiktok", content_type="video",
                      audience_data=submitted.audience_data,
                      historical_performance=submitted.historical_performance),
        NOW,
    )
    for target in planned.targets:
        assert target.scheduled_time == best.timestamp == datetime(2025, 1, 16, 0, 0, tzinfo=UTC)
        assert target.expected_engagement == 0.2
        assert target.strategy == "heuristic"


def test_optimal_honours_the_window() -> None:
    not_before = datetime(2025, 1, 20, 0, 0, tzinfo=UTC)  # Sunday evening in New York
    not_after = datetime(2025, 1, 20, 18, 0, tzinfo=UTC)  # Monday 13:00 in New York
    schedule = {"mode": "optimal", "notBefore": not_before.isoformat(),
                "notAfter": not_after.isoformat()}

    planned = plan_content(event(schedule=schedule), NOW)

    for target in planned.targets:
        # Mon 09:00 and 12:00 both score the unknown-hour rate: the earlier wins
        assert target.scheduled_time == datetime(2025, 1, 20, 14, 0, tzinfo=UTC)


def test_optimal_without_audience_data_uses_each_platforms_default() -> None:
    planned = plan_content(event(audienceData=None, historicalPerformance=None), NOW)

    for target in planned.targets:
        default = DEFAULT_AUDIENCES[target.platform]
        assert default.timezone == "UTC" and default.peak_days == []
        # no history: the earliest active hour still ahead today (NOW is 13:00 UTC)
        earliest = min(h for h in default.activity_hours if h >= NOW.hour)
        assert target.scheduled_time == NOW.replace(hour=earliest)
        assert target.expected_engagement == 0.0
    assert len({t.scheduled_time for t in planned.targets}) > 1


def test_asap_goes_now() -> None:
    planned = plan_content(event(schedule={"mode": "asap"}, audienceData=None), NOW)

    assert {(t.scheduled_time, t.strategy, t.expected_engagement) for t in planned.targets} == {
        (NOW, "asap", 0.0)
    }


def test_asap_with_audience_data_scores_the_local_hour() -> None:
    planned = plan_content(event(schedule={"mode": "asap"}), NOW)  # 08:00 in New York

    assert {t.expected_engagement for t in planned.targets} == {0.1}


def test_at_goes_at_its_time() -> None:
    at = datetime(2025, 1, 17, 0, 0, tzinfo=UTC)  # 19:00 in New York

    planned = plan_content(event(schedule={"mode": "at", "scheduledTime": at.isoformat()}), NOW)

    assert {(t.scheduled_time, t.strategy, t.expected_engagement) for t in planned.targets} == {
        (at, "fixed", 0.2)
    }


def test_an_at_time_in_another_offset_comes_out_in_utc() -> None:
    at = "2025-01-16T19:00:00-05:00"

    (target, *_) = plan_content(event(schedule={"mode": "at", "scheduledTime": at}), NOW).targets

    assert target.scheduled_time == datetime(2025, 1, 17, 0, 0, tzinfo=UTC)
    assert target.scheduled_time.utcoffset() == timedelta(0)


def test_an_at_time_a_little_behind_now_is_kept() -> None:
    at = NOW - timedelta(seconds=60)

    planned = plan_content(event(schedule={"mode": "at", "scheduledTime": at.isoformat()}), NOW)

    assert planned.targets[0].scheduled_time == at


@pytest.mark.parametrize(
    "schedule",
    [
        {"mode": "at", "scheduledTime": (NOW - timedelta(seconds=61)).isoformat()},
        {"mode": "optimal", "notAfter": NOW.isoformat()},
        {"mode": "optimal", "notAfter": (NOW - timedelta(days=1)).isoformat()},
        {"mode": "optimal", "notBefore": (NOW - timedelta(days=2)).isoformat(),
         "notAfter": (NOW - timedelta(days=1)).isoformat()},
    ],
)
def test_a_window_in_the_past_is_rejected(schedule: dict[str, Any]) -> None:
    with pytest.raises(PlanningRejected) as rejected:
        plan_content(event(schedule=schedule), NOW)

    assert rejected.value.reason == "window_in_past"
    assert rejected.value.message


def test_the_plan_is_a_valid_wire_message() -> None:
    planned = plan_content(event(), NOW)

    assert PostPlanned.from_bytes(planned.to_bytes()) == planned


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_content(event(), NOW.replace(tzinfo=None))
