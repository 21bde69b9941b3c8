"""One publisher per platform, each its own deployable (`autopost service publisher-<platform>`)."""

from __future__ import annotations

import httpx
from faststream.kafka import KafkaBroker
from httpx_aiohttp import AiohttpTransport
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from contracts import Platform, Topics
from services.runtime import Service, ServiceContext, subscribe_batches

from .credentials import NoTokens, SandboxTokens, TokenSource
from .limits import PUBLISH_RATE, AccountLimiters
from .platforms import build_client
from .handlers import PublishHandlers


def platform_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """httpx's API on aiohttp's connection pool, which costs a fifth of the CPU per request."""
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0, connect=5.0))
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=ctx.tracer_provider)
    return http


def token_source(ctx: ServiceContext) -> TokenSource:
    return SandboxTokens() if ctx.settings.sandbox_url else NoTokens()


class PublisherService(Service):
    def __init__(self, ctx: ServiceContext, platform: Platform, tokens: TokenSource | None = None):
        super().__init__(ctx)
        self.platform = platform
        self.tokens = tokens or token_source(ctx)
        self.http: httpx.AsyncClient | None = None
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
        self.http = platform_http_client(self.ctx)
        client = build_client(self.platform, self.http, self.ctx.settings.api_bases[self.platform])
        self.handlers = PublishHandlers(
            self.ctx, client, self.tokens,
            AccountLimiters(*self.ctx.settings.publish_rates.get(self.platform, PUBLISH_RATE[self.platform])),
        )

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
