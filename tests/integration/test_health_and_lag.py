"""/livez, /readyz and /metrics tell the truth; consumer lag is right on the local broker."""

import asyncio
import contextlib

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.devstack import start_tansu
from services.devstack.stack import free_port
from services.queue.app import QueueService
from services.runtime import (
    Service,
    ServiceContext,
    ServiceHost,
    consumers_of,
    create_missing_topics,
    measure_lag,
    subscribe_batches,
)
from harness import produce, settings_for, wait_for

pytestmark = pytest.mark.integration


async def test_lag_is_high_watermark_minus_committed_even_where_end_offsets_is_not_the_log_end(
    kafka_bootstrap, topic_prefix
):
    topic = topic_prefix + "lag"
    await create_missing_topics(kafka_bootstrap, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        # one record per batch on partition 0: there `end_offsets` answers the last batch's
        # base offset + 1 on the local broker, so only the fetch high watermark is right
        for i in range(30):
            await producer.send_and_wait(topic, b"x%d" % i, partition=0)
        await asyncio.gather(*[await producer.send(topic, b"y", partition=1) for _ in range(10)])
    finally:
        await producer.stop()

    group = topic_prefix + "group"
    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        committer.assign([tp0, tp1])
        await committer.commit({tp0: 12, tp1: 10})
    finally:
        await committer.stop()

    assert await measure_lag(kafka_bootstrap, group, [topic]) == {tp0: 18, tp1: 0}
    # a group that never committed starts at the log start (auto_offset_reset=earliest)
    assert await measure_lag(kafka_bootstrap, topic_prefix + "fresh", [topic]) == {tp0: 30, tp1: 10}


async def test_lag_counts_the_whole_log_while_the_commit_is_beyond_its_end(kafka_bootstrap, topic_prefix):
    """A topic recreated with fewer records than the group had read: the group commits nothing in
    the new log until it has read it from the start, so every record in it is lag, not none."""
    topic = topic_prefix + "lag-recreated"
    await create_missing_topics(kafka_bootstrap, [topic], partitions=1)
    await produce(kafka_bootstrap, topic, [b"new-%d" % i for i in range(5)], key=b"k")
    group = topic_prefix + "group-ahead"
    committer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await committer.start()
    try:
        tp = TopicPartition(topic, 0)
        committer.assign([tp])
        await committer.commit({tp: 30})  # where the group was in the log that is gone
    finally:
        await committer.stop()

    assert await measure_lag(kafka_bootstrap, group, [topic]) == {tp: 5}


class Holding(Service):
    """Consumes one topic and holds each batch until told to let go."""

    name = "holding"

    def __init__(self, ctx: ServiceContext, topic: str, group: str):
        super().__init__(ctx)
        self.topic, self.group = topic, group
        self.release = asyncio.Event()
        self.release.set()
        self.handled = 0

    def register(self, broker) -> None:
        subscribe_batches(broker, self.ctx.settings.kafka, topics=[self.topic], group_id=self.group,
                          handler=self.handle)

    async def handle(self, records) -> None:
        await self.release.wait()
        self.handled += len(records)


async def _status(http: httpx.AsyncClient, path: str) -> tuple[int, dict]:
    response = await http.get(path)
    return response.status_code, response.json()


async def test_readiness_fails_while_a_consumer_is_stalled_and_liveness_when_its_task_died(
    kafka_bootstrap, topic_prefix
):
    topic, group = topic_prefix + "held", topic_prefix + "holding"  # the group takes the prefix
    await create_missing_topics(kafka_bootstrap, [topic], partitions=1)
    settings = settings_for(kafka_bootstrap, topic_prefix, "postgresql://unused", stall_seconds=1.5,
                            lag_interval_seconds=0.3)
    service = Holding(ServiceContext("holding", settings), topic, "holding")
    port = free_port()
    async with ServiceHost(service, http_port=port) as host, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        async def ready():
            return (await _status(http, "/readyz"))[0] == 200

        await wait_for(ready, 15, "ready")
        assert (await _status(http, "/livez"))[0] == 200

        # a batch that does not finish: ready until it has run for stall_seconds, then not
        service.release.clear()
        await produce(kafka_bootstrap, topic, [b"one", b"two"])

        async def unready():
            code, body = await _status(http, "/readyz")
            return body if code == 503 else None

        body = await wait_for(unready, 15, "unready while the batch is held")
        (consumer,) = body["checks"]["consumers"]["detail"]
        assert consumer["group"] == group and consumer["stalled"] is True and consumer["running"] is True
        assert body["checks"]["kafka"] is True
        assert (await _status(http, "/livez"))[0] == 200, "a stall is not a reason to restart"

        metrics_text = (await http.get("/metrics")).text
        assert f'autopost_consumer_stalled{{group="{group}"}} 1.0' in metrics_text

        service.release.set()
        await wait_for(ready, 15, "ready again once the batch completed")
        assert service.handled == 2

        async def lag_zero():
            text = (await http.get("/metrics")).text
            return f'autopost_consumer_lag{{group="{group}",partition="0",topic="{topic}"}} 0.0' in text

        await wait_for(lag_zero, 15, "the lag gauge at 0 after the commit")
        text = (await http.get("/metrics")).text
        assert f'autopost_consumer_records_total{{group="{group}",topic="{topic}"}} 2.0' in text
        assert 'faststream_received_messages_total{app_name="holding"' in text

        # the consume task dies: only a restart mends that
        (watch,) = consumers_of(host.ctx.broker)
        for task in watch.subscriber.tasks:
            task.cancel()
        await asyncio.sleep(0.1)
        code, body = await _status(http, "/livez")
        assert code == 503 and body["checks"]["consumers"] == {"ok": False, "detail": {group: False}}
        assert (await _status(http, "/readyz"))[0] == 503


async def test_readiness_fails_while_the_broker_is_unreachable(tmp_path):
    broker = await start_tansu(log_path=tmp_path / "tansu.log")
    try:
        topic = "paused"
        await create_missing_topics(broker.bootstrap, [topic], partitions=1)
        settings = settings_for(broker.bootstrap, "", "postgresql://unused")
        port = free_port()
        async with ServiceHost(Holding(ServiceContext("holding", settings), topic, "g"), http_port=port), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_for(lambda: _ok(http), 15, "ready")
            broker.pause()
            try:
                code, body = await _status(http, "/readyz")
                assert code == 503 and body["checks"]["kafka"] in (False, {"ok": False, "detail": "TimeoutError: "})
            finally:
                broker.resume()
            await wait_for(lambda: _ok(http), 20, "ready once the broker is back")
    finally:
        broker.stop()


async def _ok(http: httpx.AsyncClient) -> bool:
    return (await _status(http, "/readyz"))[0] == 200


async def test_queue_is_unready_while_its_database_is_unreachable(kafka_bootstrap, topic_prefix):
    settings = settings_for(kafka_bootstrap, topic_prefix, "postgresql://unused")
    service = QueueService(ServiceContext("queue", settings))
    # a pool whose server is gone: nothing listens on this port
    service.pool = await asyncpg.create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/x", min_size=0)
    try:
        check = service.readiness_checks()["database"]
        with pytest.raises((OSError, asyncpg.PostgresError)):
            await check()
    finally:
        with contextlib.suppress(Exception):
            await service.pool.close()
