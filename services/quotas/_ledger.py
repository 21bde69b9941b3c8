"""The quota ledger in Postgres, safe across any number of publisher processes.

Rolling caps are rows taken under a per-bucket advisory lock (their reopening time needs the
rows), by one function call (migration 006); daily quotas are one counter per window, raised by
a conditional upsert, each key counted once a window. Takes that arrive together are one
statement: the rolling ones (a batch's publishes, an account each) one function call that
takes each in turn (migration 019); the daily ones (a batch of YouTube status checks, a unit
each) raise the counter once, by their sum, and only when the sum does not fit is each taken on
its own, so the ones that fit still do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import asyncpg

from services.runtime import Coalesced

from ._rules import Cost, Denied, QuotaRule, Window, opens_at, window_start

# rows this far behind their window are no longer read by anything
_KEEP = timedelta(days=2)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class QuotaLedger:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime] = _utcnow):
        self.pool, self.clock = pool, clock
        self._daily = Coalesced(self._take_daily_together)
        self._rolling = Coalesced(self._take_rolling_together)

    async def reserve(self, costs: Sequence[Cost], *,
                      observed: dict[tuple[str, str], tuple[int, int]] | None = None) -> Denied | None:
        """Take every cost, or none: the first that does not fit is returned (nothing is taken).

        `observed` maps (bucket, scope) to (used, limit) as the platform reports them
        (Instagram's content_publishing_limit); the ledger then counts the larger use.
        """
        if not costs:
            return None
        seen = observed or {}
        if len(costs) == 1:  # every publish: one statement for those of the moment, no transaction
            cost = costs[0]
            if cost.rule.window is Window.PACIFIC_DAY:
                return await self._daily(cost)
            return await self._rolling((cost, seen.get((cost.rule.bucket, cost.scope))))
        now = self.clock()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # locks are always taken in the same order: replicas never deadlock on them
                for cost in sorted(costs, key=lambda c: (c.rule.bucket, c.scope)):
                    denied = await self._take(conn, cost, now, seen.get((cost.rule.bucket, cost.scope)))
                    if denied is not None:
                        raise _Rollback(denied)  # undoes what this call took before
        except _Rollback as rollback:
            return rollback.denied
        return None

    async def release(self, costs: Sequence[Cost]) -> None:
        """Give back what a publish took when the platform created nothing (refundable rules)."""
        refundable = [c for c in costs if c.rule.refundable and c.rule.window is Window.ROLLING_24H]
        if not refundable:
            return
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "DELETE FROM quota_reservations WHERE bucket = $1 AND scope = $2 AND reservation_key = $3",
                [(c.rule.bucket, c.scope, c.key) for c in refundable])

    async def learn_limit(self, rule: QuotaRule, scope: str, total: int) -> None:
        """Record the limit the platform states (it wins over the configured default)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO quota_limits (bucket, scope, quota_total, learned_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (bucket, scope) DO UPDATE
                     SET quota_total = EXCLUDED.quota_total, learned_at = EXCLUDED.learned_at""",
                rule.bucket, scope, total, self.clock())

    async def usage(self, rule: QuotaRule, scope: str = "") -> tuple[int, int]:
        """(used, limit) in the current window."""
        start = window_start(rule, self.clock())
        async with self.pool.acquire() as conn:
            limit = await self._limit(conn, rule, scope)
            if rule.window is Window.ROLLING_24H:
                used = await conn.fetchval(
                    """SELECT COALESCE(sum(units), 0) FROM quota_reservations
                       WHERE bucket = $1 AND scope = $2 AND reserved_at > $3""", rule.bucket, scope, start)
            else:
                used = await conn.fetchval(
                    "SELECT used FROM quota_counters WHERE bucket = $1 AND scope = $2 AND window_start = $3",
                    rule.bucket, scope, start)
        return int(used or 0), limit

    # -- one cost -------------------------------------------------------------------------------

    async def _take(self, conn: asyncpg.Connection, cost: Cost, now: datetime,
                    observed: tuple[int, int] | None) -> Denied | None:
        if cost.rule.window is Window.PACIFIC_DAY:
            return await self._take_daily(conn, [cost], now)
        return await self._take_rolling(conn, cost, now, observed)

    async def _take_rolling(self, conn: asyncpg.Connection, cost: Cost, now: datetime,
                            observed: tuple[int, int] | None) -> Denied | None:
        """One round trip (migration 006: lock the bucket, count, take); a refusal then reads
        the window to say when it reopens."""
        rule, start = cost.rule, window_start(cost.rule, now)
        if await conn.fetchval(
            "SELECT quota_take_rolling($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            rule.bucket, cost.scope, cost.key, cost.units, now, start, start - _KEEP, rule.limit,
            observed[0] if observed else None, observed[1] if observed else None,
        ):
            return None
        return await self._rolling_refusal(conn, cost, now, observed)

    async def _take_rolling_together(
            self, takes: list[tuple[Cost, tuple[int, int] | None]]) -> list[Denied | None]:
        """One round trip for every take (migration 019), in the order all takers lock buckets
        in; each refused one then reads its window to say when it reopens."""
        now = self.clock()
        # stable: one account's takes keep the order they came in
        order = sorted(range(len(takes)), key=lambda i: (takes[i][0].rule.bucket, takes[i][0].scope))
        costs = [takes[i][0] for i in order]
        seen = [takes[i][1] for i in order]
        async with self.pool.acquire() as conn:
            taken = await conn.fetchval(
                "SELECT quota_take_rolling_each($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                [c.rule.bucket for c in costs], [c.scope for c in costs], [c.key for c in costs],
                [c.units for c in costs], [window_start(c.rule, now) for c in costs],
                [c.rule.limit for c in costs], [o[0] if o else None for o in seen],
                [o[1] if o else None for o in seen], now, _KEEP)
            answers: list[Denied | None] = [None] * len(takes)
            for i, cost, observed, ok in zip(order, costs, seen, taken):
                if not ok:
                    answers[i] = await self._rolling_refusal(conn, cost, now, observed)
        return answers

    async def _rolling_refusal(self, conn: asyncpg.Connection, cost: Cost, now: datetime,
                               observed: tuple[int, int] | None) -> Denied:
        rule, start = cost.rule, window_start(cost.rule, now)
        # the window's reservations and the learnt limit in one round trip (one row even if none)
        rows = await conn.fetch(
            """SELECT r.reserved_at, r.units, l.quota_total
               FROM (SELECT 1) AS one
               LEFT JOIN quota_limits l ON l.bucket = $1 AND l.scope = $2
               LEFT JOIN quota_reservations r ON r.bucket = $1 AND r.scope = $2 AND r.reserved_at > $3
               ORDER BY r.reserved_at""", rule.bucket, cost.scope, start)
        taken = [(r["reserved_at"], r["units"]) for r in rows if r["reserved_at"] is not None]
        limit = rows[0]["quota_total"] if rows[0]["quota_total"] is not None else rule.limit
        used = sum(units for _, units in taken)
        if observed is not None:
            used, limit = max(used, observed[0]), observed[1]
        return Denied(rule, cost.scope, used, limit, opens_at(rule, now, limit, taken, cost.units, used))

    async def _take_daily_together(self, costs: list[Cost]) -> list[Denied | None]:
        now = self.clock()
        answers: list[Denied | None] = [None] * len(costs)
        groups: dict[tuple[QuotaRule, str], list[int]] = defaultdict(list)
        for i, cost in enumerate(costs):
            groups[(cost.rule, cost.scope)].append(i)
        async with self.pool.acquire() as conn:
            for members in groups.values():
                if len(members) == 1 or await self._take_daily(conn, [costs[i] for i in members], now) is not None:
                    for i in members:  # near the limit: each on its own, so what fits is taken
                        answers[i] = await self._take_daily(conn, [costs[i]], now)
        return answers

    async def _take_daily(self, conn: asyncpg.Connection, costs: list[Cost], now: datetime) -> Denied | None:
        """Take `costs` (one rule and scope) from the window's counter, all or none. A key taken
        in this window already counts no more: a retried upload resuming its session, another
        publisher's `publish_in_progress`, a redelivered request (the keys are kept in
        `quota_reservations`, as the rolling rules' are, until housekeeping prunes them)."""
        rule, scope, start = costs[0].rule, costs[0].scope, window_start(costs[0].rule, now)
        try:
            async with conn.transaction():
                fresh = await conn.fetch(
                    """INSERT INTO quota_reservations AS r (bucket, scope, reservation_key, units, reserved_at)
                       SELECT $1, $2, k, u, $5 FROM unnest($3::text[], $4::int[]) AS x(k, u)
                       ON CONFLICT (bucket, scope, reservation_key) DO UPDATE
                         SET units = EXCLUDED.units, reserved_at = EXCLUDED.reserved_at
                         WHERE r.reserved_at < $6  -- taken in an earlier window: it counts again
                       RETURNING units""",
                    rule.bucket, scope, [c.key for c in costs], [c.units for c in costs], now, start)
                units = sum(r["units"] for r in fresh)
                if not units:
                    return None
                # one statement: the counter's row lock orders concurrent takers, the learnt limit wins
                used = await conn.fetchval(
                    """INSERT INTO quota_counters AS c (bucket, scope, window_start, used)
                       SELECT $1, $2, $3, $4 WHERE $4 <= COALESCE(
                           (SELECT quota_total FROM quota_limits WHERE bucket = $1 AND scope = $2), $5)
                       ON CONFLICT (bucket, scope, window_start) DO UPDATE SET used = c.used + EXCLUDED.used
                         WHERE c.used + EXCLUDED.used <= COALESCE(
                           (SELECT quota_total FROM quota_limits WHERE bucket = $1 AND scope = $2), $5)
                       RETURNING used""",
                    rule.bucket, scope, start, units, rule.limit)
                if used is not None:
                    return None
                used = await conn.fetchval(
                    "SELECT used FROM quota_counters WHERE bucket = $1 AND scope = $2 AND window_start = $3",
                    rule.bucket, scope, start)
                limit = await self._limit(conn, rule, scope)
                raise _Rollback(Denied(rule, scope, int(used or 0), limit,
                                       opens_at(rule, now, limit, [], units, used or 0)))
        except _Rollback as rollback:  # the keys are not taken either
            return rollback.denied

    @staticmethod
    async def _limit(conn: asyncpg.Connection, rule: QuotaRule, scope: str) -> int:
        learned = await conn.fetchval("SELECT quota_total FROM quota_limits WHERE bucket = $1 AND scope = $2",
                                      rule.bucket, scope)
        return int(learned) if learned is not None else rule.limit


async def app_wide_quota_left(conn: asyncpg.Connection, rules: Sequence[QuotaRule],
                              now: datetime) -> list[tuple[QuotaRule, int]]:
    """What is left in the current window of each app-wide daily quota (YouTube's units and
    uploads), the learnt limit winning: one round trip, for the queue's figures."""
    daily = [r for r in rules if not r.per_account and r.window is Window.PACIFIC_DAY]
    if not daily:
        return []
    rows = await conn.fetch(
        """SELECT b.bucket, c.used, l.quota_total
           FROM unnest($1::text[], $2::timestamptz[]) AS b(bucket, window_start)
           LEFT JOIN quota_counters c ON c.bucket = b.bucket AND c.scope = '' AND c.window_start = b.window_start
           LEFT JOIN quota_limits l ON l.bucket = b.bucket AND l.scope = ''""",
        [r.bucket for r in daily], [window_start(r, now) for r in daily])
    found = {r["bucket"]: r for r in rows}
    left = []
    for rule in daily:
        row = found[rule.bucket]
        limit = row["quota_total"] if row["quota_total"] is not None else rule.limit
        left.append((rule, max(0, limit - (row["used"] or 0))))
    return left


class _Rollback(Exception):
    def __init__(self, denied: Denied):
        self.denied = denied
