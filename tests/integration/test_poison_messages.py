"""A consumer sets aside what it cannot process and waits out what is an outage."""

import asyncio
import base64
from contextlib import asynccontextmanager

import pytest
from opentelemetry.sdk.trace import TracerProvider

from contracts import DeadLetter, Topics
from harness import produce, read_topic, settings_for, wait_for
from services.runtime import build_broker, ensure_topics, subscribe_batches

pytestmark = pytest.mark.integration


@asynccontextmanager
async def consuming(kafka_bootstrap, topic_prefix, name, handler):
    """A consumer of `<prefix>poison.<name>` in group `<name>` running `handler`; yields the topic."""
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    topic = f"{topic_prefix}poison.{name}"
    await ensure_topics(settings.kafka, [topic, topic_prefix + Topics.DEAD_LETTER])
    broker = build_broker(settings.kafka, TracerProvider(), name)
    subscribe_batches(broker, settings.kafka, topics=[topic], group_id=name, handler=handler)
    await broker.start()
    try:
        yield topic
    finally:
        await broker.stop()


async def test_a_poison_record_is_dead_lettered_and_an_outage_is_retried(kafka_bootstrap, topic_prefix):
    handled: list[bytes] = []
    outage = {"left": 2}

    async def handler(records):
        if outage["left"]:  # the database is down for the first two reads
            outage["left"] -= 1
            raise ConnectionRefusedError("database unreachable")
        for record in records:
            if record.value == b"poison":
                raise ValueError("cannot handle this one")
        handled.extend(r.value for r in records)

    async with consuming(kafka_bootstrap, topic_prefix, "poison-test", handler) as topic:
        await produce(kafka_bootstrap, topic, [b"one", b"poison", b"two"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, {b"one", b"two"} <= set(handled)), 30, "the good records")
        await produce(kafka_bootstrap, topic, [b"three"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, b"three" in handled), 30, "the consumer going on")

    letters = [DeadLetter.from_bytes(r.value)
               for r in await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 1)]
    assert len(letters) == 1
    assert letters[0].reason == "processing_failed" and "cannot handle this one" in letters[0].message
    assert letters[0].consumer == "poison-test" and letters[0].source_topic == topic
    assert b"poison" not in handled and outage["left"] == 0


async def test_a_record_too_large_to_carry_whole_is_dead_lettered_cut_to_fit(kafka_bootstrap, topic_prefix):
    """Its letter (base64, a third larger) would be over the broker's message limit: a consumer
    retrying the send as an outage would stop on it for good."""
    handled: list[bytes] = []
    huge = b"poison" + b"x" * 900_000

    async def handler(records):
        for record in records:
            if record.value.startswith(b"poison"):
                raise ValueError("cannot handle this one")
        handled.extend(r.value for r in records)

    async with consuming(kafka_bootstrap, topic_prefix, "poison-large-test", handler) as topic:
        await produce(kafka_bootstrap, topic, [b"one", huge, b"two"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, {b"one", b"two"} <= set(handled)), 30, "the records after it")

    [record] = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 1)
    letter = DeadLetter.from_bytes(record.value)
    assert letter.truncated and letter.payload_bytes == len(huge)
    assert huge.startswith(base64.b64decode(letter.payload_base64)) and letter.source_offset == 1
    assert len(record.value) < 1_000_000
