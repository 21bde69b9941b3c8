"""Calls made at about the same moment become one: the records of one batch, one query."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalesced(Generic[T, R]):
    """Calls made at about the same moment (the records of one batch) become one query."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], wait: float = 0.002):
        self.run, self.wait = run, wait
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushes: set[asyncio.Task] = set()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            loop.call_later(self.wait, self._start_flush)
        self._pending.append((item, future))
        return await future

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = await self.run([item for item, _ in batch])
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)


__all__ = ["Coalesced"]
