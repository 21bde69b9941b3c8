"""Per-account publish rate caps, one limiter per account in this process.

Publish requests are keyed by account id, so an account's requests all reach the one process
that holds its limiter. `AsyncLimiter(1, period / n)` spaces calls evenly: a plain
`AsyncLimiter(n, period)` lets a burst of n through and then about n more within the period.
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter

from contracts import Platform

# (calls, seconds) per account for the publish call: TikTok's init endpoints allow 6 a minute.
PUBLISH_RATE: dict[Platform, tuple[int, float]] = {
    Platform.TIKTOK: (6, 60.0),
    Platform.INSTAGRAM: (10, 60.0),
    Platform.YOUTUBE: (10, 60.0),
}


# Calls spaced exactly period/n apart arrive at the platform a few ms closer now and then (the
# benchmark saw 495 ms for a 500 ms spacing), which makes n+1 in some window: keep 2 % spare.
SAFETY_MARGIN = 0.02


class AccountLimiters:
    def __init__(self, calls: int, period: float, *, max_accounts: int = 100_000):
        self.interval = period / calls * (1 + SAFETY_MARGIN)
        self.max_accounts = max_accounts
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def for_account(self, account_id: str) -> AsyncLimiter:
        limiter = self._limiters.get(account_id)
        if limiter is None:
            limiter = AsyncLimiter(1, self.interval)
            self._limiters[account_id] = limiter
            if len(self._limiters) > self.max_accounts:
                self._limiters.popitem(last=False)  # least recently added; its bucket has drained
        return limiter
