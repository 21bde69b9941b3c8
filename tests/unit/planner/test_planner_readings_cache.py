"""The planner's copy of each account's readings: bounded by its bytes, the batch's kept."""

from __future__ import annotations

import gc
import random
import tracemalloc
from datetime import datetime, timezone

from contracts import ContentType, Platform
from services.planner.domain import Reading
from services.planner.readings_cache import ReadingsCache, readings_bytes

NOW = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loaded(rng: random.Random, count: int) -> list[Reading]:
    """As `store.readings` makes them: floats of their own, small ints and enums shared."""
    return [Reading(how=rng.randrange(168), epoch=NOW - rng.uniform(0, 182 * 86_400), rate=rng.random(),
                    age_seconds=float(rng.choice([3600, 86_400])), content_type=ContentType.VIDEO,
                    expected=rng.random()) for _ in range(count)]


def key(i: int) -> tuple[Platform, str]:
    return (Platform.TIKTOK, f"account-{i:06d}")


def test_the_copies_are_bounded_by_their_bytes_not_their_count():
    """Before: 20,000 accounts whatever their readings (an account of 182 days at 10 posts a
    day holds ~340 kB: 20,000 of them, 6.7 GB)."""
    rng = random.Random(1)
    budget = 4_000_000
    cache = ReadingsCache(60, max_bytes=budget, clock=Clock())
    batches = [[key(b * 10 + i) for i in range(10)] for b in range(40)]

    def fill():
        for batch in batches:
            cache.store({k: loaded(rng, rng.randrange(0, 400)) for k in cache.stale(batch)})
            assert cache.bytes <= budget + sum(readings_bytes(r.readings) for r in cache.view(batch).values())

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill()
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache.bytes <= budget and len(cache) < 400
    assert 0.8 * held < cache.bytes < 1.25 * held, (cache.bytes, held)  # the count is what is held
    assert set(cache.view(batches[-1])) == set(batches[-1]), "the newest stay"
    assert not cache.view(batches[0]), "the oldest went"


def test_accounts_of_the_batch_are_kept_even_over_the_budget():
    """`stale` then `store` then `view`, as the handler does: storing the stale accounts must
    not push out the batch's fresh ones (before, the oldest loaded went, used or not)."""
    clock = Clock()
    cache = ReadingsCache(60, max_accounts=3, clock=clock)
    rng = random.Random(2)
    cache.store({key(i): loaded(rng, 5) for i in range(3)})  # 0, 1, 2: 0 loaded first
    clock.now += 10
    batch = [key(0), key(3)]
    assert cache.stale(batch) == {key(3)}
    cache.store({key(3): loaded(rng, 5)})
    assert set(cache.view(batch)) == set(batch)
    assert set(cache.view([key(1), key(2)])) == {key(2)}, "the least recently used went instead"


def test_a_batch_larger_than_the_budget_is_kept_whole_until_the_next():
    clock = Clock()
    rng = random.Random(3)
    cache = ReadingsCache(60, max_bytes=10_000, clock=clock)
    big = {key(i): loaded(rng, 40) for i in range(5)}  # ~8 kB each
    cache.stale(big)
    cache.store(big)
    assert set(cache.view(big)) == set(big)
    clock.now += 1
    cache.stale([key(9)])
    cache.store({key(9): loaded(rng, 1)})
    assert set(cache.view([*big, key(9)])) == {key(4), key(9)}
    assert cache.bytes <= 10_000


def test_forgotten_and_reloaded_accounts_are_counted_once():
    clock = Clock()
    rng = random.Random(4)
    cache = ReadingsCache(60, clock=clock)
    cache.store({key(1): loaded(rng, 10), key(2): loaded(rng, 20)})
    assert cache.bytes == readings_bytes([None] * 10) + readings_bytes([None] * 20)
    first = cache.view([key(1)])[key(1)].key
    clock.now += 61
    assert cache.stale([key(1), key(2)]) == {key(1), key(2)}
    cache.store({key(1): loaded(rng, 30)})
    assert cache.bytes == readings_bytes([None] * 30) + readings_bytes([None] * 20)
    assert cache.view([key(1)])[key(1)].key != first, "a new key per load"
    cache.forget([key(1), key(3)])
    assert cache.bytes == readings_bytes([None] * 20) and len(cache) == 1
