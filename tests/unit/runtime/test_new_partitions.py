"""The rebalance hook of `subscribe_batches`: told only the partitions an assignment adds, and
all it assigns after this consumer was out of the group (another member held them meanwhile)."""

from __future__ import annotations

from aiokafka import TopicPartition

from services.runtime._broker import NewPartitions

P0, P1, P2 = (TopicPartition("requests", p) for p in range(3))
SESSION = 10.0  # the session timeout, aiokafka's rebalance timeout


class Group:
    """What the listener reads of the consumer: the clock and the coordinator's generation."""

    def __init__(self):
        self.now, self.generation = 1000.0, -1
        self.told: list[set[TopicPartition]] = []
        self.listener = NewPartitions(self.told.append, rebalance_timeout=SESSION,
                                      generation=lambda: self.generation, clock=lambda: self.now)

    async def rebalance(self, assigned, *, generation=None, gap=1.0):
        """A revocation, then `gap` seconds later the assignment of `generation` (the next)."""
        await self.listener.on_partitions_revoked(self.listener.held)
        self.now += gap
        self.generation = self.generation + 1 if generation is None else generation
        await self.listener.on_partitions_assigned(assigned)


async def test_each_assignment_reports_what_this_consumer_did_not_hold():
    told = []
    listener = NewPartitions(told.append, rebalance_timeout=SESSION)  # no generation known
    await listener.on_partitions_assigned({P0, P1})
    await listener.on_partitions_revoked({P0, P1})  # a rebalance revokes all, then assigns again
    await listener.on_partitions_assigned({P0, P1})  # the same again: nothing taken on
    await listener.on_partitions_assigned({P1, P2})
    await listener.on_partitions_assigned({P0})  # p0 was away, someone else's for a while
    assert told == [{P0, P1}, {P2}, {P0}]


async def test_a_quick_rebalance_of_the_next_generation_reports_only_what_it_adds():
    group = Group()
    await group.rebalance({P0, P1, P2})
    await group.rebalance({P0, P1}, gap=SESSION)  # a member joined; the round waited for it
    await group.rebalance({P0, P1, P2})
    assert group.told == [{P0, P1, P2}, {P2}]


async def test_an_expelled_consumer_takes_on_all_it_gets_back():
    """Its session timed out: the others rebalanced without it (a generation it never saw) and
    one of them held its partitions; it learns so on a heartbeat, resets its generation, revokes
    and rejoins, and may get the same partitions back (aiokafka's group_coordinator)."""
    group = Group()
    await group.rebalance({P0, P1}, generation=4)
    group.now += 30
    group.generation = -1  # reset_generation(): the coordinator no longer knows the member
    await group.rebalance({P0, P1}, generation=5)  # even were it the next generation
    assert group.told == [{P0, P1}, {P0, P1}]


async def test_a_generation_missed_counts_all_as_new_though_the_revocation_came_early():
    """Its revocation came before it fell out (it joined too late for the round, or its sync
    failed): only the generation shows another ran without it."""
    group = Group()
    await group.rebalance({P0, P1}, generation=4)
    await group.rebalance({P0, P1}, generation=6)
    await group.rebalance({P0, P1}, generation=7)
    assert group.told == [{P0, P1}, {P0, P1}]


async def test_an_assignment_long_after_the_revocation_counts_all_as_new():
    """No round waits for a member longer than the rebalance timeout: one this late came after
    a round without it, whatever the generation says (or when it cannot be read)."""
    group = Group()
    group.listener.generation = lambda: None
    await group.rebalance({P0, P1})
    await group.rebalance({P0, P1}, gap=SESSION + 0.5)  # held past max.poll.interval, say
    await group.rebalance({P0, P1}, gap=SESSION)
    assert group.told == [{P0, P1}, {P0, P1}]


async def test_the_first_assignment_reports_all_and_an_empty_one_nothing():
    group = Group()
    await group.rebalance(set())
    await group.rebalance({P0})
    await group.rebalance(set())
    await group.rebalance({P0})
    assert group.told == [{P0}, {P0}]


class Losses(Group):
    """A Group whose listener also says what this consumer lost."""

    def __init__(self):
        super().__init__()
        self.lost: list[set[TopicPartition]] = []
        self.listener.on_lost = self.lost.append


async def test_a_rebalance_reports_what_it_took_away_and_only_that():
    group = Losses()
    await group.rebalance({P0, P1, P2})
    await group.rebalance({P0, P1, P2})  # every partition revoked and given back: nothing lost
    await group.rebalance({P0})  # a replica joined and took two
    await group.rebalance({P0, P2})
    assert group.lost == [{P1, P2}]


async def test_an_expelled_consumer_loses_all_it_held_as_soon_as_it_revokes():
    """Out of the group (its session or poll interval timed out), it revokes before it rejoins,
    while its batch may still be running: another member has had its partitions since."""
    group = Losses()
    await group.rebalance({P0, P1}, generation=4)
    group.generation = -1
    await group.listener.on_partitions_revoked({P0, P1})
    assert group.lost == [{P0, P1}]
    await group.listener.on_partitions_assigned({P1})  # rejoined: nothing more to lose
    assert group.lost == [{P0, P1}]
    assert group.told[-1] == {P1}  # and what it got back counts as taken on
