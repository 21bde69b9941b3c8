"""Running services in-process against the real broker and Postgres, for integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import Platform
from services.catalog import SERVICES, build_service
from services.runtime import (
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
    """Settings for tests: the local broker's fast group timings, quick status checks; with a
    sandbox, the sandbox mode for media (plain http from loopback)."""
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
        sandbox_url=sandbox_url,
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


async def serve_sandbox(stack: AsyncExitStack, processing_seconds: float = 0.2, **settings: Any) -> str:
    from sandbox import SandboxSettings, create_app

    app = create_app(SandboxSettings(processing_seconds=processing_seconds, **settings))
    server = AsgiServer(app, "127.0.0.1", 0)
    await server.start()
    stack.push_async_callback(server.stop)
    return f"http://127.0.0.1:{server.port}"


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
