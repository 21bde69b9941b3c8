"""How long to wait, and for how long to keep trying: retry back-off with full jitter, each
platform's budget of attempts and time, and the status-check cadence."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.runtime._backoff import full_jitter

MAX_WAIT_SECONDS = 30 * 86400.0


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    # retryable failures (including leases that ran out) before the target fails for good
    max_attempts: int = 6
    # how long after its scheduled time a target may still be retried or deferred for a
    # reconnect; and how long after the platform accepted it, processing there
    max_elapsed_seconds: float = 12 * 3600.0
    quota_default_seconds: float = 3600.0
    # an account needing reconnection: look again this often (an operator may reconnect it)
    reconnect_wait_seconds: float = 900.0
    # a target waiting on a quota this long raises one alert (it keeps waiting)
    quota_alert_after_seconds: float = 6 * 3600.0

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Full jitter (uniform in [0, min(cap, base * 2^(attempt-1))]), never under Retry-After."""
        wait = full_jitter(attempt, self.base_seconds, self.cap_seconds, rng)
        return self.capped_wait(max(wait, retry_after or 0.0))

    @staticmethod
    def capped_wait(seconds: float) -> float:
        """A platform's Retry-After is taken as given, up to a bound no real one reaches (a
        garbled one must not overflow a date)."""
        return min(seconds, MAX_WAIT_SECONDS)

    def exhausted(self, failures: int) -> bool:
        return failures >= self.max_attempts

    def deadline(self, scheduled_time: datetime) -> datetime:
        return scheduled_time + timedelta(seconds=self.max_elapsed_seconds)


# Each platform's budget. Instagram containers expire 24 h after creation and a late reel is
# still worth posting the same day; a YouTube upload may take hours to get through; TikTok has
# no native scheduling, so a post many hours late has lost its slot.
PLATFORM_RETRY_POLICIES: dict[str, RetryPolicy] = {
    "tiktok": RetryPolicy(max_attempts=6, max_elapsed_seconds=6 * 3600.0),
    "instagram": RetryPolicy(max_attempts=6, max_elapsed_seconds=12 * 3600.0),
    "youtube": RetryPolicy(max_attempts=8, max_elapsed_seconds=24 * 3600.0),
}


def retry_policies(**overrides: float) -> dict[str, RetryPolicy]:
    """The platforms' policies with the same fields overridden for all (settings, tests)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return {p: replace(policy, **given) for p, policy in PLATFORM_RETRY_POLICIES.items()}


@dataclass(frozen=True)
class StatusCadence:
    first_seconds: float = 1.0
    max_seconds: float = 60.0
    lease_seconds: float = 120.0  # a check not answered by then is asked again

    def next_check_in(self, checks_done: int) -> float:
        return min(self.max_seconds, self.first_seconds * 2 ** min(checks_done, 16))


# a post whose figures run out is read this long before they do, for the last time
FINAL_COLLECTION_LEAD_SECONDS = 3600.0


@dataclass(frozen=True)
class EngagementCadence:
    """When a posted target's engagement is collected: at each age after it went live."""

    ages_seconds: tuple[float, ...] = (3600.0, 86_400.0)
    lease_seconds: float = 120.0  # a collection not answered by then is asked again
    retry_seconds: float = 60.0  # after the platform could not tell, for now

    def __post_init__(self) -> None:
        ages = self.ages_seconds
        if any(a <= 0 for a in ages) or any(b <= a for a, b in zip(ages, ages[1:])):
            raise ValueError(f"engagement ages must be positive and increasing, not {ages}")

    def ages_for(self, published_at: datetime | None, figures_until: datetime | None) -> tuple[float, ...]:
        """The collection ages of one post: those before its figures run out (`figures_until`,
        an Instagram story's 24 hours), then one last collection shortly before they do (a
        story's at 23 h: at 24 h there would be nothing to read)."""
        if published_at is None or figures_until is None:
            return self.ages_seconds
        lifetime = (figures_until - published_at).total_seconds()
        last = lifetime - min(FINAL_COLLECTION_LEAD_SECONDS, lifetime / 2)
        kept = tuple(age for age in self.ages_seconds if age < last)
        return kept if len(kept) == len(self.ages_seconds) or last <= 0 else (*kept, last)

    def give_up_after(self, age_seconds: float) -> float:
        """How late a collection may be before it is skipped: its figures would not compare."""
        return max(age_seconds, 3 * self.retry_seconds)
