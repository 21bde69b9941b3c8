"""A batch whose handling keeps failing is read again after a back-off that grows, not at once:
a dead-letter topic the broker refuses, a handler raising on every read, must not make the
consumer spin on the same batch."""

import asyncio
import time

import pytest
from aiokafka.errors import KafkaConnectionError
from opentelemetry.sdk.trace import TracerProvider

from contracts import Topics
from harness import produce, settings_for, wait_for
from services.runtime import _broker, build_broker, ensure_topics, subscribe_batches

pytestmark = pytest.mark.integration


async def short_pauses_on(kafka_bootstrap, topic_prefix, name, monkeypatch):
    """Settings and a topic of its own for a test, with the back-off's pauses short: 0.1 s
    growing to 0.8 s (in service, 2 s to 30 s)."""
    monkeypatch.setattr(_broker, "INFRA_RETRY_SECONDS", 0.1)
    monkeypatch.setattr(_broker, "RETRY_CAP_SECONDS", 0.8)
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    topic = f"{topic_prefix}{name}"
    await ensure_topics(settings.kafka, [topic, topic_prefix + Topics.DEAD_LETTER])
    return settings, topic


async def test_a_batch_failing_every_time_is_retried_with_growing_pauses(kafka_bootstrap, topic_prefix, monkeypatch):
    settings, topic = await short_pauses_on(kafka_bootstrap, topic_prefix, "backoff.poison", monkeypatch)

    reads: list[float] = []  # each time the failing batch is handed over whole
    handled: set[bytes] = set()
    dead_letters = {"broken": True}

    async def handler(records):
        if len(records) > 1:
            reads.append(time.monotonic())
        if any(r.value == b"poison" for r in records):
            raise ValueError("cannot handle this one")
        handled.update(r.value for r in records)

    real_publish_all = _broker.publish_all

    async def publish_all(broker, messages):
        if dead_letters["broken"]:  # not an outage the wrapper knows to wait out
            raise RuntimeError("the dead-letter topic is refused")
        await real_publish_all(broker, messages)

    monkeypatch.setattr(_broker, "publish_all", publish_all)
    broker = build_broker(settings.kafka, TracerProvider(), "backoff-test")
    watch = subscribe_batches(broker, settings.kafka, topics=[topic], group_id="backoff-test", handler=handler)
    await broker.start()
    try:
        # records behind the batch: the fetch after each rewind is answered at once
        behind = [b"r%d" % i for i in range(1000)]
        await produce(kafka_bootstrap, topic, [b"one", b"poison", b"two", *behind], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, bool(reads)), 30, "the first read")
        await asyncio.sleep(4.0)
        window = [t for t in reads if t - reads[0] <= 4.0]
        assert watch.running
        assert len(window) < 15, f"{len(window)} reads in 4 s: no back-off"
        gaps = [b - a for a, b in zip(window, window[1:])]
        assert max(gaps) <= 0.8 + 1.0  # capped (the cap, plus a read)
        state = await watch.check(stall_seconds=60)
        assert state["running"] and state["retries"] >= 1 and not state["stalled"]

        dead_letters["broken"] = False  # the letter can be sent now: the batch completes
        await wait_for(lambda: asyncio.sleep(0, {b"one", b"two", *behind} <= handled), 30, "every good record")
        await produce(kafka_bootstrap, topic, [b"three"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, b"three" in handled), 30, "the consumer going on")
        assert (await watch.check(stall_seconds=60))["retries"] == 0  # reset by a completed batch
    finally:
        await broker.stop()


async def test_an_outage_is_waited_out_and_the_batch_read_again_not_dead_lettered(kafka_bootstrap, topic_prefix, monkeypatch):
    settings, topic = await short_pauses_on(kafka_bootstrap, topic_prefix, "backoff.outage", monkeypatch)
    reads: list[float] = []
    handled: list[bytes] = []
    outage = {"left": 6}

    async def handler(records):
        reads.append(time.monotonic())
        if outage["left"]:
            outage["left"] -= 1
            raise KafkaConnectionError("the broker is unreachable")
        handled.extend(r.value for r in records)

    broker = build_broker(settings.kafka, TracerProvider(), "backoff-outage")
    subscribe_batches(broker, settings.kafka, topics=[topic], group_id="backoff-outage", handler=handler)
    await broker.start()
    try:
        await produce(kafka_bootstrap, topic, [b"a", b"b"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, {b"a", b"b"} <= set(handled)), 30, "the records after the outage")
        assert outage["left"] == 0 and sorted(handled) == [b"a", b"b"]  # read again, not dead-lettered
    finally:
        await broker.stop()
