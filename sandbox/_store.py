"""State shared by the three fakes: settings, the record of what got published, the fault hook.

Everything is in memory and keyed by id, so each request is O(1). Time is the wall clock
(`time.time`) so timestamps can be compared with another process's clock.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
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

    The fakes call `before(operation, request)` first in every handler and return its response
    when it gives one; this default never does.
    """

    def before(self, operation: str, request: "Request") -> "Response | None":
        return None


class PublishedLog:
    """Everything the platforms consider published, in order: the sandbox's record."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def add(
        self,
        platform: str,
        account_id: str,
        remote_id: str,
        url: str | None,
        caption: str,
        published_at: float,
        privacy: str | None,
    ) -> None:
        self.counts[platform] += 1
        self.records.append({
            "platform": platform,
            "accountId": account_id,
            "remoteId": remote_id,
            "url": url,
            "caption": caption,
            "publishedAt": iso_utc(published_at),
            "privacy": privacy,
        })

    def reset(self) -> None:
        self.records.clear()
        self.counts.clear()
