"""`ConsumerWatch.running` on FastStream's structure: a consume task that raises is replaced by
a new one, appended to `subscriber.tasks` beside the dead one; `stop` empties the list."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faststream._internal.endpoint.subscriber.mixins import TasksMixin

from services.runtime._broker import ConsumerWatch


class Subscriber:
    """FastStream's `TasksMixin` (its own `add_task`, with the real restarting supervisor)."""

    add_task = TasksMixin.add_task

    def __init__(self, loop):
        self.tasks: list[asyncio.Task] = []
        self.loop, self.ended = loop, asyncio.Event()
        self._outer_config = SimpleNamespace(logger=SimpleNamespace(log=lambda *a, **k: None))

    def start(self):
        self.add_task(self.loop)

    async def stop(self):  # as TasksMixin.stop
        for task in self.tasks:
            if not task.done():
                task.cancel()
        self.tasks.clear()


async def settle():
    for _ in range(5):  # the task ends, then its done callback (the supervisor) runs
        await asyncio.sleep(0)


async def test_a_consume_task_restarted_after_an_error_is_running():
    failures = iter([RuntimeError("the consume loop broke")])

    async def loop():
        if (failure := next(failures, None)) is not None:
            raise failure
        await asyncio.Event().wait()

    subscriber = Subscriber(loop)
    watch = ConsumerWatch("g", ["t"], subscriber)
    assert not watch.running  # not started
    subscriber.start()
    await settle()
    dead, live = subscriber.tasks  # FastStream keeps the dead task beside its replacement
    assert dead.done() and not live.done()
    assert watch.running
    await subscriber.stop()
    assert not watch.running


async def test_a_consume_task_that_ended_is_not_running():
    async def loop():
        return  # ConsumerStoppedError: the loop returns, and nothing restarts it

    subscriber = Subscriber(loop)
    subscriber.start()
    await settle()
    assert len(subscriber.tasks) == 1 and subscriber.tasks[0].done()
    assert not ConsumerWatch("g", ["t"], subscriber).running


async def test_a_subscriber_without_tasks_is_not_running():
    assert not ConsumerWatch("g", ["t"], SimpleNamespace()).running
    assert not ConsumerWatch("g", ["t"], SimpleNamespace(tasks=[])).running
