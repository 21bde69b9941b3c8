"""The rebalance hook of `subscribe_batches`: told only the partitions an assignment adds."""

from __future__ import annotations

from aiokafka import TopicPartition

from services.runtime._broker import NewPartitions


def test_each_assignment_reports_what_this_consumer_did_not_hold():
    told = []
    listener = NewPartitions(told.append)
    p0, p1, p2 = (TopicPartition("requests", p) for p in range(3))
    listener.on_partitions_assigned({p0, p1})
    listener.on_partitions_revoked({p0, p1})  # a rebalance revokes all, then assigns again
    listener.on_partitions_assigned({p0, p1})  # the same again: nothing taken on
    listener.on_partitions_assigned({p1, p2})
    listener.on_partitions_assigned({p0})  # p0 was away, someone else's for a while
    assert told == [{p0, p1}, {p2}, {p0}]
