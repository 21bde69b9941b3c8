"""An Instagram reel whose container takes longer than a publisher waits: the publisher lets go
of it, the queue comes back without spending an attempt, and the reel is posted once."""

from contextlib import AsyncExitStack
from dataclasses import replace

import asyncpg
import httpx
import pytest

from harness import Pipeline, connect_accounts, event_json, produce, serve_sandbox_app, settings_for, wait_for
from contracts import Topics

pytestmark = pytest.mark.integration


async def test_a_container_still_processing_is_looked_at_again_at_no_attempts_cost(
    kafka_bootstrap, topic_prefix, database_url
):
    async with AsyncExitStack() as stack:
        # the reel processes for 2.5 s; each publish waits 0.3 s for it, then lets go for 0.5 s
        sandbox_url, app = await serve_sandbox_app(stack, processing_seconds=2.5)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        settings = replace(settings, platforms=replace(settings.platforms, instagram_poll_timeout_seconds=0.3,
                                                       instagram_container_recheck_seconds=0.5))
        account = ("instagram", "17841400000000077")
        await connect_accounts(settings, [account])
        await stack.enter_async_context(Pipeline(settings, ["planner", "queue", "publisher-instagram"]))
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED,
                      [event_json("slow-reel", [account], f"{sandbox_url}/media/reel.mp4?bytes=700000",
                                  contentType="reel")], key=b"slow-reel")
        conn = await asyncpg.connect(database_url)
        try:
            async def posted():
                row = await conn.fetchrow("SELECT status, failures, attempt, url FROM targets")
                return row if row is not None and row["status"] == "posted" else None

            target = await wait_for(posted, 60, "the reel posted")
            waits = await conn.fetch("SELECT outcome, error_code FROM attempts WHERE outcome <> 'posted'")
        finally:
            await conn.close()
        async with httpx.AsyncClient() as http:
            published = (await http.get(f"{sandbox_url}/_sandbox/published")).json()
            stats = (await http.get(f"{sandbox_url}/_sandbox/stats")).json()

    assert target["failures"] == 0, "waiting for the platform spent no attempt"
    assert target["attempt"] >= 3 and target["url"].startswith("https://www.instagram.com/reel/")
    assert waits and {w["error_code"] for w in waits} == {"container_not_ready"}
    assert len(waits) == target["attempt"] - 1
    assert [p["url"] for p in published] == [target["url"]] and stats["duplicates"] == 0
    assert len(app.state.sandbox.instagram.containers) == 1, "every try resumed the one container"
