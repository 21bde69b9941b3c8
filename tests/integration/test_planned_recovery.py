"""A post.planned the broker lost after acknowledging it does not lose the post: the planner
sends it again until the queue has stored the post, and gives up to the dead letters, not
silently."""

import base64
from dataclasses import replace

import asyncpg
import orjson
import pytest

from contracts import DeadLetter, Topics, post_id_for
from harness import Pipeline, event_json, produce, read_topic, settings_for, target_rows, wait_for
from services.devstack.topics import create_missing_topics, delete_topics

pytestmark = pytest.mark.integration


async def _unconfirmed(database_url: str) -> list[dict]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch("SELECT post_id, resends FROM planner_unconfirmed")]
    finally:
        await conn.close()


def _settings(kafka_bootstrap, topic_prefix, database_url, **planner):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    return replace(settings, planner=replace(settings.planner, recovery_interval_seconds=0.2, **planner))


async def test_a_lost_post_planned_is_sent_again_until_the_queue_has_the_post(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = _settings(kafka_bootstrap, topic_prefix, database_url, resend_after_seconds=0.5)
    planned_topic = topic_prefix + Topics.POST_PLANNED
    async with Pipeline(settings, ["planner"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED,
                      [event_json("lost-1", [("tiktok", "a"), ("youtube", "b")], "https://cdn.test/v.mp4")])
        (first,) = await read_topic(kafka_bootstrap, planned_topic, 1)
        # the broker loses it before the queue read it
        await delete_topics(kafka_bootstrap, [planned_topic])
        await create_missing_topics(kafka_bootstrap, [planned_topic], 3)
        (again, *_) = await read_topic(kafka_bootstrap, planned_topic, 1)
        assert (again.key, again.value) == (first.key, first.value), "the same message, sent again"
        assert "traceparent" in dict((k, v) for k, v in again.headers), "in the post's trace"
        assert [r["post_id"] for r in await _unconfirmed(database_url)] == [post_id_for("lost-1")]

        async with Pipeline(settings, ["queue"]):
            targets = await wait_for(lambda: target_rows(database_url), 20, "the post in the queue")
            assert {t["post_id"] for t in targets} == {post_id_for("lost-1")} and len(targets) == 2
            await wait_for(lambda: _none_left(database_url), 10, "the planner to forget the stored post")


async def _none_left(database_url: str) -> bool:
    return not await _unconfirmed(database_url)


async def test_a_post_the_queue_never_stores_is_dead_lettered_after_its_sends(
    kafka_bootstrap, topic_prefix, database_url
):
    settings = _settings(kafka_bootstrap, topic_prefix, database_url, resend_after_seconds=0.2, resend_max=2)
    async with Pipeline(settings, ["planner"]):  # no queue: nothing ever stores the post
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED,
                      [event_json("orphan-1", [("instagram", "c")], "https://cdn.test/v.jpg", contentType="image")])
        (letter,) = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 1, timeout=20)
        sent = await read_topic(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, 3)
        await wait_for(lambda: _none_left(database_url), 5, "the planner to stop sending it")

    dead = DeadLetter.from_bytes(letter.value)
    assert (dead.reason, dead.consumer, dead.source_topic) == (
        "post_not_queued", "planner.recovery", topic_prefix + Topics.POST_PLANNED)
    assert len(sent) == 3 and len({s.value for s in sent}) == 1, "planned once, sent twice more"
    assert base64.b64decode(dead.payload_base64) == sent[0].value, "kept whole, to replay"
    assert orjson.loads(sent[0].value)["postId"] == str(post_id_for("orphan-1"))
