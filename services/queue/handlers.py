"""Kafka in: planned posts and results, decoded, bad ones dead-lettered, the rest applied."""

from __future__ import annotations

import logging

from contracts import ContractError, PostPlanned, PublishResult, StatusObserved, Topics
from services.runtime import Outgoing, Record, ServiceContext, dead_letter_for, trace_carrier

from .operations import Incoming, QueueOperations

log = logging.getLogger("autopost.queue.handlers")


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
                rejected.append(self._dead_letter(record, error, "queue.planned"))
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
                rejected.append(self._dead_letter(record, error, "queue.results"))
        if incoming:
            await self.ops.update_status("queue.results", incoming)
            self.on_added()
        await self.ctx.send(rejected)

    def _dead_letter(self, record: Record, error: ContractError, consumer: str) -> Outgoing:
        log.warning("dead-lettering %s@%s/%s: %s", record.topic, record.partition, record.offset, error)
        return dead_letter_for(
            record, reason=error.reason, message=error.message, consumer=consumer,
            topic=self.ctx.topic(Topics.DEAD_LETTER),
        )
