"""Per-account, per-endpoint caps: never more than the platform's figure in any window."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from contracts import Platform
from services.publishers.limits import ANY_ENDPOINT, PLATFORM_CAPS, Cap, EndpointLimits, hard_cap


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


def test_instagram_lets_a_carousels_calls_through_at_once_and_tiktok_one_call_at_a_time():
    assert hard_cap(PLATFORM_CAPS[Platform.INSTAGRAM][ANY_ENDPOINT]).max_rate == 100
    tiktok = {endpoint: hard_cap(cap).max_rate for endpoint, cap in PLATFORM_CAPS[Platform.TIKTOK].items()}
    assert tiktok == {"creator_info": 1, "video_init": 1, "inbox_init": 1, "content_init": 1, "status_fetch": 10}


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
