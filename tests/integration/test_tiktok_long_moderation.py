"""A public TikTok post whose moderation outlasts the status check's wait (an hour; here half a
second), over the real broker and Postgres: posted without its URL, it learns the URL from its
engagement read, and its figures reach the planner (platforms.md §1.5)."""

import re
from contextlib import AsyncExitStack
from dataclasses import replace

import pytest

from harness import (
    Pipeline,
    connect_accounts,
    engagement_rows,
    event_json,
    produce,
    serve_sandbox_app,
    settings_for,
    target_rows,
    wait_for,
)
from contracts import Topics
from services.publishers.platforms import _tiktok

pytestmark = pytest.mark.integration

AGES = (1.5, 4.0)  # seconds after the post was taken as published
MODERATION = 3.0  # seconds TikTok holds the public id back: past the wait, and past the first age


async def test_a_post_moderated_past_the_status_wait_gets_its_url_and_its_engagement(
        kafka_bootstrap, topic_prefix, database_url, monkeypatch):
    monkeypatch.setattr(_tiktok, "MODERATION_WAIT_SECONDS", 0.5)
    async with AsyncExitStack() as stack:
        sandbox_url, app = await serve_sandbox_app(stack, processing_seconds=0.1, engagement_timescale_seconds=0.5,
                                                   tiktok_moderation_seconds=MODERATION)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        settings = replace(settings, queue=replace(settings.queue, engagement_ages_seconds=AGES))
        await connect_accounts(settings, [("tiktok", "creator-moderated")])
        await stack.enter_async_context(Pipeline(settings, ["planner", "queue", "publisher-tiktok", "poller"]))

        event = event_json("moderated-1", [("tiktok", "creator-moderated")], f"{sandbox_url}/media/clip.mp4?bytes=300000")
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, [event], key=b"moderated-1")

        async def collected():
            rows = await target_rows(database_url)
            return rows[0] if rows and rows[0]["engagement_checks"] == len(AGES) else None

        target = await wait_for(collected, 40, "both collections done")
        [publish] = app.state.sandbox.tiktok.publishes.values()

        async def learnt():
            ages = [r["age_seconds"] for r in await engagement_rows(database_url)]
            return ages if AGES[-1] in ages else None

        await wait_for(learnt, 20, "the last figures in the planner's store")

    moderated_at = publish.processing_from + 0.1 + MODERATION
    assert target["status"] == "posted"
    assert target["published_at"].timestamp() < moderated_at, "taken as published before its public id was out"
    assert re.fullmatch(rf"https://www\.tiktok\.com/@[^/]*/video/{publish.post_id}", target["url"] or ""), \
        "the URL the engagement read found it by"
