"""Instagram's own count of an account's posts: `content_publishing_limit` (platforms.md §2.5).
The Instagram client reads it (a platform call like the others, within the account's cap)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublishingLimit:
    used: int
    total: int
    window_seconds: int


# (account id, token) -> the limit, or None when it cannot be read
ReadPublishingLimit = Callable[[str, str], Awaitable["PublishingLimit | None"]]
