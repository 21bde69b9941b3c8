"""A consumer expelled from its group (its session timed out) whose partitions another member
held meanwhile is told them again when it rejoins and gets the same ones back: its per-account
caps must count as spent then (publishers/limits.py)."""

import asyncio
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider

from harness import settings_for, wait_for
from services.runtime import build_broker, ensure_topics, subscribe_batches

pytestmark = pytest.mark.integration


async def test_an_expelled_consumer_takes_on_the_partitions_it_gets_back(kafka_bootstrap, topic_prefix):
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    topic = f"{topic_prefix}expel"
    await ensure_topics(settings.kafka, [topic])
    told: dict[str, list[set[int]]] = {"a": [], "b": []}
    threads: set[threading.Thread] = set()

    async def handler(records):
        pass

    def member(name):
        # the assignor orders members by id, and a member id starts with the client id: "a"
        # comes first again after rejoining, so it gets the same partitions back
        broker = build_broker(settings.kafka, TracerProvider(), f"expel-{name}")

        def took_on(partitions):
            threads.add(threading.current_thread())
            told[name].append({tp.partition for tp in partitions})

        watch = subscribe_batches(broker, settings.kafka, topics=[topic], group_id="expel-test",
                                  handler=handler, on_assigned=took_on)
        return broker, watch

    (broker_a, watch_a), (broker_b, _) = member("a"), member("b")
    every = set(range(settings.kafka.partitions))
    await broker_a.start()
    try:
        await wait_for(lambda: asyncio.sleep(0, told["a"] == [every]), 15, "a's first assignment")
        await broker_b.start()
        try:
            await wait_for(lambda: asyncio.sleep(0, told["b"]), 15, "b's share")
            mine = {tp.partition for tp in watch_a.subscriber.consumer.assignment()}
            assert mine and mine != every and told["a"] == [every]  # a kept its share: nothing new

            coordinator = watch_a.subscriber.consumer._coordinator

            async def silent():  # the broker hears nothing of a: it expels it after the session
                return True

            coordinator._do_heartbeat = silent
            await wait_for(lambda: asyncio.sleep(0, told["b"][-1] == mine), 15, "b taking a's share")
            del coordinator._do_heartbeat  # a learns it was expelled, revokes and rejoins
            await wait_for(lambda: asyncio.sleep(0, len(told["a"]) > 1), 15, "a rejoining")
            assert told["a"] == [every, mine]  # the same partitions back, b's meanwhile
            assert {tp.partition for tp in watch_a.subscriber.consumer.assignment()} == mine
        finally:
            await broker_b.stop()
    finally:
        await broker_a.stop()
    assert threads == {threading.main_thread()}  # on the event loop, not in FastStream's threads
