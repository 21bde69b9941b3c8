"""Keeps idle accounts connected: tokens are otherwise refreshed only when a post or a status
read uses them, and an account that posts less often than its tokens live would need a person
to connect it again (see `keep_alive_due` for each platform's deadline).

Each publisher sweeps its platform's accounts. Replicas may sweep at once: a refresh takes the
account's row lock and re-reads it, so each account is refreshed once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from contracts import Platform
from services.runtime import Background

from ._errors import AccountUnavailable, RefreshFailed
from ._tokens import AccessTokens

log = logging.getLogger("autopost.accounts.keepalive")

INTERVAL_SECONDS = 3600.0  # the deadlines are days away: an hourly look has many chances
_PAGE = 100


class TokenKeepAlive(Background):
    task_name = "token keep-alive"

    def __init__(self, tokens: AccessTokens, platform: Platform, interval: float = INTERVAL_SECONDS):
        self.tokens, self.platform, self.interval = tokens, platform, interval

    async def sweep(self) -> Counter[str]:
        """Refresh every connected account of the platform that is due: how many were
        refreshed, lost (need reconnecting, alert raised) and failed (tried again next sweep)."""
        counts: Counter[str] = Counter()
        store, after = self.tokens.store, ""
        while True:
            page = await store.keep_alive_candidates(self.platform, self.tokens.clock(), after=after, limit=_PAGE)
            for account_id in page:
                try:
                    counts["refreshed" if await self.tokens.keep_alive(self.platform, account_id)
                           else "not_due"] += 1
                except AccountUnavailable:
                    counts["lost"] += 1
                except RefreshFailed:
                    counts["failed"] += 1
            if len(page) < _PAGE:
                return counts
            after = page[-1]

    async def _run(self) -> None:
        while True:
            try:
                counts = await self.sweep()
                if counts["refreshed"] or counts["lost"] or counts["failed"]:
                    log.info("kept %s accounts connected: %d refreshed, %d need reconnecting, %d failed "
                             "(tried again in %.0f s)", self.platform.value, counts["refreshed"],
                             counts["lost"], counts["failed"], self.interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the %s token keep-alive sweep failed; trying again later", self.platform.value)
            await asyncio.sleep(self.interval)
