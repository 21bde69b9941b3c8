"""What stands between a publish request and the platform: the platform's rules, a token, the
quotas. A request that breaks a rule fails for good with the rule's reason; one that does not
fit a quota is deferred (QUOTA, retry after the window opens) and never reaches the platform.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TypeVar

from contracts import NEEDS_REVIEW, ErrorClass, Platform, PublishRequested
from services.quotas import Cost, QuotaLedger, QuotaRule, ReadPublishingLimit, publish_costs
from services.validation import publish_problems

from .credentials import TokenSource, with_token
from .handles import PUBLISH_IN_PROGRESS
from .platforms import PlatformError

T = TypeVar("T")
log = logging.getLogger("autopost.publisher")


def rule_violation(request: PublishRequested) -> PlatformError | None:
    """The platform's rules, checked again before the call (the event may predate a rule)."""
    problems = publish_problems(request)
    if not problems:
        return None
    message = "; ".join(p.message for p in problems[:5])
    return PlatformError(ErrorClass.PERMANENT, problems[0].reason, message)


def created_nothing(error: PlatformError) -> bool:
    """Surely nothing was made on the platform by this attempt: no remote object, no request
    that may have been taken, no post left for review, and not another publisher's attempt at
    the same target (the reservation, one per target, is that publisher's too)."""
    return (error.handle is None and not error.maybe_processed
            and error.code not in (NEEDS_REVIEW, PUBLISH_IN_PROGRESS))


class Preflight:
    """`ledger` None: no quota is counted (publish-once without a database)."""

    def __init__(self, tokens: TokenSource, ledger: QuotaLedger | None, rules: dict[str, QuotaRule], *,
                 instagram_limit: ReadPublishingLimit | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.tokens, self.ledger, self.rules = tokens, ledger, rules
        self.instagram_limit = instagram_limit
        self.clock = clock
        self._learned: dict[str, int] = {}  # Instagram quota_total per account, as this process stored it

    async def publish(self, request: PublishRequested,
                      send: Callable[[PublishRequested, str], Awaitable[T]]) -> T:
        """`send(request, token)` once rules, token and quotas allow it; PlatformError otherwise."""
        if (violation := rule_violation(request)) is not None:
            raise violation
        ledger = self.ledger
        if ledger is None:
            return await with_token(self.tokens, request.platform, request.account_id,
                                    lambda token: send(request, token))
        costs = publish_costs(self.rules, request)

        async def attempt(token: str) -> T:
            await self._reserve(ledger, request, costs, token)
            try:
                return await send(request, token)
            except PlatformError as error:
                if created_nothing(error):  # the post did not count
                    await ledger.release(costs)
                raise

        return await with_token(self.tokens, request.platform, request.account_id, attempt)

    async def _reserve(self, ledger: QuotaLedger, request: PublishRequested, costs: list[Cost], token: str) -> None:
        observed = None
        if request.platform is Platform.INSTAGRAM and self.instagram_limit is not None and costs:
            limit = await self.instagram_limit(request.account_id, token)
            if limit is not None:
                rule = costs[0].rule
                # stored only when it differs: the default needs no row, and it is re-read each time
                if limit.total != self._learned.get(request.account_id, rule.limit):
                    await ledger.learn_limit(rule, request.account_id, limit.total)
                    self._learned[request.account_id] = limit.total
                observed = {(rule.bucket, request.account_id): (limit.used, limit.total)}
        denied = await ledger.reserve(costs, observed=observed)
        if denied is not None:
            now = self.clock()
            log.info("deferring %s: %s", request.target_id, denied.message)
            raise PlatformError(ErrorClass.QUOTA, denied.code, denied.message, denied.retry_after(now))
