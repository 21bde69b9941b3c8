"""The start the three platform clients share, so each fills in what it was not given the same
way: a strict media policy, no per-account limits, the default retry rules."""

from __future__ import annotations

import asyncio

import httpx

from contracts import EngagementFigures, RemoteHandle

from ..limits import EndpointLimits, no_limits
from ._base import RetryRules
from ._media import MediaPolicy


def upload_places(uploads_at_once: int) -> asyncio.Semaphore:
    """The places of a client's uploads that hold their chunk in memory at once."""
    if uploads_at_once < 1:
        raise ValueError("uploads_at_once must be at least 1")
    return asyncio.Semaphore(uploads_at_once)


class PlatformClientBase:
    """`http`, the API root without its trailing slash, and the shared defaults."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, *, media_policy: MediaPolicy | None,
                 limits: EndpointLimits | None, retry: RetryRules | None):
        self.http, self.base_url = http, base_url.rstrip("/")
        self.media_policy = media_policy or MediaPolicy()
        self.limits = limits or no_limits()
        self.retry = retry or RetryRules()

    async def fetch_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                               url: str | None = None) -> EngagementFigures:
        raise NotImplementedError

    async def read_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                              url: str | None = None) -> tuple[EngagementFigures, str | None]:
        """A client that can find a post the queue has no URL for overrides this."""
        return await self.fetch_engagement(handle, token, account_id, url), None
