"""One publisher per platform, each its own deployable (`autopost service publisher-<platform>`)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from faststream.kafka import KafkaBroker
from httpx_aiohttp import AiohttpTransport
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from contracts import Platform, Topics
from services.runtime import Service, ServiceContext, Settings, open_database, subscribe_batches

from .credentials import NoTokens, SandboxTokens, TokenSource
from .handles import HandleStore
from .handlers import PublishHandlers
from .limits import EndpointLimits
from .platforms import MediaPolicy, PlatformClient, build_client, media_client


def platform_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """httpx's API on aiohttp's connection pool, which costs a fifth of the CPU per request."""
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))
    timeout = ctx.settings.platforms.timeout_seconds
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=ctx.tracer_provider)
    return http


def media_policy(settings: Settings) -> MediaPolicy:
    """https from public addresses only, unless the sandbox mode allows http from loopback."""
    platforms = settings.platforms
    sandbox = platforms.media_allow_loopback
    return MediaPolicy(allow_http=sandbox, allow_loopback=sandbox, max_bytes=platforms.media_max_bytes,
                       local_roots=tuple(Path(r).resolve() for r in platforms.media_roots),
                       trusted_hosts=tuple(h.lower() for h in platforms.media_trusted_hosts))


def media_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """Media is fetched apart from platform calls: every connection checked (see _media.py)."""
    http = media_client(media_policy(ctx.settings), timeout=ctx.settings.platforms.timeout_seconds)
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=ctx.tracer_provider)
    return http


def platform_client(settings: Settings, platform: Platform, http: httpx.AsyncClient,
                    media_http: httpx.AsyncClient | None = None) -> PlatformClient:
    """The client for `platform`, configured from settings, with its per-account caps."""
    platforms = settings.platforms
    options: dict = {"limits": EndpointLimits.for_platform(platform)}
    if platform is not Platform.INSTAGRAM:  # Instagram downloads media itself
        options.update(media_http=media_http, media_policy=media_policy(settings))
    if platform is Platform.TIKTOK:
        options.update(pull_prefixes=platforms.tiktok_pull_prefixes, unaudited=platforms.tiktok_unaudited)
    elif platform is Platform.INSTAGRAM:
        options.update(media_policy=media_policy(settings),
                       poll_timeout=platforms.instagram_poll_timeout_seconds)
    else:
        options.update(privacy_status=platforms.youtube_privacy,
                       schedule_lead=platforms.youtube_schedule_lead_seconds)
    return build_client(platform, http, settings.api_bases[platform], **options)


def token_source(ctx: ServiceContext) -> TokenSource:
    return SandboxTokens() if ctx.settings.sandbox_url else NoTokens()


class PublisherService(Service):
    def __init__(self, ctx: ServiceContext, platform: Platform, tokens: TokenSource | None = None):
        super().__init__(ctx)
        self.platform = platform
        self.tokens = tokens or token_source(ctx)
        self.http: httpx.AsyncClient | None = None
        self.media_http: httpx.AsyncClient | None = None
        self.pool: asyncpg.Pool | None = None
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
        settings = self.ctx.settings
        self.pool = await open_database(settings.database_url, self.ctx.tracer_provider)
        self.http = platform_http_client(self.ctx)
        self.media_http = media_http_client(self.ctx)
        client = platform_client(settings, self.platform, self.http, self.media_http)
        journals = HandleStore(self.pool, claim_seconds=settings.platforms.claim_seconds)
        self.handlers = PublishHandlers(self.ctx, client, self.tokens, journals)

    async def close(self) -> None:
        for http in (self.http, self.media_http):
            if http is not None:
                await http.aclose()
        if self.pool is not None:
            await self.pool.close()

    def readiness_checks(self):
        return {"postgres": self._database_ready}

    async def _database_ready(self) -> bool:
        if self.pool is None:
            return False
        try:
            return await self.pool.fetchval("SELECT 1") == 1
        except Exception:
            return False
