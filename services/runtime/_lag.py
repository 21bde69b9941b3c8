"""Consumer lag that is right on Apache Kafka and on the local broker.

lag(partition) = high watermark − position, the position being the committed offset, or the log
start when nothing is committed or the committed offset is below it, or above the high watermark
(a log recreated shorter: the group will read it all).

The high watermark is read from a fetch response: seek to `end_offsets − 1` and fetch. On
Apache Kafka `end_offsets` is the log end already, and the fetch returns the same figure; the
local broker (Tansu) answers ListOffsets(latest) with the last batch's base offset + 1, so only
the fetch's `highwater` is the log end there. Committed offsets are asked for with explicit
partitions, the only form the local broker answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ._background import stop_task

log = logging.getLogger("autopost.lag")


class LagProbe:
    """A group-less consumer and an admin client, kept open between measurements."""

    def __init__(self, bootstrap: str, *, request_timeout_ms: int = 10_000):
        self.bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            request_timeout_ms=request_timeout_ms, fetch_max_wait_ms=100,
            max_partition_fetch_bytes=64 * 1024,
        )
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms)
        self._started = False

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._consumer.stop()
            await self._admin.close()
            self._started = False

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        await self._consumer.topics()  # refreshes the metadata
        return [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]

    async def high_watermarks(self, partitions: Sequence[TopicPartition], timeout: float = 5.0) -> dict[TopicPartition, int]:
        consumer = self._consumer
        consumer.assign(list(partitions))  # fresh state: no high watermark left from last time
        try:
            starts = await consumer.beginning_offsets(list(partitions))
            ends = await consumer.end_offsets(list(partitions))
            marks: dict[TopicPartition, int] = {}
            waiting = []
            for tp in partitions:
                if ends[tp] <= starts[tp]:
                    marks[tp] = ends[tp]  # empty: nothing to fetch, and nothing to lag behind
                else:
                    consumer.seek(tp, ends[tp] - 1)
                    waiting.append(tp)
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                await consumer.getmany(*waiting, timeout_ms=200, max_records=1)
                for tp in list(waiting):
                    mark = consumer.highwater(tp)
                    if mark is not None:
                        marks[tp] = mark
                        waiting.remove(tp)
            if waiting:
                raise TimeoutError(f"no fetch answer for {waiting}")
            return marks
        finally:
            consumer.pause(*partitions)  # no background fetching between measurements

    async def committed(self, group: str, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=list(partitions))
        return {tp: meta.offset for tp, meta in offsets.items()}

    async def lag(self, group: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
        partitions = await self.partitions(topics)
        if not partitions:
            return {}
        marks = await self.high_watermarks(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        committed = await self.committed(group, partitions)
        return {tp: partition_lag(marks[tp], committed.get(tp, -1), starts[tp]) for tp in partitions}


def partition_lag(high_watermark: int, committed: int, log_start: int) -> int:
    """Records the group has still to read. Nothing committed (-1), or a committed offset below
    the log start (records deleted by retention, a recreated topic): the group resumes at the log
    start (auto_offset_reset=earliest), so that is its position. A committed offset beyond the
    high watermark belongs to a log that is gone (the topic was recreated with fewer records, or
    truncated): the group reads the new log from its start (OFFSET_OUT_OF_RANGE on Apache Kafka,
    the consumer watch's rewind elsewhere), and none of it has been read, so all of it is lag
    until the group commits in the new log."""
    if committed > high_watermark:
        return max(0, high_watermark - log_start)
    position = max(committed, log_start)
    return max(0, high_watermark - position)


async def measure_lag(bootstrap: str, group: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """One measurement with a probe of its own (tools and tests)."""
    probe = LagProbe(bootstrap)
    await probe.start()
    try:
        return await probe.lag(group, topics)
    finally:
        await probe.stop()


class LagMonitor:
    """Measures the lag of each (group, topics) every `interval` seconds into `autopost_consumer_lag`."""

    def __init__(self, bootstrap: str, groups: dict[str, list[str]], interval: float):
        self.probe = LagProbe(bootstrap)
        self.groups = groups
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.last: dict[str, dict[TopicPartition, int]] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        await self.probe.stop()

    async def measure_once(self) -> None:
        from ._metrics import CONSUMER_LAG

        for group, topics in self.groups.items():
            lags = await self.probe.lag(group, topics)
            self.last[group] = lags
            for tp, lag in lags.items():
                CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                if not self.probe._started:  # noqa: SLF001 (our own object)
                    await self.probe.start()
                await self.measure_once()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: readiness says so; keep trying
                if not failing:
                    log.warning("could not measure consumer lag: %s", exc)
                failing = True
                await self.probe.stop()
            await asyncio.sleep(self.interval)
