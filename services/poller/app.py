"""The status poller: stateless; the queue decides when to look, the poller looks."""

from __future__ import annotations

import httpx
from faststream.kafka import KafkaBroker

from contracts import Platform, Topics
from services.publishers.app import platform_client, platform_http_client, token_source
from services.runtime import Service, subscribe_batches

from .handlers import PollHandlers


class PollerService(Service):
    name = "poller"

    def __init__(self, ctx, tokens=None):
        super().__init__(ctx)
        self.tokens = tokens or token_source(ctx)
        self.http: httpx.AsyncClient | None = None
        self.handlers: PollHandlers | None = None

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.status_requested(p)) for p in Platform],
            group_id="poller", handler=lambda records: self.handlers.requested(records),
        )

    async def setup(self) -> None:
        self.http = platform_http_client(self.ctx)
        # the poller never reads media: no media client
        clients = {p: platform_client(self.ctx.settings, p, self.http) for p in Platform}
        self.handlers = PollHandlers(self.ctx, clients, self.tokens)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
