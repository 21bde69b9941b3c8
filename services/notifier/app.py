"""The notifier: tells administrators about persistent failures, once each, and keeps trying
to reach them; keeps every dead letter for an operator to look at and replay."""

from __future__ import annotations


import httpx
from faststream.kafka import KafkaBroker

from contracts import Topics
from services.runtime import Service, close_database, database_ready, open_database, subscribe_batches

from .delivery import DeliveryLoop, WebhookUrlRedaction
from .handlers import NotifierHandlers
from .webhooks import parse_webhooks


class NotifierService(Service):
    name = "notifier"

    def __init__(self, ctx):
        super().__init__(ctx)
        # a bad webhook configuration stops the service at start, not at the first alert
        self.hooks = parse_webhooks(ctx.settings.notifier.webhooks)
        self.pool = None
        self.http: httpx.AsyncClient | None = None
        self.redaction: WebhookUrlRedaction | None = None
        self.delivery: DeliveryLoop | None = None
        self.handlers: NotifierHandlers | None = None

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.ALERTS), self.ctx.topic(Topics.DEAD_LETTER)],
            group_id="notifier", handler=lambda records: self.handlers.received(records),
        )

    async def setup(self) -> None:
        self.pool = await open_database(self.ctx.settings.database_url, self.ctx.tracer_provider, max_size=4)
        # httpx logs every request's full URL at INFO, and a webhook's URL is often its secret
        self.redaction = WebhookUrlRedaction(self.hooks).install()
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.delivery = DeliveryLoop(self.pool, self.http, self.hooks, self.ctx.settings.notifier)
        self.handlers = NotifierHandlers(self.ctx, self.pool, self.hooks, on_new=self.delivery.wake.set)

    async def started(self) -> None:
        await self.delivery.start()

    async def stopping(self) -> None:
        await self.delivery.stop()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        if self.redaction is not None:
            self.redaction.remove()
        await close_database(self.pool)

    def readiness_checks(self):
        return {"database": database_ready(lambda: self.pool)}
