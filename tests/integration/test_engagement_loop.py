"""The feedback loop over the real broker and Postgres: a post goes out, its engagement is
collected at each age through the platform's API, and reaches the planner's store."""

from contextlib import AsyncExitStack
from dataclasses import replace
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest

from harness import (
    Pipeline,
    connect_accounts,
    engagement_rows,
    event_json,
    produce,
    read_topic,
    serve_sandbox,
    settings_for,
    target_rows,
    wait_for,
)
from contracts import Platform, Topics
from services.planner import store
from services.planner.domain import local_hour_of_week

pytestmark = pytest.mark.integration

AGES = (0.6, 1.5)  # seconds after publication, instead of 1 h and 24 h


async def test_a_published_posts_engagement_reaches_the_planners_store(kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        sandbox_url = await serve_sandbox(stack, processing_seconds=0.1, engagement_timescale_seconds=0.5)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        settings = replace(settings, queue=replace(settings.queue, engagement_ages_seconds=AGES))
        await connect_accounts(settings, [("tiktok", "creator-loop")])
        names = ["planner", "queue", "publisher-tiktok", "poller"]
        await stack.enter_async_context(Pipeline(settings, names))

        event = event_json("loop-1", [("tiktok", "creator-loop")], f"{sandbox_url}/media/clip.mp4?bytes=300000",
                           audienceData={"timezone": "Asia/Kolkata", "activityHours": [9, 19]})
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, [event], key=b"loop-1")

        async def both_ages():
            rows = await engagement_rows(database_url)
            return rows if len(rows) == len(AGES) else None

        rows = await wait_for(both_ages, 40, "engagement at both ages in the planner's store")
        (target,) = await target_rows(database_url)

        # delivered again, each is applied once; a malformed one behind them is dead-lettered
        topic = topic_prefix + Topics.ENGAGEMENT_OBSERVED
        sent = await read_topic(kafka_bootstrap, topic, len(AGES))
        assert {r.key for r in sent} == {b"creator-loop"}, "keyed by account id"
        await produce(kafka_bootstrap, topic, [r.value for r in sent] + [b"{not engagement"], key=b"creator-loop")
        (letter,) = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 1)
        assert orjson.loads(letter.value)["consumer"] == "planner.engagement"
        assert len(await engagement_rows(database_url)) == len(AGES)

    early, final = rows
    assert [r["age_seconds"] for r in rows] == list(AGES) and final["final"] and not early["final"]
    assert {r["target_id"] for r in rows} == {target["target_id"]}
    assert target["status"] == "posted" and target["engagement_checks"] == len(AGES)
    assert target["due_at"] is None, "the timer stops after the last collection"
    assert final["interactions"] >= early["interactions"] > 0, "engagement builds up with age"
    # normalised by the audience the platform reported
    assert final["audience_size"] > 0 and final["rate"] == pytest.approx(final["interactions"] / final["audience_size"])
    # learnt at the local hour of the week the post went out at, in the audience's timezone
    assert final["hour_of_week"] == local_hour_of_week(final["published_at"].timestamp(), ZoneInfo("Asia/Kolkata"))
    assert final["strategy"] == target["strategy"] and final["expected_engagement"] == target["expected_engagement"]

    conn = await asyncpg.connect(database_url)
    try:
        readings = await store.readings(conn, [(Platform.TIKTOK, "creator-loop")], final["published_at"])
    finally:
        await conn.close()
    (reading,) = readings[(Platform.TIKTOK, "creator-loop")]
    assert (reading.age_seconds, reading.rate) == (AGES[-1], final["rate"]), "the most mature reading is learnt from"
