"""The planner against the real broker: every target planned, bad input rejected, none dropped."""

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from contracts import ContentRejected, Platform, PostPlanned, Topics, post_id_for
from harness import Pipeline, event_json, produce, read_topic, settings_for

pytestmark = pytest.mark.integration


async def test_events_become_one_slot_per_target_and_bad_ones_are_rejected_with_a_reason(
    kafka_bootstrap, topic_prefix
):
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    past = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    good = event_json("p-1", [("tiktok", "a"), ("instagram", "b"), ("youtube", "c")], "https://cdn.test/v.mp4",
                      schedule={"mode": "optimal"},
                      audienceData={"timezone": "America/New_York", "activityHours": [9, 18],
                                    "peakDays": ["monday", "wednesday"]},
                      historicalPerformance={"bestTimes": [{"hour": 18, "engagementRate": 0.09}]})
    bad = [
        b"not json at all",
        event_json("p-2", [("myspace", "a")], "https://cdn.test/v.mp4"),
        orjson.dumps({"upstreamId": "p-3", "targets": [{"platform": "tiktok"}],
                      "media": [{"url": "https://cdn.test/v.mp4"}], "contentType": "video"}),
        event_json("p-4", [("tiktok", "a")], "https://cdn.test/v.mp4",
                   schedule={"mode": "at", "scheduledTime": past}),
        # a platform rule broken by one target rejects the event before anything is queued
        event_json("p-5", [("tiktok", "a"), ("instagram", "b")], "https://cdn.test/v.mp4",
                   hashtags=[f"tag{i}" for i in range(31)]),
    ]
    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, [bad[0], bad[1], good, *bad[2:]])
        planned = await read_topic(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, 1)
        rejected = await read_topic(kafka_bootstrap, topic_prefix + Topics.CONTENT_REJECTED, 5)

    assert len(planned) == 1
    post = PostPlanned.from_bytes(planned[0].value)
    assert post.post_id == post_id_for("p-1") and planned[0].key == str(post.post_id).encode()
    assert {t.platform for t in post.targets} == set(Platform), "every target of the post is planned"
    for target in post.targets:
        local = target.scheduled_time.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert local.hour in (9, 18) and local.strftime("%A").lower() in ("monday", "wednesday")

    reasons, details = {}, {}
    for record in rejected:
        rejection = ContentRejected.from_bytes(record.value)
        reasons[rejection.payload()] = rejection.reason
        details[rejection.upstream_id] = rejection.details
    assert reasons == {
        bad[0]: "invalid_json",
        bad[1]: "unknown_platform",
        bad[2]: "missing_account",
        bad[3]: "window_in_past",
        bad[4]: "too_many_hashtags",
    }
    [problem] = details["p-5"]
    assert (problem.target, problem.field, problem.type) == ("instagram:b", "hashtags", "too_many_hashtags")
