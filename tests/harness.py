"""Running services in-process against the real broker and Postgres, for integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import (
    ContentType,
    MediaRef,
    PlannedTarget,
    Platform,
    PostContent,
    PostPlanned,
    post_id_for,
    target_id_for,
)
from services.accounts import Account, connect_sandbox_accounts, new_key_entry
from services.catalog import SERVICES, build_service
from services.runtime import (
    AccountSettings,
    AsgiServer,
    KafkaSettings,
    PlatformSettings,
    QueueSettings,
    ServiceContext,
    ServiceHost,
    Settings,
)

ALL_SERVICES = tuple(SERVICES)


def settings_for(
    bootstrap: str, prefix: str, database_url: str, sandbox_url: str | None = None, **overrides: Any
) -> Settings:
    """Settings for tests: the local broker's fast group timings, quick status checks, a
    credential key of their own (with the sandbox's OAuth apps when there is a sandbox), and with
    a sandbox, the sandbox mode for media (plain http from loopback)."""
    api_bases = {p: f"{sandbox_url}/{p.value}" for p in Platform} if sandbox_url else {}
    settings = Settings(
        kafka=KafkaSettings(
            bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=3,
            session_timeout_ms=2000, heartbeat_interval_ms=250, max_poll_records=500,
        ),
        queue=QueueSettings(
            lease_seconds=30, status_first_check_seconds=0.2, status_max_interval_seconds=1.0,
            max_idle_wait_seconds=5,
        ),
        database_url=database_url,
        http_port=0,
        lag_interval_seconds=0,  # tests that measure lag turn it on
        stats_interval_seconds=0,
        sandbox_url=sandbox_url,
        accounts=AccountSettings.for_sandbox(new_key_entry("test")) if sandbox_url
        else AccountSettings(credential_keys=new_key_entry("test")),
        platforms=PlatformSettings(media_allow_loopback=sandbox_url is not None, claim_seconds=5.0),
        **({"api_bases": api_bases} if api_bases else {}),
    )
    return replace(settings, **overrides)


class Pipeline:
    """Some or all services, each with its own tracer provider, in this event loop."""

    def __init__(self, settings: Settings, names: Iterable[str] = ALL_SERVICES,
                 exporter: SpanExporter | None = None):
        self.settings = settings
        self.hosts = {
            name: ServiceHost(build_service(name, ServiceContext(name, settings, exporter=exporter)))
            for name in names
        }

    def service(self, name: str):
        return self.hosts[name].service

    async def __aenter__(self) -> "Pipeline":
        await asyncio.gather(*(host.start() for host in self.hosts.values()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(host.stop() for host in self.hosts.values()), return_exceptions=True)


async def serve_sandbox(stack: AsyncExitStack, processing_seconds: float = 0.2, **options: Any) -> str:
    """The sandbox over real HTTP; every platform call must carry a token its OAuth issued."""
    url, _ = await serve_sandbox_app(stack, processing_seconds, **options)
    return url


async def serve_sandbox_app(stack: AsyncExitStack, processing_seconds: float = 0.2, *,
                            wrap: Callable[[Any], Any] | None = None, **options: Any):
    """(url, app): the app too, for tests that look into the sandbox's state; `wrap` puts an
    ASGI middleware in front of it (e.g. one that slows a path down)."""
    from sandbox import SandboxSettings, create_app

    settings = SandboxSettings(processing_seconds=processing_seconds, **{"require_issued_tokens": True, **options})
    app = create_app(settings)
    server = AsgiServer(wrap(app) if wrap else app, "127.0.0.1", 0)
    await server.start()
    stack.push_async_callback(server.stop)
    return f"http://127.0.0.1:{server.port}", app


async def connect_accounts(settings: Settings, accounts: Iterable[tuple[Platform | str, str]]) -> list[Account]:
    """Connect accounts through the sandbox's OAuth flow, into `settings`' database."""
    return await connect_sandbox_accounts(settings, accounts)


async def produce(
    bootstrap: str, topic: str, payloads: Iterable[bytes], *, key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await asyncio.gather(*[
            await producer.send(topic, payload, key=key, headers=headers) for payload in payloads
        ])
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """Read `count` records from the start of every partition (no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout
        while not partitions and time.monotonic() < deadline:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in partitions or ()])
        await consumer.seek_to_beginning()
        records: list[Any] = []
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def batch_sizes(coalesced: Any) -> list[int]:
    """How many calls each statement of a `Coalesced` took, from now on (one entry a batch)."""
    sizes: list[int] = []
    run = coalesced.run

    async def counted(items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return await run(items)

    coalesced.run = counted
    return sizes


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` on time-out."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


async def target_rows(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT t.*, p.upstream_id FROM targets t JOIN posts p USING (post_id) ORDER BY t.created_at"
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def event_json(upstream_id: str, targets: list[tuple[str, str]], media_url: str, **extra: Any) -> bytes:
    body = {
        "upstreamId": upstream_id,
        "targets": [{"platform": p, "accountId": a} for p, a in targets],
        "media": [{"url": media_url}],
        "caption": f"post {upstream_id}",
        "hashtags": ["autopost"],
        "contentType": "video",
        "schedule": {"mode": "asap"},
    }
    body.update(extra)
    return orjson.dumps(body)


def planned_post(upstream_id: str, platforms=tuple(Platform), at: datetime | None = None) -> PostPlanned:
    post_id = post_id_for(upstream_id)
    at = at or datetime.now(timezone.utc)
    return PostPlanned(
        message_id=uuid.uuid5(post_id, "planned"),
        post_id=post_id,
        upstream_id=upstream_id,
        content=PostContent(content_type=ContentType.VIDEO, media=[MediaRef(url="https://cdn.test/a.mp4")],
                            caption="hello", hashtags=["#x"]),
        targets=[
            PlannedTarget(target_id=target_id_for(post_id, p, f"acct-{p.value}"), platform=p,
                          account_id=f"acct-{p.value}", caption="hello", hashtags=["#x"],
                          scheduled_time=at, expected_engagement=0.1, strategy="asap")
            for p in platforms
        ],
        planned_at=at,
    )


async def engagement_rows(database_url: str) -> list[dict[str, Any]]:
    """The planner's engagement observations, youngest age first."""
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch("SELECT * FROM engagement_observations ORDER BY age_seconds")]
    finally:
        await conn.close()


async def rows_with(database_url, status, count):
    rows = [r for r in await target_rows(database_url) if r["status"] == status]
    return rows if len(rows) >= count else None
