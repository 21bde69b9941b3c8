"""The consumer watch rewinds a partition whose log ends before its position only when the log
stays so: a new leader's high watermark may be behind for a moment (Apache Kafka)."""

from types import SimpleNamespace

from aiokafka import TopicPartition

from services.runtime import _broker
from services.runtime._broker import REWIND_AFTER_SECONDS, ConsumerWatch


class Consumer:
    def __init__(self, position: int, highwater: int):
        self.tp, self.at, self.end, self.rewound = TopicPartition("t", 0), position, highwater, 0

    def assignment(self):
        return [self.tp]

    def highwater(self, tp):
        return self.end

    async def position(self, tp):
        return self.at

    async def seek_to_beginning(self, tp):
        self.rewound += 1


async def test_a_log_behind_for_a_moment_is_not_read_again_from_its_start(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(_broker.time, "monotonic", lambda: clock[0])
    consumer = Consumer(position=1000, highwater=997)  # a new leader, not caught up yet
    watch = ConsumerWatch("g", ["t"], SimpleNamespace(consumer=consumer))
    await watch.waiting_records()
    clock[0] += 5
    consumer.end = 1000  # caught up
    assert await watch.waiting_records() == (1, 0)
    consumer.end = 997  # behind again later: a new observation, counted from now
    clock[0] += REWIND_AFTER_SECONDS
    await watch.waiting_records()
    assert consumer.rewound == 0


async def test_a_log_that_stays_behind_was_recreated_and_is_read_from_its_start(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(_broker.time, "monotonic", lambda: clock[0])
    consumer = Consumer(position=1000, highwater=2)
    watch = ConsumerWatch("g", ["t"], SimpleNamespace(consumer=consumer))
    await watch.waiting_records()
    clock[0] += REWIND_AFTER_SECONDS / 2
    await watch.waiting_records()
    assert consumer.rewound == 0
    clock[0] += REWIND_AFTER_SECONDS / 2
    await watch.waiting_records()
    assert consumer.rewound == 1
