"""Per-account caps on each platform endpoint, held in this process (aiolimiter).

Publish and status requests are keyed by account id, so an account's calls reach one process
per service, and its caps live there. A plain `AsyncLimiter(n, period)` lets a burst of n
through and then n more within the period (up to 2n). A bucket of `b` passes `b` at once and
then one per `1 / rate`, so a window of `period` can hold `b + floor(rate * period)`: keeping
that at n, a burst is paid for in sustained rate, `(n - b + 1) / n` of the cap. Each cap says
which it needs (`Cap.burst`): TikTok's publish inits (6 a minute) are what a backlog runs into,
so they go one at a time and a backlog uses 98 % of the cap; its status checks come in runs
while a post processes (a burst of 10, 70 % of 30 a minute sustained); Instagram's 200 calls an
hour never hold a backlog back (its 50 posts a day do), but a carousel makes 20 calls or more,
so half its cap may go at once.
An account's cap is one budget, but two services spend some of it, each with limiters of its own:
the publisher and the status poller. Where both call an endpoint, its cap is split between them
(`POLLER_SHARES`), so that together they never pass the platform's figure.
Daily quotas (YouTube units, Instagram's 50 posts, TikTok's creator cap) are not rates: they
are counted in Postgres, not here.
An account's calls reach one process, but not always the same one: after a restart, or when a
rebalance moves its partition to another replica, the process that takes it on knows nothing of
what the last one spent, and an empty bucket would let a whole burst through (up to twice the
cap). A bucket that starts full passes, after whatever another bucket of its shape passed, only
what one bucket would have (the true level is at most full). So the limiters a process makes
after taking on partitions (the first assignment, at its start, too) start as if full at that
moment and leaking since:
made right then, the first call waits one interval (`1 / rate`, 10 s for a TikTok init); made
once a full bucket would have drained (10 s for the inits, half a minute for status checks), they
start empty, as the account's calls have been here since. Limiters it already holds are filled
too, as an account's partition can leave and come back. The replica that lost the partition may
still be handling a batch it had read from it, and the new owner does not count those calls: so
a request of a lost partition stops before its next capped call, and one waiting for a cap stops
waiting (`HandedOver`); the new owner reads it again. A call already under way finishes, as a
killed publisher's would be resumed. Instagram says what an
account has spent (its usage header pauses the account), and its bucket takes an hour to drain at
48 s a call: a full start would hold its burst back for an hour after each handover, so its
limiters always start empty (`usage_reported`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from contracts import Platform
from services.runtime import metrics


@dataclass(frozen=True)
class Cap:
    calls: int
    period: float  # seconds
    burst: int = 1  # calls that may go at once (see the module doc)

    def split(self, share: float) -> tuple["Cap", "Cap"]:
        """(what is kept, what is given): `share` of the calls and of the burst given away, at
        least one of each on both sides; the two never add up to more than this cap."""
        given = min(self.calls - 1, max(1, int(self.calls * share)))
        given_burst = min(given, max(1, int(self.burst * share)))
        kept = self.calls - given
        return (Cap(kept, self.period, max(1, min(kept, self.burst - given_burst))),
                Cap(given, self.period, given_burst))


ANY_ENDPOINT = "*"

# platforms.md §1.2 (TikTok, per user token, sliding minute) and §2.5 (Instagram: 200 calls per
# user per hour; the X-Business-Use-Case-Usage header stops calls earlier when it says so).
# YouTube publishes no per-minute figures: its limits are daily quota units.
PLATFORM_CAPS: dict[Platform, dict[str, Cap]] = {
    Platform.TIKTOK: {
        "creator_info": Cap(20, 60.0),
        "video_init": Cap(6, 60.0),
        "inbox_init": Cap(6, 60.0),
        "content_init": Cap(6, 60.0),
        "status_fetch": Cap(30, 60.0, burst=10),  # a post is checked many times while it processes
    },
    Platform.INSTAGRAM: {ANY_ENDPOINT: Cap(200, 3600.0, burst=100)},
    Platform.YOUTUBE: {},
}

# Platforms whose replies say how much of an account's budget is spent (see the module doc).
USAGE_REPORTED = frozenset({Platform.INSTAGRAM})

# The poller's part of the caps it shares with the publisher. On TikTok it makes nearly every
# status check (the publisher checks only to resume an upload); on Instagram it makes few calls
# (a status check when a container outlasts the publisher's wait, insights and followers a few
# times in a post's life), while a carousel's publish makes twenty or more. Endpoints that only
# one of them calls keep the whole cap.
POLLER_SHARES: dict[Platform, dict[str, float]] = {
    Platform.TIKTOK: {"status_fetch": 0.8},
    Platform.INSTAGRAM: {ANY_ENDPOINT: 0.25},
}


# Calls that leave exactly on the cap arrive at the platform a few ms closer together now and
# then (measured: 495 ms apart for a 500 ms spacing), which makes n+1 in some window: keep 2 % spare.
SAFETY_MARGIN = 0.02


def hard_cap(cap: Cap) -> AsyncLimiter:
    """A limiter that never passes more than `cap.calls` in any window of `cap.period`: its
    burst, then `cap.calls - burst + 1` per period (and the margin)."""
    burst = min(max(1, cap.burst), cap.calls)
    return AsyncLimiter(burst, burst * cap.period * (1 + SAFETY_MARGIN) / (cap.calls - burst + 1))


def _limiter_time() -> float:
    """aiolimiter's clock: the running loop's (the same monotonic clock outside one)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def fill(limiter: AsyncLimiter, ago: float = 0.0) -> None:
    """Make the bucket as if full `ago` seconds ago and leaking since: filled now, its next call
    waits one interval, as right after a burst."""
    level = limiter.max_rate - ago * limiter.max_rate / limiter.time_period
    if level > 0:
        # aiolimiter leaks from `_last_check` on: left at its start (0) it would drain at once
        limiter._level, limiter._last_check = level, _limiter_time()


def idle(limiter: AsyncLimiter) -> bool:
    """Nobody waits on it and its bucket has been empty for an interval: a new limiter would act
    the same. (A waiter just woken has left `_waiters` but not yet added to the level.)"""
    rate = limiter.max_rate / limiter.time_period
    level = limiter._level - (_limiter_time() - limiter._last_check) * rate
    return not limiter._waiters and level <= -1


class HandedOver(BaseException):
    """The partition of the request being handled went to another replica: stop before the next
    capped call (see the module doc). A BaseException, as cancellation is: nothing between the
    cap and the handler may take it for the request's failure; the handler drops the request,
    its record is the new owner's to read."""

    def __init__(self, partition: int):
        super().__init__(f"partition {partition} went to another replica")
        self.partition = partition


# The partition of the request whose calls the current task makes (`serving`): the limits of the
# topic it was read from tell whether it is still this replica's.
_SERVING: ContextVar[int | None] = ContextVar("autopost_serving_partition", default=None)


@contextmanager
def serving(partition: int) -> Iterator[None]:
    """Make the calls within it for a request read from `partition`."""
    token = _SERVING.set(partition)
    try:
        yield
    finally:
        _SERVING.reset(token)


class EndpointLimits:
    """One limiter per (account, endpoint); an account can also be paused when the platform
    says its budget is spent (Instagram's usage header)."""

    def __init__(self, caps: Mapping[str, Cap], *, platform: str = "", max_entries: int = 100_000,
                 usage_reported: bool = False, clock: Callable[[], float] = time.monotonic):
        self.caps = dict(caps)
        self.platform = platform  # the label of the rate-limit wait metric
        self.max_entries = max_entries
        self.usage_reported = usage_reported
        self._clock = clock
        self.handover_at: float | None = None  # when this process last took on accounts
        self._limiters: OrderedDict[tuple[str, str], AsyncLimiter] = OrderedDict()
        self._paused_until: dict[str, float] = {}
        self._lost: set[int] = set()  # partitions another replica took, not given back since
        self._waiting: dict[asyncio.Task, int] = {}  # tasks waiting for a cap, by partition served
        self._stopped: set[asyncio.Task] = set()  # of those, the ones cancelled by a handover

    @classmethod
    def for_platform(cls, platform: Platform, override: Cap | None = None, *,
                     poller: bool = False) -> "EndpointLimits":
        """The publisher's part of the platform's caps, or the poller's with `poller`;
        `override` puts one cap on each of its endpoints instead, whole."""
        platform = Platform(platform)
        caps = PLATFORM_CAPS[platform]
        if override is not None:
            caps = {name: override for name in caps} or {ANY_ENDPOINT: override}
        else:
            shares = POLLER_SHARES.get(platform, {})
            caps = {name: cap.split(shares[name])[poller] if name in shares else cap
                    for name, cap in caps.items()}
        return cls(caps, platform=platform.value, usage_reported=platform in USAGE_REPORTED)

    def slot(self, account_id: str, endpoint: str) -> AbstractAsyncContextManager[None]:
        """`async with limits.slot(account, endpoint):` around one call; waits for the cap (the
        wait is measured: autopost_rate_limit_wait_seconds)."""
        limiter = self.limiter(account_id, endpoint)
        return nullcontext() if limiter is None else self._slot(limiter, _SERVING.get())

    @asynccontextmanager
    async def _slot(self, limiter: AsyncLimiter, partition: int | None) -> AsyncIterator[None]:
        started = time.perf_counter()
        if partition is None:
            await limiter.acquire()
        else:
            await self._acquire_while_held(limiter, partition)
        metrics.RATE_LIMIT_WAIT.labels(self.platform).observe(time.perf_counter() - started)
        yield

    async def _acquire_while_held(self, limiter: AsyncLimiter, partition: int) -> None:
        if partition in self._lost:
            raise HandedOver(partition)
        task = asyncio.current_task()
        assert task is not None
        self._waiting[task] = partition
        try:
            await limiter.acquire()
        except asyncio.CancelledError:
            if task not in self._stopped:
                raise
            task.uncancel()  # the cancellation was ours: nobody else asked this task to stop
            raise HandedOver(partition) from None
        finally:
            del self._waiting[task]
            self._stopped.discard(task)

    def handed_over(self, partition: int) -> bool:
        """The partition went to another replica: its requests are no longer this one's."""
        return partition in self._lost

    def lost_partitions(self, partitions: Iterable[int]) -> None:
        """Another replica has these partitions now (a service calls it on each rebalance that
        takes some away): their requests stop waiting for caps, and make no capped call."""
        lost = set(partitions)
        self._lost |= lost
        for task, partition in list(self._waiting.items()):
            if partition in lost and task not in self._stopped:
                self._stopped.add(task)
                task.cancel()

    def limiter(self, account_id: str, endpoint: str) -> AsyncLimiter | None:
        """The one limiter an account's calls to `endpoint` share; None when it has no cap."""
        name = endpoint if endpoint in self.caps else ANY_ENDPOINT
        cap = self.caps.get(name)
        if cap is None:
            return None
        key = (account_id, name)
        limiter = self._limiters.get(key)
        if limiter is None:
            self._drop_idle()
            limiter = self._limiters[key] = self._new_limiter(cap)
        else:
            self._limiters.move_to_end(key)  # least recently used first
        return limiter

    def took_on_partitions(self, partitions: Iterable[int] = ()) -> None:
        """This process has just taken on accounts another may have been calling (a service
        calls it on each assignment that adds partitions): their caps count as spent then (see
        the module doc). Before the first, a process gets no requests: nothing counts as spent."""
        self._lost.difference_update(partitions)
        if self.usage_reported:
            return
        self.handover_at = self._clock()
        for limiter in self._limiters.values():  # an account can come back to a stale limiter
            fill(limiter)

    def _new_limiter(self, cap: Cap) -> AsyncLimiter:
        """As full as the account's bucket can still be from before the last handover."""
        limiter = hard_cap(cap)
        if self.handover_at is not None:
            fill(limiter, ago=self._clock() - self.handover_at)
        return limiter

    def _drop_idle(self) -> None:
        """Make room for one more, least recently used first, but only by dropping idle limiters:
        a new one in place of a busy one would let a whole burst through. Until the first in line
        is idle there are more than `max_entries` (a bucket drains within its `time_period`)."""
        while self._limiters and len(self._limiters) >= self.max_entries:
            key, limiter = next(iter(self._limiters.items()))
            if not idle(limiter):
                return
            del self._limiters[key]

    def pause(self, account_id: str, seconds: float) -> None:
        until = self._clock() + seconds
        if until > self._paused_until.get(account_id, 0.0):
            self._paused_until[account_id] = until

    def paused_for(self, account_id: str) -> float:
        """Seconds until calls for this account may go again (0 when not paused)."""
        until = self._paused_until.get(account_id)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._paused_until[account_id]
            return 0.0
        return left


def no_limits() -> EndpointLimits:
    return EndpointLimits({})
