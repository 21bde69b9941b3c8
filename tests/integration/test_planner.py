"""The planner against the real broker: every target planned, bad input rejected, none dropped."""

from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest

from contracts import ContentRejected, Platform, PostPlanned, Topics, post_id_for
from harness import Pipeline, event_json, produce, read_topic, settings_for

pytestmark = pytest.mark.integration


async def test_events_become_one_slot_per_target_and_bad_ones_are_rejected_with_a_reason(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
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


async def test_an_accounts_planned_slots_are_kept_and_respected_across_batches(
    kafka_bootstrap, topic_prefix, database_url
):
    """The planner's record in Postgres: one slot per target (a replay gets the same one), and
    a later event of the same account keeps its distance from the slots planned before."""
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    opens = datetime.now(timezone.utc) + timedelta(days=1)
    window = {"mode": "optimal", "notBefore": opens.isoformat(), "notAfter": (opens + timedelta(days=2)).isoformat()}
    audience = {"timezone": "Europe/Paris", "activityHours": [12, 19, 20], "peakDays": ["tuesday"]}
    blackout = {"localStart": "21:00", "localEnd": "23:59"}

    def submitted(upstream_id: str) -> bytes:
        return event_json(upstream_id, [("instagram", "brand")], "https://cdn.test/v.mp4", schedule=window,
                          audienceData=audience, blackouts=[blackout])

    topic = topic_prefix + Topics.CONTENT_SUBMITTED
    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, topic, [submitted("first")], key=b"first")
        (first,) = await read_topic(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, 1)
        # a later batch: another post of the account, and the first one delivered again
        await produce(kafka_bootstrap, topic, [submitted("second"), submitted("first")], key=b"later")
        records = await read_topic(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, 3)

    plans = [PostPlanned.from_bytes(r.value) for r in records]
    by_upstream: dict[str, list[datetime]] = {}
    for plan in plans:
        by_upstream.setdefault(plan.upstream_id, []).append(plan.targets[0].scheduled_time)
    assert len(by_upstream["first"]) == 2 and len(set(by_upstream["first"])) == 1, "a replay gets the same slot"
    one, two = by_upstream["first"][0], by_upstream["second"][0]
    assert abs(one - two) >= timedelta(hours=2), "the account's posts keep their spacing"
    paris = __import__("zoneinfo").ZoneInfo("Europe/Paris")
    for moment in (one, two):
        assert opens <= moment <= opens + timedelta(days=2)
        assert not 21 <= moment.astimezone(paris).hour <= 23, "never in a blackout"
    assert all(t.strategy == "learned" for p in plans for t in p.targets), "the service plans with the learned strategy"
    conn = await asyncpg.connect(database_url)
    try:
        slots = await conn.fetch("SELECT target_id, slot_at, timezone FROM planner_slots")
    finally:
        await conn.close()
    assert len(slots) == 2 and {s["timezone"] for s in slots} == {"Europe/Paris"}
    assert sorted(s["slot_at"] for s in slots) == sorted([one, two])
