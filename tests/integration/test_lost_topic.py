"""A topic lost and recreated under running consumers (a broker that lost data): they go on."""

import asyncio

import pytest
from opentelemetry.sdk.trace import TracerProvider

from harness import produce, settings_for, wait_for
from services.devstack import create_missing_topics, delete_topics
from services.runtime import build_broker, consumers_of, ensure_topics, subscribe_batches

pytestmark = pytest.mark.integration


async def test_consumers_read_a_recreated_topic_from_its_start(kafka_bootstrap, topic_prefix):
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    topic = topic_prefix + "lost.test"
    await ensure_topics(settings.kafka, [topic])
    seen: list[bytes] = []

    async def handler(records):
        seen.extend(r.value for r in records)

    broker = build_broker(settings.kafka, TracerProvider(), "lost-test")
    subscribe_batches(broker, settings.kafka, topics=[topic], group_id="lost-test", handler=handler)
    await broker.start()
    (watch,) = consumers_of(broker)

    async def watching():  # what every service host does between probes
        while True:
            await watch.check(stall_seconds=60)
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watching())
    try:
        await produce(kafka_bootstrap, topic, [f"old-{i}".encode() for i in range(30)], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, len(seen) >= 30), 20, "the first records")
        await delete_topics(kafka_bootstrap, [topic])
        await create_missing_topics(kafka_bootstrap, [topic], settings.kafka.partitions)
        await produce(kafka_bootstrap, topic, [b"new-1", b"new-2"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, {b"new-1", b"new-2"} <= set(seen)), 30,
                       "the records written after the topic came back")
    finally:
        watcher.cancel()
        await broker.stop()
