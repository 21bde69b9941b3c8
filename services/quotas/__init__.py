"""App-wide and daily platform quotas, counted in Postgres across every process.

    rules = quota_rules(settings.quotas)
    denied = await ledger.reserve(publish_costs(rules, request))   # None: go ahead
    if denied: defer by denied.retry_after(now), saying denied.message
    await ledger.release(costs)        # the platform created nothing: give it back

Per-process call rates (aiolimiter) are not here: see services/publishers/limits.py.
"""

from ._instagram import PublishingLimit, ReadPublishingLimit
from ._ledger import QuotaLedger, app_wide_quota_left
from ._rules import (
    PACIFIC,
    Cost,
    Denied,
    QuotaRule,
    Window,
    next_reset,
    opens_at,
    publish_costs,
    quota_rules,
    status_check_costs,
    window_start,
)

__all__ = [
    "PACIFIC",
    "Cost",
    "Denied",
    "PublishingLimit",
    "ReadPublishingLimit",
    "QuotaLedger",
    "QuotaRule",
    "Window",
    "app_wide_quota_left",
    "next_reset",
    "opens_at",
    "publish_costs",
    "quota_rules",
    "status_check_costs",
    "window_start",
]
