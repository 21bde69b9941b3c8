"""Instagram's own count of an account's posts: `content_publishing_limit` (platforms.md §2.5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import orjson

log = logging.getLogger("autopost.quotas")


@dataclass(frozen=True, slots=True)
class PublishingLimit:
    used: int
    total: int
    window_seconds: int


class InstagramPublishingLimit:
    """Reads the account's quota_usage and config.quota_total; None when the read fails, so a
    limit that cannot be read never blocks publishing (the ledger's own count still applies)."""

    def __init__(self, http: httpx.AsyncClient, api_root: str):
        self.http, self.api_root = http, api_root.rstrip("/")  # e.g. https://graph.facebook.com/v25.0

    async def read(self, account_id: str, token: str) -> PublishingLimit | None:
        try:
            response = await self.http.get(f"{self.api_root}/{account_id}/content_publishing_limit",
                                           params={"fields": "quota_usage,config"},
                                           headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            log.info("content_publishing_limit of %s unreadable: %s", account_id, type(exc).__name__)
            return None
        try:
            entry = orjson.loads(response.content)["data"][0] if response.status_code == 200 else None
            if entry is None:
                return None
            config = entry.get("config") or {}
            return PublishingLimit(int(entry.get("quota_usage") or 0), int(config["quota_total"]),
                                   int(config.get("quota_duration") or 86400))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
            return None
