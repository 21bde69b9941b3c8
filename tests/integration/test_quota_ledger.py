"""The quota ledger on the real Postgres: never more than a quota holds, across processes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from harness import batch_sizes
from services.quotas import Cost, QuotaLedger, next_reset, quota_rules
from services.runtime import QuotaSettings, apply_migrations, create_pool

pytestmark = pytest.mark.integration

RULES = quota_rules(QuotaSettings(tiktok_daily_posts=3, youtube_daily_uploads=4, instagram_daily_publishes=5))
START = datetime(2026, 5, 4, 15, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def ledgers(database_url: str, count: int, clock: Clock):
    """`count` ledgers on pools of their own, like publisher replicas."""
    pools = [await create_pool(database_url, min_size=1, max_size=3) for _ in range(count)]
    async with pools[0].acquire() as conn:
        await apply_migrations(conn)
    return pools, [QuotaLedger(pool, clock) for pool in pools]


def post(target: str, account: str = "creator") -> Cost:
    return Cost(RULES["tiktok.direct_posts"], account, target)


async def test_rolling_cap_counts_each_target_once_and_reopens_as_the_oldest_ages_out(database_url):
    clock = Clock(START)
    pools, [ledger] = await ledgers(database_url, 1, clock)
    try:
        for i, hours in enumerate((0, 2, 4)):
            clock.at = START + timedelta(hours=hours)
            assert await ledger.reserve([post(f"t{i}")]) is None
        assert await ledger.reserve([post("t1")]) is None, "a retried target is already counted"
        assert await ledger.reserve([post("other", account="another-creator")]) is None  # per creator
        denied = await ledger.reserve([post("t3")])
        assert denied is not None and (denied.used, denied.limit) == (3, 3)
        assert denied.opens_at == START + timedelta(hours=24)
        assert denied.retry_after(clock.at) == pytest.approx(20 * 3600)
        assert "TikTok Direct Posts" in denied.message and "3 of 3" in denied.message
        await ledger.release([post("t2")])  # the platform created nothing for it
        assert await ledger.reserve([post("t3")]) is None
        clock.at = START + timedelta(hours=24, seconds=1)  # t0 has aged out
        assert await ledger.reserve([post("t4")]) is None
        assert await ledger.usage(RULES["tiktok.direct_posts"], "creator") == (3, 3)
    finally:
        for pool in pools:
            await pool.close()


async def test_replicas_reserving_at_once_never_exceed_the_cap(database_url):
    clock = Clock(START)
    pools, replicas = await ledgers(database_url, 3, clock)
    try:
        rolling = await asyncio.gather(*(replicas[i % 3].reserve([post(f"r{i}")]) for i in range(20)))
        uploads = await asyncio.gather(*(
            replicas[i % 3].reserve([Cost(RULES["youtube.uploads"], "", f"u{i}")]) for i in range(20)))
    finally:
        for pool in pools:
            await pool.close()
    assert sum(d is None for d in rolling) == 3
    assert sum(d is None for d in uploads) == 4
    assert {d.opens_at for d in uploads if d} == {next_reset(START)}


async def test_rolling_takes_arriving_together_are_one_statement_each_answered_alone(database_url):
    clock = Clock(START)
    pools, [ledger] = await ledgers(database_url, 1, clock)
    batches = batch_sizes(ledger._rolling)
    ig = RULES["instagram.publishes"]
    try:
        # a batch's publishes: five of one creator (cap 3), one each of four others, and two
        # Instagram accounts, one of which says it has used its 5 elsewhere
        costs = [post(f"b{i}", "busy") for i in range(5)] + [post("x", f"c{i}") for i in range(4)]
        costs += [Cost(ig, "ig", "p1"), Cost(ig, "ig-full", "p2")]
        answers = await asyncio.gather(*(
            ledger.reserve([c], observed={(ig.bucket, "ig-full"): (5, 5)}) for c in costs))
        assert batches == [11], "eleven takes, one statement"
        assert answers[:3] == [None] * 3, "one creator's takes are taken in the order they came"
        assert all((d.used, d.limit, d.opens_at) == (3, 3, START + timedelta(hours=24)) for d in answers[3:5])
        assert answers[5:9] == [None] * 4
        assert answers[9] is None and (answers[10].used, answers[10].limit) == (5, 5)
        assert await ledger.reserve([post("b1", "busy")]) is None, "a retry of a taken one still counts once"
        assert await ledger.usage(RULES["tiktok.direct_posts"], "busy") == (3, 3)
    finally:
        for pool in pools:
            await pool.close()


async def test_all_or_nothing_and_what_the_platform_says_counts(database_url):
    clock = Clock(START)
    pools, [ledger] = await ledgers(database_url, 1, clock)
    try:
        rule = RULES["instagram.publishes"]
        # Instagram reports posts made elsewhere: 5 of its own 5 used, though this ledger saw none
        denied = await ledger.reserve([Cost(rule, "ig", "p1")], observed={(rule.bucket, "ig"): (5, 5)})
        assert denied is not None and (denied.used, denied.limit) == (5, 5)
        assert denied.opens_at == START + timedelta(hours=1)  # unknown ages: look again later
        await ledger.learn_limit(rule, "ig", 1)  # the platform's quota_total wins over the default
        assert await ledger.reserve([Cost(rule, "ig", "p1")]) is None
        assert await ledger.reserve([Cost(rule, "ig", "p2")]) is not None
        # two costs where the second does not fit take neither
        units = Cost(RULES["youtube.units"], "", "call-1")
        assert await ledger.reserve([units, Cost(rule, "ig", "p3")]) is not None
        assert await ledger.usage(RULES["youtube.units"]) == (0, 10_000)
    finally:
        for pool in pools:
            await pool.close()


async def test_daily_units_taken_together_are_one_statement_and_what_fits_is_taken(database_url):
    rules = quota_rules(QuotaSettings(youtube_daily_units=12))
    units = rules["youtube.units"]
    clock = Clock(START)
    pools, [ledger, other] = await ledgers(database_url, 2, clock)
    statements: list[int] = []
    take = ledger._take_daily

    async def counted(conn, costs, now):
        statements.append(sum(c.units for c in costs))
        return await take(conn, costs, now)

    ledger._take_daily = counted
    try:
        checks = [Cost(units, "", f"check-{i}", 1) for i in range(5)]
        assert await asyncio.gather(*(ledger.reserve([c]) for c in checks)) == [None] * 5
        assert statements == [5], "five status checks, one raise of the counter"
        assert await other.reserve([Cost(units, "", "engagement", 2)]) is None  # another poller: 7 of 12
        statements.clear()
        # six more, only five fit: the sum is refused, then each is taken on its own, in order
        answers = await asyncio.gather(*(ledger.reserve([Cost(units, "", f"late-{i}", 1)]) for i in range(6)))
        assert answers[:5] == [None] * 5 and answers[5] is not None
        assert (answers[5].used, answers[5].limit) == (12, 12)
        assert statements == [6, 1, 1, 1, 1, 1, 1]
        assert await ledger.usage(units) == (12, 12)
    finally:
        for pool in pools:
            await pool.close()


async def test_a_daily_quota_counts_a_target_once_a_day_whatever_its_retries(database_url):
    # YouTube's 100 uploads a day: a target retried (its session resumed), refused by another
    # publisher holding it, or read twice makes one videos.insert at most
    from contracts import ContentType, MediaRef, Platform, PublishRequested
    from services.quotas import publish_costs

    clock = Clock(START)
    pools, [ledger, other] = await ledgers(database_url, 2, clock)
    uploads = RULES["youtube.uploads"]
    try:
        def attempt(target: str, n: int) -> list[Cost]:
            return publish_costs(RULES, PublishRequested(
                message_id=uuid.uuid4(), target_id=uuid.UUID(target), post_id=uuid.uuid4(),
                platform=Platform.YOUTUBE, account_id="UCx", attempt=n, content_type=ContentType.VIDEO,
                caption="c", media=[MediaRef(url="https://cdn.example/v.mp4")], scheduled_time=START))

        first = "00000000-0000-0000-0000-000000000001"
        for n in range(1, 11):
            assert await (ledger if n % 2 else other).reserve(attempt(first, n)) is None
        assert await ledger.usage(uploads) == (1, 4), "ten attempts of one target: one upload"
        for i in range(2, 5):
            assert await ledger.reserve(attempt(f"00000000-0000-0000-0000-00000000000{i}", 1)) is None
        refused = await ledger.reserve(attempt("00000000-0000-0000-0000-000000000005", 1))
        assert refused is not None and (refused.used, refused.limit) == (4, 4)
        assert await ledger.reserve(attempt(first, 11)) is None, "still counted: no new take"
        clock.at = next_reset(START) + timedelta(minutes=1)  # a new Pacific day: it counts again
        assert await ledger.reserve(attempt("00000000-0000-0000-0000-000000000005", 2)) is None, \
            "a refusal took no key"
        assert await ledger.reserve(attempt(first, 12)) is None
        assert await ledger.usage(uploads) == (2, 4)
    finally:
        for pool in pools:
            await pool.close()
