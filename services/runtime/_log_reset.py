"""A consumer whose partition's log now ends before its position reads that log from the start.

That happens when a topic is deleted and recreated, or truncated — a broker that lost data.
Apache Kafka answers the next fetch with OFFSET_OUT_OF_RANGE and the consumer resets itself to
`auto_offset_reset`; other Kafka-compatible brokers answer with nothing, and the consumer would
wait forever. The records in the new log are all unprocessed, and consumers are idempotent, so
reading from the start is what a reset to "earliest" would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.kafka import KafkaBroker

log = logging.getLogger("autopost.consumer")

CHECK_SECONDS = 5.0


class LogResetWatch:
    def __init__(self, broker: KafkaBroker, interval: float = CHECK_SECONDS):
        self.broker = broker
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-reset-watch")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check_once(self) -> int:
        """Rewind every assigned partition whose log ends before the position; returns how many."""
        rewound = 0
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            for partition in consumer.assignment():
                end = consumer.highwater(partition)  # from the last fetch: right on every broker
                if end is None:
                    continue
                with contextlib.suppress(Exception):  # not positioned yet, or just revoked
                    position = await asyncio.wait_for(consumer.position(partition), timeout=1.0)
                    if position > end:
                        log.warning("%s-%s ends at %s, before our position %s: the topic was recreated "
                                    "or truncated; reading it from the start", partition.topic,
                                    partition.partition, end, position)
                        await consumer.seek_to_beginning(partition)
                        rewound += 1
        return rewound

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:
                log.exception("checking consumer positions failed")
