"""State shared by the three fakes: settings, the record of what got published, the fault hook.

Everything is in memory and keyed by id, so each request is O(1). Time is the wall clock
(`time.time`) so timestamps can be compared with another process's clock.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


@dataclass
class SandboxSettings:
    # How long TikTok processing, Instagram video containers and YouTube processing take
    # before they complete; 0 completes them at once.
    processing_seconds: float = 0.5
    # Root the sandbox is reachable at (e.g. "http://sandbox:8080"), used for the absolute
    # upload URLs it hands out; None uses the request's own base URL.
    public_base_url: str | None = None
    # OAuth (sandbox/_oauth.py): the client secret token endpoints take (any client id), the
    # access-token lifetime (None: each platform's own), how old an Instagram token must be to
    # refresh, and whether API calls must use a token the fake OAuth issued.
    oauth_client_secret: str = "sandbox-secret"
    access_token_seconds: float | None = None
    instagram_refresh_min_age: float = 24 * 3600.0
    require_issued_tokens: bool = False
    # Per-minute rate limits: TikTok's 20/6/30 per user token, Instagram's usage per account.
    rate_limits: bool = True
    # Daily caps: TikTok posts per creator, Instagram posts and containers per account,
    # YouTube quota units and videos.insert calls per project (reset at midnight Pacific).
    daily_quotas: bool = True
    tiktok_daily_posts: int = 15
    tiktok_unaudited: bool = False  # unaudited client: private accounts only, SELF_ONLY forced
    tiktok_upload_url_seconds: float = 3600.0
    # how long a public post's id stays empty after PUBLISH_COMPLETE (moderation, platforms.md §1.5)
    tiktok_moderation_seconds: float = 0.0
    # URL prefixes (domains) the app has verified for PULL_FROM_URL; None: every URL is
    tiktok_verified_url_prefixes: tuple[str, ...] | None = None
    # How long an Instagram image container takes to be FINISHED: at once, as a rule (§2.3: an
    # image is created, then published); a moment on a busy day, when media_publish answers
    # 9007/2207027 (not ready) until it is.
    instagram_image_seconds: float = 0.0
    instagram_publish_limit: int = 50
    instagram_container_limit: int = 400
    instagram_calls_per_hour: int = 200
    youtube_daily_units: int = 10_000
    youtube_daily_inserts: int = 100
    # How fast a post's engagement builds up (see _engagement.py): most of it within 3x this.
    engagement_timescale_seconds: float = 3 * 3600.0


def now() -> float:
    return time.time()


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def numeric_id(prefix: str, digits: int, taken: dict[str, Any]) -> str:
    """A fresh numeric-string id (Meta and TikTok ids look like this), unique within `taken`."""
    while True:
        candidate = prefix + str(secrets.randbelow(10 ** digits)).zfill(digits)
        if candidate not in taken:
            return candidate


class Faults:
    """Where fault injection plugs in: a hook may answer a request instead of the fake.

    The fakes call `await before(operation, request, account)` first in every handler and
    return its response when it gives one; this default never does. A hook may also leave a
    mark on `request.state` (a chunk to lose, a processing failure) for the fake to act on.
    """

    async def before(self, operation: str, request: "Request", account: str | None = None) -> "Response | None":
        return None


class Window:
    """Events per key within a rolling window: the fakes' rate counters and daily caps."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._events: dict[Any, deque[float]] = {}

    def count(self, key: Any, at: float | None = None) -> int:
        events = self._events.get(key)
        if not events:
            return 0
        cutoff = (at if at is not None else now()) - self.seconds
        while events and events[0] <= cutoff:
            events.popleft()
        return len(events)

    def add(self, key: Any, at: float | None = None) -> None:
        self._events.setdefault(key, deque()).append(at if at is not None else now())

    def admit(self, key: Any, limit: int) -> bool:
        """Count one more event unless `limit` are already in the window."""
        if self.count(key) >= limit:
            return False
        self.add(key)
        return True

    def seconds_until_free(self, key: Any) -> float:
        events = self._events.get(key)
        return max(0.0, events[0] + self.seconds - now()) if events else 0.0

    def clear(self) -> None:
        self._events.clear()


class PublishedLog:
    """Everything the platforms consider published, in order: the sandbox's record.

    Platforms have no idempotency key, so "the same post twice" is recognised by content: the
    platform, the account, the caption and the media (`content_key`). `duplicates` counts
    every post beyond the first with the same key.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.by_content: Counter[tuple[str, str, str]] = Counter()

    def add(
        self,
        platform: str,
        account_id: str,
        remote_id: str,
        url: str | None,
        caption: str,
        published_at: float,
        privacy: str | None,
        media: str = "",
    ) -> None:
        self.counts[platform] += 1
        key = (platform, account_id, f"{caption}\n{media}")
        self.by_content[key] += 1
        self.records.append({
            "platform": platform,
            "accountId": account_id,
            "remoteId": remote_id,
            "url": url,
            "caption": caption,
            "media": media,
            "publishedAt": iso_utc(published_at),
            "privacy": privacy,
            "copy": self.by_content[key],  # 1 for the first post of this content, 2 for a duplicate…
        })

    def duplicates(self, platform: str | None = None) -> int:
        return sum(n - 1 for (p, _, _), n in self.by_content.items() if platform in (None, p))

    def reset(self) -> None:
        self.records.clear()
        self.counts.clear()
        self.by_content.clear()
