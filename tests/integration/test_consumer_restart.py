"""A consume loop that raises is restarted by FastStream, which keeps the dead task in the
subscriber's `tasks` beside the new one: the consumer still counts as running, and consumes."""

import asyncio

import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber
from opentelemetry.sdk.trace import TracerProvider

from harness import produce, settings_for, wait_for
from services.runtime import build_broker, ensure_topics, subscribe_batches

pytestmark = pytest.mark.integration


async def test_a_restarted_consume_loop_counts_as_running(kafka_bootstrap, topic_prefix, monkeypatch):
    settings = settings_for(kafka_bootstrap, topic_prefix, "unused")
    topic = f"{topic_prefix}restart"
    await ensure_topics(settings.kafka, [topic])
    broker = build_broker(settings.kafka, TracerProvider(), "restart-test")
    handled: list[bytes] = []

    async def handler(records):
        handled.extend(r.value for r in records)

    watch = subscribe_batches(broker, settings.kafka, topics=[topic], group_id="restart-test",
                              handler=handler)
    get_msg, broke = BatchSubscriber.get_msg, []

    async def breaking_once(self, consumer):
        if self is watch.subscriber and not broke:
            broke.append(True)
            raise RuntimeError("the consume loop broke")  # not a KafkaError: the loop ends
        return await get_msg(self, consumer)

    monkeypatch.setattr(BatchSubscriber, "get_msg", breaking_once)
    await broker.start()
    try:
        await wait_for(lambda: asyncio.sleep(0, len(watch.subscriber.tasks) == 2), 10, "the restart")
        dead, live = watch.subscriber.tasks
        assert dead.done() and isinstance(dead.exception(), RuntimeError) and not live.done()
        assert watch.running and (await watch.check(60))["running"]
        await produce(kafka_bootstrap, topic, [b"after"], key=b"k")
        await wait_for(lambda: asyncio.sleep(0, handled == [b"after"]), 30, "a batch after the restart")
    finally:
        await broker.stop()
    assert not watch.running and watch.subscriber.tasks == []
