"""How long to wait: retry back-off with full jitter, and the status-check cadence."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    max_attempts: int = 5
    quota_default_seconds: float = 3600.0

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Full jitter (uniform in [0, min(cap, base * 2^(attempt-1))]), never under Retry-After."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        wait = rng.uniform(0, ceiling)
        return max(wait, retry_after or 0.0)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts


@dataclass(frozen=True)
class StatusCadence:
    first_seconds: float = 1.0
    max_seconds: float = 60.0
    lease_seconds: float = 120.0  # a check not answered by then is asked again

    def next_check_in(self, checks_done: int) -> float:
        return min(self.max_seconds, self.first_seconds * 2 ** min(checks_done, 16))
