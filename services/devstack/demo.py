"""The demo: content for a few accounts on all three platforms, followed to the end."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from contracts import Platform, Topics
from services.admin import format_table
from services.runtime import build_tracer_provider, current_carrier, trace_id_of

ACCOUNTS = ("acme", "globex", "initech")
EXPECTED = "posted"
FINAL = ("posted", "failed", "cancelled")


def demo_events(count: int, sandbox_url: str, start: datetime) -> list[dict[str, Any]]:
    """`count` posts, each to all three platforms, a few seconds ahead, half reels."""
    events = []
    for i in range(count):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        events.append({
            "upstreamId": f"demo-{start:%H%M%S}-{i}",
            "targets": [{"platform": p.value, "accountId": f"{account}-{p.value}"} for p in Platform],
            "media": [{"url": f"{sandbox_url}/media/demo-{i}.mp4?bytes=600000", "mimeType": "video/mp4"}],
            "caption": f"Demo post {i} from {account}",
            "hashtags": ["autopost", "demo"],
            "contentType": "reel" if i % 2 else "video",
            "schedule": {"mode": "at",
                         "scheduledTime": (start + timedelta(seconds=3 + i * 0.5)).isoformat()},
        })
    return events


async def submit_traced(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> dict[str, str]:
    """Send as an upstream system would, each event the root of its trace; returns trace ids."""
    provider = build_tracer_provider("upstream-demo")
    tracer = provider.get_tracer("autopost.demo")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    trace_ids = {}
    try:
        for event in events:
            with tracer.start_as_current_span("submit content"):
                carrier = current_carrier()
                headers = [(k, v.encode()) for k, v in carrier.items()]
                await producer.send_and_wait(topic, orjson.dumps(event), key=event["upstreamId"].encode(),
                                             headers=headers)
                trace_ids[event["upstreamId"]] = trace_id_of(carrier)
    finally:
        await producer.stop()
        provider.shutdown()
    return trace_ids


@dataclass
class TargetOutcome:
    post_id: str
    upstream_id: str
    platform: str
    account_id: str
    status: str
    url: str | None
    scheduled_time: datetime
    published_time: datetime | None
    trace_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "postId": self.post_id, "platform": self.platform, "accountId": self.account_id,
            "status": self.status, "url": self.url,
            "scheduledTime": self.scheduled_time.isoformat(),
            "publishedTime": self.published_time.isoformat() if self.published_time else None,
            "traceId": self.trace_id,
        }


async def outcomes(database_url: str, upstream_ids: list[str]) -> list[TargetOutcome]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT p.post_id, p.upstream_id, p.trace_context::text AS trace, t.platform, t.account_id,
                      t.status, t.url, t.scheduled_time, t.published_at
               FROM targets t JOIN posts p USING (post_id)
               WHERE p.upstream_id = ANY($1::text[]) ORDER BY p.upstream_id, t.platform""",
            upstream_ids,
        )
    finally:
        await conn.close()
    return [
        TargetOutcome(str(r["post_id"]), r["upstream_id"], r["platform"], r["account_id"], r["status"],
                      r["url"], r["scheduled_time"], r["published_at"], trace_id_of(orjson.loads(r["trace"])))
        for r in rows
    ]


def demo_accounts() -> list[tuple[Platform, str]]:
    return [(p, f"{account}-{p.value}") for account in ACCOUNTS for p in Platform]


async def run_demo(stack, count: int, *, timeout: float = 120.0, quiet: bool = False) -> list[TargetOutcome]:
    await stack.connect_accounts(demo_accounts())  # through the sandbox's OAuth, tokens sealed in Postgres
    start = datetime.now(timezone.utc)
    events = demo_events(count, stack.sandbox_url, start)
    ids = [e["upstreamId"] for e in events]
    await submit_traced(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
    expected_targets = count * len(Platform)
    deadline, last_line = time.monotonic() + timeout, ""
    while True:
        current = await outcomes(stack.database_url, ids)
        line = _progress(current, expected_targets)
        if line != last_line and not quiet:
            print(f"[demo] {line}", file=sys.stderr, flush=True)
            last_line = line
        done = len(current) == expected_targets and all(t.status in FINAL for t in current)
        if done or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.5)


def _progress(current: list[TargetOutcome], expected: int) -> str:
    counts: dict[str, int] = {}
    for t in current:
        counts[t.status] = counts.get(t.status, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"{len(current)}/{expected} targets planned: {parts or 'waiting for the planner'}"


def succeeded(results: list[TargetOutcome], count: int) -> bool:
    return len(results) == count * len(Platform) and all(
        t.status == EXPECTED and t.url for t in results)


def render_table(results: list[TargetOutcome]) -> str:
    return format_table(
        ("post", "platform", "account", "status", "url", "scheduled", "published", "trace id"),
        [(t.upstream_id, t.platform, t.account_id, t.status, t.url, f"{t.scheduled_time:%H:%M:%S}",
          f"{t.published_time:%H:%M:%S}" if t.published_time else None, t.trace_id) for t in results],
    )
