"""The planner: stateless; turns each content event into one slot per target."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from contracts import Topics
from services.runtime import Service, subscribe_batches

from .handlers import PlannerHandlers


class PlannerService(Service):
    name = "planner"

    def __init__(self, ctx, clock=None):
        super().__init__(ctx)
        self.handlers = PlannerHandlers(ctx, clock)

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.CONTENT_SUBMITTED)],
            group_id="planner", handler=self.handlers.submitted,
        )
