"""The dispatcher's health: rounds that keep failing make the queue unready (a restart mends
neither bad rows nor a database away), a round that never returns fails liveness (only a
restart mends that), and rounds that complete, even with nothing due, keep it ready."""

import asyncio
from types import SimpleNamespace

import pytest

from services.queue import dispatcher as dispatcher_module
from services.queue.app import QueueService
from services.queue.dispatcher import Dispatcher
from services.queue.operations import DispatchRound
from services.runtime import QueueSettings, ServiceContext, Settings

STALL = 0.3


class Ops:
    """QueueOperations as the dispatcher sees it, its rounds played by `round`."""

    def __init__(self, round):
        self.settings = QueueSettings(max_idle_wait_seconds=0.05)
        self.held_back = []
        self.round = round
        self.rounds = 0

    async def get_next_batch(self, limit):
        self.rounds += 1
        return await self.round(self)


@pytest.fixture(autouse=True)
def no_database(monkeypatch):
    async def listen(self):
        self._listener = SimpleNamespace(is_closed=lambda: False, close=_nothing)

    async def next_due(self):
        return 0.02

    monkeypatch.setattr(Dispatcher, "_listen", listen)
    monkeypatch.setattr(Dispatcher, "_time_to_next_due", next_due, raising=False)
    monkeypatch.setattr(dispatcher_module, "ERROR_PAUSE_SECONDS", 0.01)


async def _nothing():
    return None


async def _running(round) -> Dispatcher:
    dispatcher = Dispatcher(Ops(round), "postgresql://unused", asyncio.Event(), stall_seconds=STALL)
    await dispatcher.start()
    return dispatcher


async def test_rounds_that_keep_failing_make_it_unready_and_say_why_but_leave_it_live():
    async def bad_row(ops):
        raise ValueError("1 validation error for PostContent")

    dispatcher = await _running(bad_row)
    try:
        assert dispatcher.progressing()[0] is True, "its start counts as progress"
        await asyncio.sleep(STALL + 0.2)
        ok, detail = dispatcher.progressing()
        assert ok is False and dispatcher.ops.rounds > 3
        assert detail["last_error"] == "ValueError: 1 validation error for PostContent"
        assert detail["failing_for_seconds"] >= STALL and detail["last_round_seconds_ago"] > STALL
        assert dispatcher.wedged() is None, "it still loops: a restart would not mend bad data"
    finally:
        await dispatcher.stop()


async def test_it_is_ready_again_once_a_round_completes():
    database_back = asyncio.Event()

    async def fails_until_the_database_is_back(ops):
        if not database_back.is_set():
            raise OSError("connection refused")
        return DispatchRound(0, False)

    dispatcher = await _running(fails_until_the_database_is_back)
    try:
        await asyncio.sleep(STALL + 0.2)
        assert dispatcher.progressing()[0] is False
        database_back.set()
        await asyncio.sleep(0.1)
        ok, detail = dispatcher.progressing()
        assert ok is True and "last_error" not in detail
    finally:
        await dispatcher.stop()


async def test_rounds_with_nothing_due_keep_it_ready():
    async def nothing_due(ops):
        return DispatchRound(0, False)

    dispatcher = await _running(nothing_due)
    try:
        await asyncio.sleep(STALL * 2)
        assert dispatcher.progressing()[0] is True and dispatcher.wedged() is None
        assert dispatcher.ops.rounds > 3
    finally:
        await dispatcher.stop()


async def test_a_round_that_never_returns_fails_liveness_and_readiness():
    async def hangs(ops):
        await asyncio.Event().wait()  # waiting on a pool whose connections never come back

    dispatcher = await _running(hangs)
    try:
        await asyncio.sleep(0.05)
        assert dispatcher.wedged() is None
        await asyncio.sleep(STALL)
        assert "has not returned" in dispatcher.wedged()
        ok, detail = dispatcher.progressing()
        assert ok is False and detail["round_running_seconds"] > STALL
    finally:
        await asyncio.wait_for(dispatcher.stop(), 5)
    assert dispatcher.wedged() == "not running" and dispatcher.progressing()[0] is False


def test_the_stall_is_never_shorter_than_twice_an_idle_wait():
    ops = Ops(None)
    ops.settings = QueueSettings(max_idle_wait_seconds=30)
    assert Dispatcher(ops, "", asyncio.Event(), stall_seconds=5).stall_seconds == 60


async def test_the_queue_reports_its_dispatcher_in_readiness_and_liveness():
    async def bad_row(ops):
        raise ValueError("unreadable")

    service = QueueService(ServiceContext("queue", Settings()))
    assert await service.readiness_checks()["dispatcher"]() is False, "not set up yet"
    assert await service.liveness_checks()["dispatcher"]() is False
    service.dispatcher = await _running(bad_row)
    try:
        assert (await service.readiness_checks()["dispatcher"]())[0] is True
        await asyncio.sleep(STALL + 0.2)
        ok, detail = await service.readiness_checks()["dispatcher"]()
        assert ok is False and detail["last_error"] == "ValueError: unreadable"
        assert await service.liveness_checks()["dispatcher"]() is True
    finally:
        await service.dispatcher.stop()
    assert await service.liveness_checks()["dispatcher"]() == (False, "not running")
