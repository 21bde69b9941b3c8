"""The planner: turns each content event into one slot per target, and learns from what
posts earned. Its record (planned slots, engagement, posts the queue has yet to store) is in
Postgres."""

from __future__ import annotations


from faststream.kafka import KafkaBroker

from contracts import Topics
from services.runtime import Service, close_database, database_ready, open_database, subscribe_batches, task_alive

from .handlers import PlannerHandlers
from .recovery import PlannedRecovery


class PlannerService(Service):
    name = "planner"

    def __init__(self, ctx, clock=None):
        super().__init__(ctx)
        self.clock = clock
        self.pool = None
        self.handlers: PlannerHandlers | None = None
        self.recovery: PlannedRecovery | None = None

    def register(self, broker: KafkaBroker) -> None:
        kafka = self.ctx.settings.kafka
        subscribe_batches(
            broker, kafka, topics=[self.ctx.topic(Topics.CONTENT_SUBMITTED)],
            group_id="planner", handler=lambda records: self.handlers.submitted(records),
        )
        subscribe_batches(
            broker, kafka, topics=[self.ctx.topic(Topics.ENGAGEMENT_OBSERVED)],
            group_id="planner.engagement", handler=lambda records: self.handlers.engagement(records),
        )
        subscribe_batches(
            broker, kafka, topics=[self.ctx.topic(Topics.SLOT_CHANGED)],
            group_id="planner.slots", handler=lambda records: self.handlers.slots(records),
        )

    async def setup(self) -> None:
        self.pool = await open_database(self.ctx.settings.database_url, self.ctx.tracer_provider)
        self.handlers = PlannerHandlers(self.ctx, self.pool, self.clock)
        self.recovery = PlannedRecovery(self.pool, self.ctx.send, self.ctx.settings.planner,
                                        self.ctx.topic(Topics.DEAD_LETTER), self.clock)

    async def started(self) -> None:
        await self.recovery.start()

    async def stopping(self) -> None:
        await self.recovery.stop()

    async def close(self) -> None:
        await close_database(self.pool)

    def readiness_checks(self):
        return {"database": database_ready(lambda: self.pool)}

    def liveness_checks(self):
        return {"planned_recovery": task_alive(lambda: self.recovery)}
