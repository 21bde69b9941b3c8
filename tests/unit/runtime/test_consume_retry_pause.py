"""A batch that keeps failing is read again after pauses that double up to a cap, with jitter; a
completed batch starts them again from the shortest; a consumer failing for `stall_seconds` is
stalled; and a stop ends the pause at once, the batch left uncommitted."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaConnectionError

from services.runtime import _broker
from services.runtime._broker import ConsumerWatch, _retry_pause
from services.runtime._settings import KafkaSettings


def test_pauses_double_from_the_base_up_to_the_cap_with_full_jitter(monkeypatch):
    monkeypatch.setattr(_broker, "INFRA_RETRY_SECONDS", 2.0)
    monkeypatch.setattr(_broker, "RETRY_CAP_SECONDS", 30.0)
    rng = random.Random(7)
    for retries, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (40, 30.0), (10_000, 30.0)]:
        pauses = [_retry_pause(retries, rng) for _ in range(400)]
        assert all(0 <= p <= ceiling for p in pauses)
        assert max(pauses) > 0.9 * ceiling and min(pauses) < 0.1 * ceiling  # spread: jitter


class Subscriber:
    """What `subscribe_batches` uses of FastStream's subscriber: it decorates the wrapper."""

    def __init__(self):
        self.running, self.consume, self.tasks = True, None, []

    def __call__(self, func):
        self.consume = func
        return func


class Broker:
    def __init__(self):
        self.subscribers: list[Subscriber] = []

    def subscriber(self, *topics, **options):
        self.subscribers.append(Subscriber())
        return self.subscribers[-1]


def raw(offset: int, value: bytes = b"v"):
    return SimpleNamespace(topic="t", partition=0, offset=offset, key=b"k", value=value, headers=[])


def subscribed(handler):
    broker = Broker()
    watch = _broker.subscribe_batches(broker, KafkaSettings(), topics=["t"], group_id="g", handler=handler)
    [subscriber] = broker.subscribers
    return watch, subscriber


@pytest.fixture
def pauses(monkeypatch):
    """The pauses asked for, each taken as no time."""
    asked: list[tuple[int, float]] = []

    def pause(retries, rng=None):
        asked.append((retries, 0.0))
        return 0.0

    monkeypatch.setattr(_broker, "_retry_pause", pause)
    return asked


async def test_failures_in_a_row_pause_longer_and_a_completed_batch_resets(pauses):
    outage = {"left": 3}

    async def handler(records):
        if outage["left"]:
            outage["left"] -= 1
            raise KafkaConnectionError("the broker is unreachable")

    watch, subscriber = subscribed(handler)
    message = SimpleNamespace(raw_message=(raw(0), raw(1)))
    for _ in range(3):
        with pytest.raises(KafkaConnectionError):  # raised: FastStream rewinds the batch, uncommitted
            await subscriber.consume(message)
    assert [r for r, _ in pauses] == [1, 2, 3] and watch.retries == 3 and watch.failing_since is not None
    assert watch.batch_started is None and watch.batches == 0
    await subscriber.consume(message)
    assert watch.retries == 0 and watch.failing_since is None and watch.batches == 1
    with pytest.raises(KafkaConnectionError):
        outage["left"] = 1
        await subscriber.consume(message)
    assert pauses[-1][0] == 1  # from the shortest again


async def test_a_dead_letter_that_cannot_be_sent_pauses_before_the_batch_is_read_again(pauses, monkeypatch):
    async def handler(records):
        raise ValueError("cannot handle this one")

    async def publish_all(broker, letters):
        raise RuntimeError("the dead-letter topic is refused")

    monkeypatch.setattr(_broker, "publish_all", publish_all)
    watch, subscriber = subscribed(handler)
    for _ in range(2):
        with pytest.raises(RuntimeError):  # never committed, so no record is dropped
            await subscriber.consume(SimpleNamespace(raw_message=(raw(0, b"poison"),)))
    assert [r for r, _ in pauses] == [1, 2] and watch.retries == 2


async def test_a_stop_ends_the_pause_at_once(monkeypatch):
    monkeypatch.setattr(_broker, "_retry_pause", lambda retries, rng=None: 60.0)
    watch = ConsumerWatch("g", ["t"], None)
    subscriber = SimpleNamespace(running=True)
    pause = asyncio.create_task(_broker._back_off(watch, subscriber, KafkaConnectionError("down")))
    await asyncio.sleep(0.05)
    assert not pause.done()
    started = time.monotonic()
    subscriber.running = False  # FastStream's stop: then it waits for the handler
    await asyncio.wait_for(pause, 2)
    assert time.monotonic() - started < 1


class Consumer:
    """Caught up: nothing waiting, as while the failed batch is held (fetched, not rewound yet)."""

    def assignment(self):
        return ["tp"]

    def highwater(self, tp):
        return 10

    async def position(self, tp):
        return 10


async def test_a_consumer_failing_for_stall_seconds_is_stalled_though_nothing_is_waiting(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(_broker.time, "monotonic", lambda: clock[0])
    watch = ConsumerWatch("g", ["t"], SimpleNamespace(consumer=Consumer()))
    watch.retries, watch.failing_since = 4, clock[0]
    watch.batch_started = clock[0]
    clock[0] += 50
    state = await watch.check(stall_seconds=60)
    assert not state["stalled"] and state["retries"] == 4
    clock[0] += 20
    watch.batch_started = clock[0]  # each read again is a batch of its own: not long by itself
    assert (await watch.check(stall_seconds=60))["stalled"]
    watch.retries, watch.failing_since = 0, None  # a batch completed
    watch.batch_started = None
    assert not (await watch.check(stall_seconds=60))["stalled"]
