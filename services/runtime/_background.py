"""A service's long-running task (dispatcher, outbox relay, housekeeping, deliveries): started
once the broker runs, cancelled before it stops, and seen by liveness while it lives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import ClassVar


# how long a stop waits for the task to end before it asks again
_CANCEL_AGAIN_SECONDS = 1.0


class Background:
    task_name: ClassVar[str]
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)

    @property
    def alive(self) -> bool:
        """Started and not ended: these tasks end only when stopped, or by a bug."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        raise NotImplementedError


async def stop_task(task: asyncio.Task) -> None:
    """Cancel `task` and wait for it to end, asking again while it has not: a cancellation a
    library swallows (as asyncio.wait_for can on Python 3.11) must not leave a stop waiting on a
    loop that went on."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_CANCEL_AGAIN_SECONDS)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` was set within `seconds`. A cancellation that arrives as the event is
    set is raised: asyncio.wait_for on Python 3.11 returns instead, and swallows it."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def task_alive(task_of: Callable[[], Background | None]) -> Callable[[], Awaitable[bool]]:
    """A /livez check for a service's background task (`task_of`: it exists once set up)."""

    async def alive() -> bool:
        task = task_of()
        return task is not None and task.alive

    return alive
