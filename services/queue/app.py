"""The queue service: Postgres is its record; it owns every target's state and timer."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from contracts import Platform, Topics
from services.quotas import quota_rules
from services.runtime import (
    ConsumerWatch,
    Service,
    close_database,
    database_ready,
    open_database,
    subscribe_batches,
    task_alive,
)

from .dispatcher import Dispatcher
from .handlers import QueueHandlers
from .housekeeping import Housekeeping
from .operations import QueueOperations
from .outbox import OutboxRelay
from .stats import QueueStats


class QueueService(Service):
    name = "queue"

    def __init__(self, ctx, **ops_options):
        super().__init__(ctx)
        self._ops_options = ops_options
        self.pool = None
        self.ops: QueueOperations | None = None
        self.dispatcher: Dispatcher | None = None
        self.relay: OutboxRelay | None = None
        self.stats: QueueStats | None = None
        self.results_watch: ConsumerWatch | None = None

    def register(self, broker: KafkaBroker) -> None:
        kafka = self.ctx.settings.kafka
        subscribe_batches(
            broker, kafka, topics=[self.ctx.topic(Topics.POST_PLANNED)],
            group_id="queue.planned", handler=lambda r: self.handlers.planned(r),
        )
        self.results_watch = subscribe_batches(
            broker, kafka,
            topics=[self.ctx.topic(Topics.PUBLISH_RESULT), self.ctx.topic(Topics.STATUS_OBSERVED)],
            group_id="queue.results", handler=lambda r: self.handlers.results(r),
        )

    async def setup(self) -> None:
        self.pool = await open_database(self.ctx.settings.database_url, self.ctx.tracer_provider)
        # replicas split the results by partition (keyed by target)
        watch, results = self.results_watch, self.ctx.topic(Topics.PUBLISH_RESULT)
        share = (lambda: watch.share_of(results)) if watch is not None else (lambda: 1.0)
        self.ops = QueueOperations(
            self.pool, self.ctx.settings.queue, self.ctx.tracer, self.ctx.topic,
            results_share=share, **self._ops_options
        )
        self.relay = OutboxRelay(self.pool, self.ctx.send, dead_letter_topic=self.ctx.topic(Topics.DEAD_LETTER))
        self.dispatcher = Dispatcher(self.ops, self.ctx.settings.database_url, self.relay.wake,
                                     stall_seconds=self.ctx.settings.stall_seconds)
        self.handlers = QueueHandlers(self.ctx, self.ops, on_added=self.dispatcher.wake.set)
        self.housekeeping = Housekeeping(self.pool)
        self.stats = QueueStats(self.pool, self.ctx.settings.stats_interval_seconds, [p.value for p in Platform],
                                list(quota_rules(self.ctx.settings.quotas).values()))

    async def started(self) -> None:
        await self.relay.start()
        await self.dispatcher.start()
        await self.housekeeping.start()
        await self.stats.start()

    async def stopping(self) -> None:
        await self.stats.stop()
        await self.housekeeping.stop()
        await self.dispatcher.stop()
        await self.relay.stop()

    async def close(self) -> None:
        await close_database(self.pool)

    def readiness_checks(self):
        # the database must take writes; the dispatcher must be completing rounds: a restart
        # mends neither bad rows nor a database away, so neither fails liveness
        return {"database": database_ready(lambda: self.pool), "dispatcher": self._dispatcher_progressing}

    def liveness_checks(self):
        return {"dispatcher": self._dispatcher_alive, "outbox_relay": task_alive(lambda: self.relay)}

    async def _dispatcher_progressing(self):
        return self.dispatcher.progressing() if self.dispatcher is not None else False

    async def _dispatcher_alive(self):
        """Its task runs and no round of it has hung (only a restart mends those)."""
        if self.dispatcher is None:
            return False
        why = self.dispatcher.wedged()
        return True if why is None else (False, why)

