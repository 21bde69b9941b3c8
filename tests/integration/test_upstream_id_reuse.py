"""An upstream id reused for other targets is rejected through the real broker and books no slot;
the same event again is planned as before."""

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from contracts import ContentRejected, Platform, PostPlanned, Topics, post_id_for, target_id_for
from harness import Pipeline, event_json, produce, read_topic, settings_for

pytestmark = pytest.mark.integration


async def test_a_reused_upstream_id_with_other_targets_is_rejected_and_books_nothing(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    submitted = topic_prefix + Topics.CONTENT_SUBMITTED
    planned, rejected = topic_prefix + Topics.POST_PLANNED, topic_prefix + Topics.CONTENT_REJECTED
    media = "https://cdn.test/v.mp4"
    added_first = event_json("grows", [("tiktok", "brand")], media)
    added_again = event_json("grows", [("tiktok", "brand"), ("youtube", "chan")], media)
    dropped_first = event_json("shrinks", [("tiktok", "other"), ("instagram", "other")], media)
    dropped_again = event_json("shrinks", [("tiktok", "other")], media)

    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, submitted, [added_first, dropped_first], key=b"first")
        first = await read_topic(kafka_bootstrap, planned, 2)
        # a later batch: both ids reused for other targets, and the first event delivered again
        await produce(kafka_bootstrap, submitted, [added_again, dropped_again, added_first], key=b"again")
        refusals = await read_topic(kafka_bootstrap, rejected, 2)
        # the YouTube account's next post is not held off by a slot booked for the refused event
        started = datetime.now(timezone.utc)
        await produce(kafka_bootstrap, submitted, [event_json("youtube-next", [("youtube", "chan")], media)],
                      key=b"next")
        plans = [PostPlanned.from_bytes(r.value) for r in await read_topic(kafka_bootstrap, planned, 4)]

    assert len(first) == 2 and len(plans) == 4
    grows = [p for p in plans if p.upstream_id == "grows"]
    assert len(grows) == 2 and grows[0].targets == grows[1].targets, "the same event again: the same plan"
    assert [(t.platform, t.account_id) for t in grows[0].targets] == [(Platform.TIKTOK, "brand")]
    [shrinks] = [p for p in plans if p.upstream_id == "shrinks"]
    assert len(shrinks.targets) == 2

    answers = {r.upstream_id: r for r in (ContentRejected.from_bytes(r.value) for r in refusals)}
    assert {u: r.reason for u, r in answers.items()} == {"grows": "upstream_id_reused", "shrinks": "upstream_id_reused"}
    assert [(d.type, d.target) for d in answers["grows"].details] == [("target_added", "youtube:chan")]
    assert [(d.type, d.target) for d in answers["shrinks"].details] == [("target_removed", "instagram:other")]
    assert "new upstreamId" in answers["grows"].message
    assert answers["grows"].payload() == added_again

    [nxt] = [p for p in plans if p.upstream_id == "youtube-next"]
    assert nxt.targets[0].scheduled_time < started + timedelta(minutes=30), "no phantom slot spaces it out"

    conn = await asyncpg.connect(database_url)
    try:
        slots = {r["target_id"] for r in await conn.fetch("SELECT target_id FROM planner_slots")}
    finally:
        await conn.close()
    assert target_id_for(post_id_for("grows"), Platform.YOUTUBE, "chan") not in slots
    assert len(slots) == 4  # grows: TikTok; shrinks: TikTok, Instagram; youtube-next: YouTube
