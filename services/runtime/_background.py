"""A service's long-running task (dispatcher, outbox relay, housekeeping, deliveries): started
once the broker runs, cancelled before it stops, and seen by liveness while it lives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import ClassVar


class Background:
    task_name: ClassVar[str]
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def alive(self) -> bool:
        """Started and not ended: these tasks end only when stopped, or by a bug."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        raise NotImplementedError


def task_alive(task_of: Callable[[], Background | None]) -> Callable[[], Awaitable[bool]]:
    """A /livez check for a service's background task (`task_of`: it exists once set up)."""

    async def alive() -> bool:
        task = task_of()
        return task is not None and task.alive

    return alive
