"""One publisher per platform, each its own deployable (`autopost service publisher-<platform>`)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker

from contracts import AdminAlert, Platform, Topics
from services.accounts import (
    AccessTokens,
    AccountStore,
    Keyring,
    TokenKeepAlive,
    oauth_clients,
    oauth_http_client,
)
from services.quotas import QuotaLedger, quota_rules
from services.runtime import (
    CookielessClient,
    Outgoing,
    Service,
    ServiceContext,
    Settings,
    TracedTransport,
    close_database,
    cookieless_transport,
    database_ready,
    open_database,
    subscribe_batches,
)

from .credentials import StoredTokens, TokenSource
from .handles import HandleStore
from .handlers import PublishHandlers
from .limits import Cap, EndpointLimits
from .platforms import InstagramClient, MediaPolicy, PlatformClient, build_client, media_client
from .preflight import Preflight


def platform_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """httpx's API on aiohttp's connection pool, which costs a fifth of the CPU per request;
    shared by every account, so it keeps no cookies."""
    timeout = ctx.settings.platforms.timeout_seconds
    return CookielessClient(transport=TracedTransport(cookieless_transport(100), ctx.tracer_provider),
                            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))


def media_policy(settings: Settings) -> MediaPolicy:
    """https from public addresses only, unless the sandbox mode allows http from loopback."""
    platforms = settings.platforms
    sandbox = platforms.media_allow_loopback
    return MediaPolicy(allow_http=sandbox, allow_loopback=sandbox, max_bytes=platforms.media_max_bytes,
                       local_roots=tuple(Path(r).resolve() for r in platforms.media_roots),
                       trusted_hosts=tuple(h.lower() for h in platforms.media_trusted_hosts))


def media_http_client(ctx: ServiceContext) -> httpx.AsyncClient:
    """Media is fetched apart from platform calls: every connection checked (see _media.py)."""
    return media_client(media_policy(ctx.settings), timeout=ctx.settings.platforms.timeout_seconds,
                        wrap=lambda transport: TracedTransport(transport, ctx.tracer_provider))


def endpoint_limits(settings: Settings, platform: Platform, *, poller: bool = False) -> EndpointLimits:
    """The platform's per-account caps (the publisher's part, or the poller's), or one cap for
    every endpoint when the settings give one (benchmarks and tests pace an account faster or
    slower than the platform would)."""
    override = settings.publish_rates.get(platform)
    return EndpointLimits.for_platform(platform, Cap(*override) if override else None, poller=poller)


def platform_client(settings: Settings, platform: Platform, http: httpx.AsyncClient,
                    media_http: httpx.AsyncClient | None = None, *, preflighted: bool = False,
                    poller: bool = False) -> PlatformClient:
    """The client for `platform`, configured from settings, with its per-account caps.
    `preflighted`: a Preflight reads Instagram's publishing limit just before each publish, so
    the client does not read it a second time. `poller`: the client makes the poller's calls,
    within the poller's part of each cap it shares with the publisher."""
    platforms = settings.platforms
    options: dict = {"limits": endpoint_limits(settings, platform, poller=poller)}
    if platform is not Platform.INSTAGRAM:  # Instagram downloads media itself
        options.update(media_http=media_http, media_policy=media_policy(settings))
    if platform is Platform.TIKTOK:
        options.update(pull_prefixes=platforms.tiktok_pull_prefixes, unaudited=platforms.tiktok_unaudited,
                       pull_inits_at_once=platforms.tiktok_pull_inits_at_once,
                       uploads_at_once=platforms.tiktok_uploads_at_once)
    elif platform is Platform.INSTAGRAM:
        options.update(media_policy=media_policy(settings),
                       poll_timeout=platforms.instagram_poll_timeout_seconds,
                       recheck_after=platforms.instagram_container_recheck_seconds,
                       read_publishing_limit=not preflighted)
    else:
        options.update(privacy_status=platforms.youtube_privacy,
                       schedule_lead=platforms.youtube_schedule_lead_seconds,
                       uploads_at_once=platforms.youtube_uploads_at_once)
    return build_client(platform, http, settings.api_bases[platform], **options)


def stored_tokens(ctx: ServiceContext, pool: asyncpg.Pool, oauth_http: httpx.AsyncClient) -> StoredTokens:
    """Tokens from the accounts store, refreshed through each platform's OAuth; a lost
    authorization raises a RECONNECT_NEEDED alert on `alerts`."""

    async def alert(message: AdminAlert) -> None:
        key = f"{message.platform.value if message.platform else ''}:{message.account_id or ''}"
        await ctx.send([Outgoing.of(ctx.topic(Topics.ALERTS), key, message)])

    store = AccountStore(pool, Keyring.parse(ctx.settings.accounts.credential_keys))
    return StoredTokens(AccessTokens(store, oauth_clients(ctx.settings, oauth_http), alerts=alert,
                                     tracer=ctx.tracer))


def preflight_for(settings: Settings, client: PlatformClient, tokens: TokenSource,
                  ledger: QuotaLedger | None) -> Preflight:
    """The rules, token and quotas in front of `client` (made with `preflighted=True` when
    there is a ledger)."""
    # Instagram's own count, read by its client (within the account's cap) for the ledger
    instagram_limit = client.publishing_limit if isinstance(client, InstagramClient) else None
    return Preflight(tokens, ledger, quota_rules(settings.quotas), instagram_limit=instagram_limit)


class CredentialedService(Service):
    """A service that calls platforms for accounts: database, tokens, quota ledger, HTTP clients."""

    def __init__(self, ctx: ServiceContext, tokens: TokenSource | None = None):
        super().__init__(ctx)
        self._given_tokens = tokens
        self.tokens: TokenSource | None = tokens
        self.pool: asyncpg.Pool | None = None
        self.http: httpx.AsyncClient | None = None
        self.media_http: httpx.AsyncClient | None = None
        self.oauth_http: httpx.AsyncClient | None = None
        self.ledger: QuotaLedger | None = None
        # each client's per-account caps, by the topic its accounts' requests come on (`setup`)
        self.limits: dict[str, EndpointLimits] = {}

    def took_on_partitions(self, partitions: set[TopicPartition]) -> None:
        """A rebalance gave this replica accounts another may have been calling: their caps
        count as spent for a while (limits.py)."""
        for topic, numbers in self._by_topic(partitions).items():
            self.limits[topic].took_on_partitions(numbers)

    def lost_partitions(self, partitions: set[TopicPartition]) -> None:
        """Another replica has these accounts now: their requests still here make no more
        capped calls (limits.py)."""
        for topic, numbers in self._by_topic(partitions).items():
            self.limits[topic].lost_partitions(numbers)

    def _by_topic(self, partitions: set[TopicPartition]) -> dict[str, set[int]]:
        numbers: dict[str, set[int]] = {}
        for tp in partitions:
            if tp.topic in self.limits:
                numbers.setdefault(tp.topic, set()).add(tp.partition)
        return numbers

    async def setup(self) -> None:
        self.pool = await open_database(self.ctx.settings.database_url, self.ctx.tracer_provider)
        self.http = platform_http_client(self.ctx)
        self.oauth_http = oauth_http_client()
        self.tokens = self._given_tokens or stored_tokens(self.ctx, self.pool, self.oauth_http)
        self.ledger = QuotaLedger(self.pool)

    async def close(self) -> None:
        for http in (self.http, self.media_http, self.oauth_http):
            if http is not None:
                await http.aclose()
        await close_database(self.pool)

    def readiness_checks(self):
        return {"database": database_ready(lambda: self.pool)}


class PublisherService(CredentialedService):
    def __init__(self, ctx: ServiceContext, platform: Platform, tokens: TokenSource | None = None):
        super().__init__(ctx, tokens)
        self.platform = platform
        self.handlers: PublishHandlers | None = None
        self.keep_alive: TokenKeepAlive | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"publisher-{self.platform.value}"

    def register(self, broker: KafkaBroker) -> None:
        subscribe_batches(
            broker, self.ctx.settings.kafka,
            topics=[self.ctx.topic(Topics.publish_requested(self.platform))],
            group_id=f"publisher.{self.platform.value}",
            handler=lambda records: self.handlers.requested(records),
            on_assigned=self.took_on_partitions, on_lost=self.lost_partitions,
        )

    async def setup(self) -> None:
        await super().setup()
        settings = self.ctx.settings
        self.media_http = media_http_client(self.ctx)
        client = platform_client(settings, self.platform, self.http, self.media_http, preflighted=True)
        self.limits = {self.ctx.topic(Topics.publish_requested(self.platform)): client.limits}
        preflight = preflight_for(settings, client, self.tokens, self.ledger)
        journals = HandleStore(self.pool, claim_seconds=settings.platforms.claim_seconds)
        self.handlers = PublishHandlers(self.ctx, client, preflight, journals)
        interval = settings.accounts.keep_alive_interval_seconds
        if isinstance(self.tokens, StoredTokens) and interval > 0:
            self.keep_alive = TokenKeepAlive(self.tokens.tokens, self.platform, interval)

    async def started(self) -> None:
        if self.keep_alive is not None:
            await self.keep_alive.start()

    async def stopping(self) -> None:
        if self.keep_alive is not None:
            await self.keep_alive.stop()
