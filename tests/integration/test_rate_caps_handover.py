"""The publisher and the poller count their accounts' caps as spent when a rebalance hands them
partitions (limits.py): the rebalance hook of `subscribe_batches`, through FastStream."""

import asyncio
from contextlib import AsyncExitStack

import pytest

from contracts import Platform, Topics
from services.publishers.limits import EndpointLimits
from harness import Pipeline, settings_for

pytestmark = pytest.mark.integration


async def test_each_service_takes_its_caps_as_spent_once_its_partitions_are_assigned(
    kafka_bootstrap, topic_prefix, database_url, monkeypatch
):
    handovers: list[EndpointLimits] = []
    took_on = EndpointLimits.took_on_partitions

    def noted(limits: EndpointLimits, partitions=()) -> None:
        handovers.append(limits)
        took_on(limits, partitions)

    monkeypatch.setattr(EndpointLimits, "took_on_partitions", noted)
    async with AsyncExitStack() as stack:
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
        pipeline = await stack.enter_async_context(Pipeline(settings, ["publisher-tiktok", "poller"]))
        publisher, poller = pipeline.service("publisher-tiktok"), pipeline.service("poller")
        assert set(publisher.limits) == {topic_prefix + Topics.publish_requested(Platform.TIKTOK)}
        assert set(poller.limits) == {topic_prefix + Topics.status_requested(p) for p in Platform}
        every = [*publisher.limits.values(), *poller.limits.values()]
        for _ in range(200):  # the group's first assignment, a moment after the broker starts
            if all(handovers.count(limits) >= 1 for limits in every):
                break
            await asyncio.sleep(0.05)
        # each service is one consumer of its group: it takes on every partition, once
        assert [handovers.count(limits) for limits in every] == [1] * len(every)
