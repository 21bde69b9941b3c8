"""Kafka in: planned posts and results, decoded, bad ones dead-lettered, the rest applied."""

from __future__ import annotations

from contracts import ContractError, PostPlanned, PublishResult, StatusObserved, Topics
from services.runtime import Record, ServiceContext, trace_carrier

from .operations import Incoming, QueueOperations


class QueueHandlers:
    def __init__(self, ctx: ServiceContext, ops: QueueOperations, on_added):
        self.ctx = ctx
        self.ops = ops
        self.on_added = on_added

    async def planned(self, records: list[Record]) -> None:
        planned, rejected = [], []
        for record in records:
            try:
                planned.append((PostPlanned.from_bytes(record.value), trace_carrier(record.headers)))
            except ContractError as error:
                rejected.append(self.ctx.dead_letter(record, error, "queue.planned"))
        if planned and await self.ops.add_to_queue(planned):
            self.on_added()
        await self.ctx.send(rejected)

    async def results(self, records: list[Record]) -> None:
        incoming, rejected = [], []
        result_topic = self.ctx.topic(Topics.PUBLISH_RESULT)
        for record in records:
            model = PublishResult if record.topic == result_topic else StatusObserved
            try:
                incoming.append(Incoming(model.from_bytes(record.value), trace_carrier(record.headers)))
            except ContractError as error:
                rejected.append(self.ctx.dead_letter(record, error, "queue.results"))
        if incoming:
            await self.ops.update_status("queue.results", incoming)
            self.on_added()
        await self.ctx.send(rejected)
