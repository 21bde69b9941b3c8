"""Two replicas of a publisher share its partitions; killing one hands them to the other, and
nothing is posted twice."""

import os
import signal
import sys
from contextlib import AsyncExitStack
from datetime import datetime, timezone

import httpx
import pytest

from contracts import Topics
from services.devstack import ProcessGroup
from services.devstack.stack import free_port
from harness import (
    Pipeline,
    connect_accounts,
    event_json,
    produce,
    serve_sandbox,
    settings_for,
    target_rows,
    wait_for,
)

pytestmark = pytest.mark.e2e

GROUP = "publisher.tiktok"
ACCOUNTS, POSTS_EACH = 12, 5
POSTS = ACCOUNTS * POSTS_EACH


def replica_env(settings, port: int) -> dict[str, str]:
    kafka = settings.kafka
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "AUTOPOST_TOPIC_PREFIX": kafka.topic_prefix,
        "AUTOPOST_TOPIC_PARTITIONS": str(kafka.partitions),
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "DATABASE_URL": settings.database_url,
        "AUTOPOST_CREDENTIAL_KEYS": settings.accounts.credential_keys,
        "AUTOPOST_SANDBOX_URL": settings.sandbox_url,
        "AUTOPOST_HTTP_PORT": str(port),
        "AUTOPOST_LAG_INTERVAL_SECONDS": "0",
        "AUTOPOST_LOG_LEVEL": "WARNING",
        "AUTOPOST_LOG_FORMAT": "text",
        "OTEL_TRACES_EXPORTER": "none",
        # each account's posts go out a quarter second apart: a batch is in flight for a while
        "AUTOPOST_PUBLISH_RATE_TIKTOK": "1/0.25",
    }


async def assigned(http: httpx.AsyncClient, port: int, group: str) -> int:
    """Partitions the replica holds, as its /readyz reports them."""
    try:
        body = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
    except httpx.HTTPError:
        return -1
    consumers = body["checks"]["consumers"]
    details = consumers["detail"] if isinstance(consumers, dict) else []
    return sum(c["assigned"] for c in details if c["group"] == group)


async def results_sent(http: httpx.AsyncClient, port: int) -> float:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("autopost_publish_results_total{"))


async def test_replicas_share_partitions_and_a_killed_one_hands_them_over_without_double_posts(
    kafka_bootstrap, topic_prefix, database_url
):
    async with AsyncExitStack() as stack:
        sandbox_url = await serve_sandbox(stack, processing_seconds=0.0)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        await stack.enter_async_context(Pipeline(settings, ["planner", "queue", "poller"]))
        await connect_accounts(settings, [("tiktok", f"acct-{i}") for i in range(ACCOUNTS)])
        group = await stack.enter_async_context(ProcessGroup(output=open(os.devnull, "w")))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=5))
        ports = {"a": free_port(), "b": free_port()}
        for name, port in ports.items():
            await group.start(name, [sys.executable, "-m", "services.cli", "service", "publisher-tiktok"],
                              env=replica_env(settings, port))

        async def shared():
            held = {name: await assigned(http, port, topic_prefix + GROUP) for name, port in ports.items()}
            return held if all(n > 0 for n in held.values()) and sum(held.values()) == 3 else None

        await wait_for(shared, 30, "both replicas holding partitions")

        # at a fixed time: `asap` would space one account's posts by the planner's rules
        now = {"mode": "at", "scheduledTime": datetime.now(timezone.utc).isoformat()}
        events = [event_json(f"r-{i}", [("tiktok", f"acct-{i % ACCOUNTS}")], f"{sandbox_url}/media/r.mp4?bytes=4096",
                             schedule=now)
                  for i in range(POSTS)]
        await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, events)

        async def a_publishing():
            return await results_sent(http, ports["a"]) >= 2

        # replica a has published some of its batch and not committed it: kill it there
        await wait_for(a_publishing, 30, "replica a publishing")
        group.kill("a", signal.SIGKILL)

        async def taken_over():
            return await assigned(http, ports["b"], topic_prefix + GROUP) == 3

        await wait_for(taken_over, 30, "the survivor holding every partition")

        async def all_posted():
            rows = await target_rows(database_url)
            return len(rows) == POSTS and all(r["status"] == "posted" for r in rows)

        # the killed replica's leases (30 s) run out first: its requests are sent again
        await wait_for(all_posted, 120, "every target posted")
        published = (await http.get(f"{sandbox_url}/_sandbox/published")).json()

    captions = [p["caption"] for p in published]
    duplicates = sorted({c for c in captions if captions.count(c) > 1})
    assert len(set(captions)) == POSTS, "every target published"
    # the survivor re-reads the killed replica's uncommitted batch: the remote handles it stored
    # (and its claims) make that a resume or a check, never a second post
    assert not duplicates, f"{len(duplicates)} of {POSTS} posted twice: {duplicates}"
