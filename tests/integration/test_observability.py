"""The metrics a post moves through the pipeline, and the queue's length from Postgres."""

from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from prometheus_client import REGISTRY

from contracts import Platform, Topics
from services.queue.stats import collect
from services.quotas import quota_rules, window_start
from services.runtime import QuotaSettings, apply_migrations
from harness import Pipeline, connect_accounts, event_json, produce, serve_sandbox, settings_for, target_rows, wait_for

pytestmark = pytest.mark.integration

PLATFORMS = [p.value for p in Platform]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    values = {}
    for p in PLATFORMS:
        values[f"posted/{p}"] = sample("autopost_target_transitions_total", platform=p, status="posted")
        values[f"results/{p}"] = sum(
            sample("autopost_publish_results_total", platform=p, outcome=o, error_class="")
            for o in ("accepted", "published"))
        values[f"lateness/{p}"] = sample("autopost_dispatch_lateness_seconds_count", platform=p)
        values[f"published-late/{p}"] = sample("autopost_publish_lateness_seconds_count", platform=p)
        values[f"limiter/{p}"] = sample("autopost_rate_limit_wait_seconds_count", platform=p)
    for stage in ("plan", "store", "dispatch", "relay", "apply", "publish", "check"):
        values[f"stage/{stage}"] = sample("autopost_stage_duration_seconds_count", stage=stage)
    values["observed"] = sum(sample("autopost_status_observations_total", platform=p, state="published")
                             for p in PLATFORMS)
    return values


async def test_a_post_moves_the_outcome_time_and_lateness_metrics(kafka_bootstrap, topic_prefix, database_url):
    before = snapshot()
    async with AsyncExitStack() as stack:
        sandbox_url = await serve_sandbox(stack, processing_seconds=0.2)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        await stack.enter_async_context(Pipeline(settings))
        await connect_accounts(settings, [("tiktok", "m-tt"), ("instagram", "m-ig"), ("youtube", "m-yt")])
        event = event_json("m-1", [("tiktok", "m-tt"), ("instagram", "m-ig"), ("youtube", "m-yt")],
                           f"{sandbox_url}/media/m.mp4?bytes=4096")
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, [event], key=b"m-1")

        async def posted():
            rows = await target_rows(database_url)
            return len(rows) == 3 and all(r["status"] == "posted" for r in rows)

        await wait_for(posted, 60, "every target posted")
    after = snapshot()
    delta = {k: after[k] - before[k] for k in after}
    for p in PLATFORMS:
        assert delta[f"posted/{p}"] == 1, p
        assert delta[f"results/{p}"] >= 1, p
        assert delta[f"lateness/{p}"] >= 1, p
        assert delta[f"published-late/{p}"] == 1, p
        # YouTube publishes no per-minute caps (its limits are daily quota units)
        assert delta[f"limiter/{p}"] >= (0 if p == "youtube" else 1), p
    for stage in ("plan", "store", "dispatch", "relay", "apply", "publish", "check"):
        assert delta[f"stage/{stage}"] >= 1, stage
    assert delta["observed"] >= 1, "processing platforms were polled until published"


async def test_queue_length_counts_due_scheduled_and_publishing_targets(kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    events = [
        event_json("s-now", [("tiktok", "s-a"), ("youtube", "s-b")], "https://cdn.test/a.mp4"),
        event_json("s-later", [("tiktok", "s-c"), ("instagram", "s-d")], "https://cdn.test/b.mp4",
                   schedule={"mode": "at", "scheduledTime": later}),
    ]
    # no publishers run: what is due is dispatched and stays publishing
    async with Pipeline(settings, ["planner", "queue"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, events)

        async def dispatched():
            rows = await target_rows(database_url)
            conn = await asyncpg.connect(database_url)
            try:
                relayed = await conn.fetchval("SELECT count(*) FROM outbox") == 0
            finally:
                await conn.close()
            return len(rows) == 4 and sum(r["status"] == "publishing" for r in rows) == 2 and relayed

        await wait_for(dispatched, 30, "the due targets dispatched and their requests sent")
    conn = await asyncpg.connect(database_url)
    try:
        # one more target, due an hour ago and not dispatched: the backlog
        await conn.execute("UPDATE targets SET due_at = now() - interval '1 hour', status = 'pending'"
                           " WHERE account_id = 's-d'")
        await collect(conn, PLATFORMS)
    finally:
        await conn.close()
    assert sample("autopost_queue_targets", platform="tiktok", status="publishing") == 1
    assert sample("autopost_queue_targets", platform="youtube", status="publishing") == 1
    assert sample("autopost_queue_targets", platform="tiktok", status="pending") == 1
    assert sample("autopost_queue_scheduled_targets", platform="tiktok") == 1
    assert sample("autopost_queue_due_targets", platform="tiktok") == 0
    assert sample("autopost_queue_due_targets", platform="instagram") == 1
    assert 3500 < sample("autopost_queue_oldest_due_age_seconds", platform="instagram") < 3700
    assert sample("autopost_queue_oldest_due_age_seconds", platform="youtube") == 0
    assert sample("autopost_outbox_messages") == 0


async def test_accounts_to_reconnect_and_app_wide_quota_left_come_from_postgres(database_url):
    rules = quota_rules(QuotaSettings(youtube_daily_units=10_000, youtube_daily_uploads=100))
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        await conn.executemany(
            "INSERT INTO accounts (platform, account_id, status) VALUES ($1, $2, $3)",
            [("tiktok", "r-1", "needs_reconnect"), ("tiktok", "r-2", "needs_reconnect"),
             ("instagram", "r-3", "connected")])
        start = window_start(rules["youtube.units"], datetime.now(timezone.utc))
        await conn.execute("INSERT INTO quota_counters (bucket, scope, window_start, used) VALUES"
                           " ('youtube.units', '', $1, 2500), ('youtube.units', '', $2, 9000)",
                           start, start - timedelta(days=1))  # yesterday's does not count
        await conn.execute("INSERT INTO quota_limits (bucket, scope, quota_total, learned_at)"
                           " VALUES ('youtube.uploads', '', 60, now())")  # the learnt limit wins
        await collect(conn, PLATFORMS, list(rules.values()))
    finally:
        await conn.close()
    assert sample("autopost_accounts_needing_reconnect", platform="tiktok") == 2
    assert REGISTRY.get_sample_value("autopost_accounts_needing_reconnect", {"platform": "instagram"}) == 0
    assert sample("autopost_quota_remaining", platform="youtube", quota="youtube.units") == 7500
    assert sample("autopost_quota_remaining", platform="youtube", quota="youtube.uploads") == 60
    assert REGISTRY.get_sample_value("autopost_quota_remaining", {"platform": "tiktok",
                                                                  "quota": "tiktok.direct_posts"}) is None
