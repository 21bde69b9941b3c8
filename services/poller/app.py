"""The status poller: stateless; the queue decides when to look, the poller looks."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from contracts import Platform, Topics
from services.publishers.app import CredentialedService, platform_client
from services.quotas import quota_rules
from services.runtime import subscribe_batches

from .handlers import PollHandlers


class PollerService(CredentialedService):
    name = "poller"

    def __init__(self, ctx, tokens=None):
        super().__init__(ctx, tokens)
        self.handlers: PollHandlers | None = None

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.status_requested(p)) for p in Platform],
            group_id="poller", handler=lambda records: self.handlers.requested(records),
            on_assigned=self.took_on_partitions, on_lost=self.lost_partitions,
        )

    async def setup(self) -> None:
        await super().setup()
        # the poller never reads media: no media client
        clients = {p: platform_client(self.ctx.settings, p, self.http, poller=True) for p in Platform}
        self.limits = {self.ctx.topic(Topics.status_requested(p)): client.limits for p, client in clients.items()}
        self.handlers = PollHandlers(self.ctx, clients, self.tokens, self.ledger,
                                     quota_rules(self.ctx.settings.quotas))
