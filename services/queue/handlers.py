"""Kafka in: planned posts and results, decoded, bad ones dead-lettered, the rest applied."""

from __future__ import annotations

from contracts import PostPlanned, PublishResult, StatusObserved, Topics
from services.runtime import Record, ServiceContext, trace_carrier

from .operations import Incoming, QueueOperations


class QueueHandlers:
    def __init__(self, ctx: ServiceContext, ops: QueueOperations, on_added):
        self.ctx = ctx
        self.ops = ops
        self.on_added = on_added

    async def planned(self, records: list[Record]) -> None:
        decoded, rejected = self.ctx.decode_each(records, lambda record: PostPlanned, "queue.planned")
        planned = [(message, trace_carrier(record.headers)) for message, record in decoded]
        if planned and await self.ops.add_to_queue(planned):
            self.on_added()
        await self.ctx.send(rejected)

    async def results(self, records: list[Record]) -> None:
        result_topic = self.ctx.topic(Topics.PUBLISH_RESULT)
        decoded, rejected = self.ctx.decode_each(
            records, lambda record: PublishResult if record.topic == result_topic else StatusObserved,
            "queue.results")
        incoming = [Incoming(message, trace_carrier(record.headers)) for message, record in decoded]
        if incoming:
            await self.ops.update_status("queue.results", incoming)
            self.on_added()
        await self.ctx.send(rejected)
