"""Per-account, per-endpoint caps: never more than the platform's figure in any window."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from contracts import Platform
from services.publishers.limits import (
    ANY_ENDPOINT, PLATFORM_CAPS, POLLER_SHARES, SAFETY_MARGIN, Cap, EndpointLimits, HandedOver,
    hard_cap, idle, serving,
)


@pytest.mark.parametrize("platform, endpoint", [(p, e) for p, caps in PLATFORM_CAPS.items() for e in caps])
def test_every_cap_allows_at_most_its_figure_per_window(platform, endpoint):
    cap = PLATFORM_CAPS[platform][endpoint]
    limiter = hard_cap(cap)
    # a bucket of b passes b at once, then one per time_period / b: a window of `period` holds
    # the burst and every later one that fits
    rate = limiter.max_rate / limiter.time_period
    assert limiter.max_rate + math.floor(rate * cap.period) <= cap.calls
    if cap.burst == 1:  # the caps a backlog runs into
        assert rate * cap.period / cap.calls >= 0.95, "a backlog goes at 95 % of the cap or more"


def test_the_platforms_figures():
    tiktok = PLATFORM_CAPS[Platform.TIKTOK]
    assert {e: (c.calls, c.period) for e, c in tiktok.items()} == {
        "creator_info": (20, 60.0), "video_init": (6, 60.0), "inbox_init": (6, 60.0),
        "content_init": (6, 60.0), "status_fetch": (30, 60.0)}
    assert PLATFORM_CAPS[Platform.INSTAGRAM]["*"] == Cap(200, 3600.0, burst=100)


@pytest.mark.parametrize("platform, endpoint", [(p, e) for p, shares in POLLER_SHARES.items() for e in shares])
def test_the_publisher_and_the_poller_together_stay_within_a_shared_cap(platform, endpoint):
    cap = PLATFORM_CAPS[platform][endpoint]
    parts = [EndpointLimits.for_platform(platform, poller=poller).caps[endpoint] for poller in (False, True)]
    assert sum(part.calls for part in parts) == cap.calls and all(part.period == cap.period for part in parts)
    windows = 0
    for part in parts:
        limiter = hard_cap(part)
        windows += limiter.max_rate + math.floor(limiter.max_rate / limiter.time_period * cap.period)
    assert windows <= cap.calls, "in any window, both services' calls together"


def test_each_service_gets_its_part_of_what_both_call_and_the_whole_of_the_rest():
    publisher = EndpointLimits.for_platform(Platform.TIKTOK).caps
    poller = EndpointLimits.for_platform(Platform.TIKTOK, poller=True).caps
    assert (publisher["status_fetch"], poller["status_fetch"]) == (Cap(6, 60.0, 2), Cap(24, 60.0, 8))
    assert publisher["video_init"] == poller["video_init"] == Cap(6, 60.0)  # only the publisher inits
    instagram = [EndpointLimits.for_platform(Platform.INSTAGRAM, poller=p).caps[ANY_ENDPOINT] for p in (False, True)]
    assert instagram == [Cap(150, 3600.0, 75), Cap(50, 3600.0, 25)]
    # a rate from the settings paces this service alone: it is not split
    assert EndpointLimits.for_platform(Platform.INSTAGRAM, Cap(5, 1.0), poller=True).caps == {ANY_ENDPOINT: Cap(5, 1.0)}


def test_a_split_keeps_one_call_on_each_side():
    assert Cap(2, 60.0).split(0.01) == (Cap(1, 60.0), Cap(1, 60.0))
    assert Cap(10, 60.0, burst=10).split(0.99) == (Cap(1, 60.0), Cap(9, 60.0, 9))


def test_instagram_lets_a_carousels_calls_through_at_once_and_tiktok_one_call_at_a_time():
    assert hard_cap(EndpointLimits.for_platform(Platform.INSTAGRAM).caps[ANY_ENDPOINT]).max_rate == 75
    tiktok = {endpoint: hard_cap(cap).max_rate for endpoint, cap in EndpointLimits.for_platform(Platform.TIKTOK).caps.items()}
    assert tiktok == {"creator_info": 1, "video_init": 1, "inbox_init": 1, "content_init": 1, "status_fetch": 2}
    poller = EndpointLimits.for_platform(Platform.TIKTOK, poller=True).caps
    assert hard_cap(poller["status_fetch"]).max_rate == 8  # a post is checked many times while it processes


async def test_a_backlog_goes_evenly_spaced_and_never_more_than_the_cap_in_any_window():
    cap = Cap(6, 0.3)
    limiter = hard_cap(cap)
    loop = asyncio.get_running_loop()
    start = loop.time()
    times = []
    for _ in range(12):
        async with limiter:
            times.append(loop.time())
    assert times[0] - start < 0.05  # the first call does not wait
    for t in times:  # delays on a busy machine only spread them further
        assert sum(1 for u in times if t <= u <= t + cap.period) <= cap.calls
    assert min(b - a for a, b in zip(times, times[1:])) >= cap.period / cap.calls * 0.99


async def test_caps_are_per_account_and_per_endpoint():
    limits = EndpointLimits({"video_init": Cap(2, 60.0)})
    loop = asyncio.get_running_loop()
    start = loop.time()
    for account in ("a", "b"):  # one call each: neither waits for the other
        async with limits.slot(account, "video_init"):
            pass
    async with limits.slot("a", "status_fetch"):  # no cap on that endpoint
        pass
    assert loop.time() - start < 0.05
    assert limits.limiter("a", "video_init") is limits.limiter("a", "video_init")
    assert limits.limiter("a", "video_init") is not limits.limiter("b", "video_init")


def test_a_catch_all_cap_and_pauses():
    limits = EndpointLimits({"*": Cap(200, 3600.0)})
    assert limits.limiter("acct", "media") is limits.limiter("acct", "node")  # one budget per account
    assert limits.paused_for("acct") == 0.0
    limits.pause("acct", 0.05)
    assert 0 < limits.paused_for("acct") <= 0.05
    time.sleep(0.06)
    assert limits.paused_for("acct") == 0.0


class FakeClock:
    """The handover's clock: moved by hand (the limiters' own waits run on the loop's)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def calls_in_windows(times: list[float], period: float) -> int:
    """The most calls in any window of `period` (delays on a busy machine only spread them)."""
    return max(sum(1 for u in times if t <= u <= t + period) for t in times)


async def test_a_tiktok_init_cap_taken_on_at_a_handover_starts_spent_and_one_a_period_later_does_not():
    clock = FakeClock()
    limits = EndpointLimits(EndpointLimits.for_platform(Platform.TIKTOK).caps, clock=clock)
    limits.took_on_partitions()  # the first assignment, at the start, or a rebalance
    assert not limits.limiter("right-after", "video_init").has_capacity(), "another may have just spent it"
    clock.now += 10.0  # an init's interval is 10.2 s
    assert not limits.limiter("ten-seconds-after", "video_init").has_capacity()
    clock.now += 51.0  # the account's calls have been here for a period: nobody else spends its budget
    assert limits.limiter("a-minute-after", "video_init").has_capacity()


async def test_a_limiter_made_after_a_handover_waits_only_what_is_left_of_the_interval():
    clock = FakeClock()
    limits = EndpointLimits({"video_init": Cap(3, 0.3)}, clock=clock)  # 0.102 s apart
    limits.took_on_partitions()
    clock.now += 0.06
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with limits.slot("acct", "video_init"):
        waited = loop.time() - started
    assert 0.03 <= waited < 0.095  # 0.042 s, not the whole interval


@pytest.mark.parametrize("cap", [Cap(3, 0.3), Cap(6, 0.3, burst=3)])
async def test_a_limiter_made_at_a_handover_waits_one_interval_and_keeps_the_cap_across_both_processes(cap):
    loop = asyncio.get_running_loop()
    interval = 1 / (hard_cap(cap).max_rate / hard_cap(cap).time_period)
    before = EndpointLimits({"video_init": cap})  # the process that had the account until now
    times = []
    for _ in range(cap.calls - 1):
        async with before.slot("acct", "video_init"):
            times.append(loop.time())
    after = EndpointLimits({"video_init": cap})
    after.took_on_partitions()
    started = loop.time()
    for _ in range(cap.calls):
        async with after.slot("acct", "video_init"):
            times.append(loop.time())
    assert times[cap.calls - 1] - started >= interval * 0.99, "the first call waits one interval"
    assert calls_in_windows(times, cap.period) <= cap.calls


async def test_limiters_held_are_spent_again_when_partitions_are_taken_on():
    clock = FakeClock()
    limits = EndpointLimits({"video_init": Cap(3, 0.3)}, clock=clock)
    limiter = limits.limiter("acct", "video_init")
    assert limiter.has_capacity()
    limits.took_on_partitions()  # the account's partition may have been away and come back
    assert not limiter.has_capacity()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with limits.slot("acct", "video_init"):
        assert loop.time() - started >= 0.1  # one interval (0.3 / 3 and the margin)


async def test_instagram_reports_its_usage_so_its_caps_start_unspent():
    limits = EndpointLimits.for_platform(Platform.INSTAGRAM)
    limits.took_on_partitions()
    limiter = limits.limiter("acct", "media")
    assert limiter.has_capacity(limiter.max_rate), "no call waits at a handover"
    assert limits.handover_at is None
    tiktok = EndpointLimits.for_platform(Platform.TIKTOK)
    tiktok.took_on_partitions()
    assert tiktok.handover_at is not None  # TikTok's do start spent


async def test_the_least_recently_used_idle_limiter_makes_room():
    limits = EndpointLimits({"video_init": Cap(3, 0.3)}, max_entries=2)
    async with limits.slot("busy", "video_init"):  # its bucket drains for an interval and more
        pass
    unused = limits.limiter("unused", "video_init")
    busy = limits.limiter("busy", "video_init")  # used after `unused`, though added before it
    limits.limiter("new", "video_init")
    assert limits.limiter("busy", "video_init") is busy
    assert set(limits._limiters) == {("busy", "video_init"), ("new", "video_init")}
    assert limits.limiter("unused", "video_init") is not unused


async def test_limiters_still_draining_are_kept_over_the_bound_until_they_drain():
    cap = Cap(3, 0.3)
    limits = EndpointLimits({"video_init": cap}, max_entries=2)
    held = []
    for account in ("a", "b"):
        async with limits.slot(account, "video_init"):
            held.append(limits.limiter(account, "video_init"))
    limits.limiter("c", "video_init")
    assert len(limits._limiters) == 3, "a fresh limiter for a or b would let their next call through at once"
    assert [limits._limiters[(a, "video_init")] for a in ("a", "b")] == held
    await asyncio.sleep(2.1 * cap.period / cap.calls * (1 + SAFETY_MARGIN))  # empty for an interval
    limits.limiter("d", "video_init")
    assert set(limits._limiters) == {("c", "video_init"), ("d", "video_init")}


async def test_a_limiter_with_a_waiter_is_kept_even_when_the_loop_was_held_up():
    limits = EndpointLimits({"video_init": Cap(3, 0.3)}, max_entries=1)
    limiter = limits.limiter("acct", "video_init")
    await limiter.acquire()
    waiting = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)  # it waits for the next interval
    time.sleep(0.25)  # noqa: ASYNC251 - a loop held up: the bucket drains, the waiter does not run
    limits.limiter("other", "video_init")
    assert limits.limiter("acct", "video_init") is limiter
    await waiting


async def test_a_bucket_that_has_just_emptied_is_not_idle():
    """As a woken waiter leaves it: no longer waiting, its call not yet on the level."""
    limiter = hard_cap(Cap(3, 0.3))  # one call per 0.102 s
    await limiter.acquire()
    await asyncio.sleep(0.11)
    assert limiter.has_capacity()  # leaked to empty, as of now
    assert not idle(limiter)
    await asyncio.sleep(0.11)
    assert idle(limiter)


async def test_a_request_waiting_for_a_cap_stops_at_once_when_its_partition_goes_elsewhere():
    """The replica that lost a partition stops its requests before their next capped call: the
    new owner counts the caps from the handover and reads the requests again."""
    limits = EndpointLimits({"video_init": Cap(2, 20.0)})  # one call, then one each 10 s
    calls: list[int] = []

    async def request(partition: int) -> str:
        with serving(partition):
            try:
                async with limits.slot(f"acct-{partition}", "video_init"):
                    calls.append(partition)
                async with limits.slot(f"acct-{partition}", "video_init"):  # waits 10 s
                    calls.append(partition)
            except HandedOver:
                return "handed over"
        return "done"

    lost, kept = asyncio.create_task(request(3)), asyncio.create_task(request(4))
    await asyncio.sleep(0.05)
    assert calls == [3, 4]  # both made their first call and wait for the second
    limits.lost_partitions({3})
    await asyncio.wait({lost}, timeout=1.0)  # not wait_for: its own cancellation would stop it
    assert lost.done() and lost.result() == "handed over", "stopped at once, not after its 10 s wait"
    assert limits.handed_over(3) and not limits.handed_over(4)
    assert not kept.done(), "a partition still held keeps waiting for its cap"
    kept.cancel()
    with pytest.raises(asyncio.CancelledError):  # a cancellation not ours stays one
        await kept
    assert calls == [3, 4] and limits._waiting == {} and limits._stopped == set()


async def test_a_lost_partitions_request_makes_no_capped_call_until_the_partition_comes_back():
    limits = EndpointLimits({"video_init": Cap(6, 60.0)})
    limits.lost_partitions({1})
    with serving(1), pytest.raises(HandedOver):
        async with limits.slot("acct", "video_init"):
            pytest.fail("the call went")
    with serving(2):  # another partition, and calls outside any request, are not stopped
        async with limits.slot("other", "video_init"):
            pass
    async with limits.slot("acct", "video_init"):
        pass
    limits.took_on_partitions({1})
    assert not limits.handed_over(1)
    with serving(1):
        async with limits.slot("acct", "status_fetch"):  # no cap there: never stopped
            pass
        async with limits.slot("back", "video_init"):
            pass


async def test_a_request_woken_by_its_cap_just_as_the_partition_goes_is_stopped_too():
    """The cap let it through, but it had not run yet when the partition went: it stops before
    its call (its wait resumes with the cancellation)."""
    limits = EndpointLimits({"video_init": Cap(6, 60.0)})
    let_through = asyncio.get_running_loop().create_future()

    class Gate:  # a cap that lets the call through when the test says
        async def acquire(self):
            await let_through

    limits.limiter = lambda account, endpoint: Gate()

    async def request() -> str:
        with serving(0):
            try:
                async with limits.slot("acct", "video_init"):
                    return "called"
            except HandedOver:
                return "handed over"

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    let_through.set_result(None)  # woken, not yet run...
    limits.lost_partitions({0})  # ...when the partition goes
    assert await task == "handed over"
