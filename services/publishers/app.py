"""One publisher per platform, each its own deployable (`autopost service publisher-<platform>`)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from faststream.kafka import KafkaBroker
from httpx_aiohttp import AiohttpTransport
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from contracts import AdminAlert, Platform, Topics
from services.accounts import AccessTokens, AccountStore, Keyring, oauth_clients, oauth_http_client
from services.quotas import InstagramPublishingLimit, QuotaLedger, quota_rules
from services.runtime import Outgoing, Service, ServiceContext, database_ready, open_database, subscribe_batches

from .credentials import StoredTokens, TokenSource
from .handlers import PublishHandlers
from .limits import PUBLISH_RATE, AccountLimiters
from .platforms import build_client
from .preflight import Preflight


def platform_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """httpx's API on aiohttp's connection pool, which costs a fifth of the CPU per request."""
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0, connect=5.0))
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=ctx.tracer_provider)
    return http


def stored_tokens(ctx: ServiceContext, pool: asyncpg.Pool, oauth_http: httpx.AsyncClient) -> StoredTokens:
    """Tokens from the accounts store, refreshed through each platform's OAuth; a lost
    authorization raises a RECONNECT_NEEDED alert on `alerts`."""

    async def alert(message: AdminAlert) -> None:
        key = f"{message.platform.value if message.platform else ''}:{message.account_id or ''}"
        await ctx.send([Outgoing.of(ctx.topic(Topics.ALERTS), key, message)])

    store = AccountStore(pool, Keyring.parse(ctx.settings.accounts.credential_keys))
    return StoredTokens(AccessTokens(store, oauth_clients(ctx.settings, oauth_http), alerts=alert,
                                     tracer=ctx.tracer))


class CredentialedService(Service):
    """A service that calls platforms for accounts: database, tokens, quota ledger, HTTP clients."""

    def __init__(self, ctx: ServiceContext, tokens: TokenSource | None = None):
        super().__init__(ctx)
        self._given_tokens = tokens
        self.tokens: TokenSource | None = tokens
        self.pool: asyncpg.Pool | None = None
        self.http: httpx.AsyncClient | None = None
        self.oauth_http: httpx.AsyncClient | None = None
        self.ledger: QuotaLedger | None = None

    async def setup(self) -> None:
        self.pool = await open_database(self.ctx.settings.database_url, self.ctx.tracer_provider)
        self.http = platform_http_client(self.ctx)
        self.oauth_http = oauth_http_client()
        self.tokens = self._given_tokens or stored_tokens(self.ctx, self.pool, self.oauth_http)
        self.ledger = QuotaLedger(self.pool)

    async def close(self) -> None:
        for http in (self.http, self.oauth_http):
            if http is not None:
                await http.aclose()
        if self.pool is not None:
            await asyncio.wait_for(self.pool.close(), timeout=10)

    def readiness_checks(self):
        return {"database": database_ready(lambda: self.pool)}


class PublisherService(CredentialedService):
    def __init__(self, ctx: ServiceContext, platform: Platform, tokens: TokenSource | None = None):
        super().__init__(ctx, tokens)
        self.platform = platform
        self.handlers: PublishHandlers | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"publisher-{self.platform.value}"

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.publish_requested(self.platform))],
            group_id=f"publisher.{self.platform.value}",
            handler=lambda records: self.handlers.requested(records),
        )

    async def setup(self) -> None:
        await super().setup()
        client = build_client(self.platform, self.http, self.ctx.settings.api_bases[self.platform])
        instagram_limit = (InstagramPublishingLimit(self.http, client.api)  # type: ignore[attr-defined]
                           if self.platform is Platform.INSTAGRAM else None)
        preflight = Preflight(self.tokens, self.ledger, quota_rules(self.ctx.settings.quotas),
                              instagram_limit=instagram_limit)
        self.handlers = PublishHandlers(
            self.ctx, client, preflight,
            AccountLimiters(*self.ctx.settings.publish_rates.get(self.platform, PUBLISH_RATE[self.platform])),
        )
