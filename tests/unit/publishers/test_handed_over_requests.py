"""A publisher that loses a partition mid-batch drops that partition's requests before their next
capped call, and answers nothing for them: the new owner reads them again (limits.py)."""

from __future__ import annotations

import asyncio
import uuid

from contracts import PublishOutcome, PublishRequested, PublishResult, RemoteHandle
from services.publishers.handles import MemoryJournals
from services.publishers.handlers import PublishHandlers
from services.publishers.limits import ANY_ENDPOINT, Cap, EndpointLimits
from services.publishers.platforms import Published
from services.runtime import Record, ServiceContext, Settings
from test_publish_result_ids import REQUEST


class OneCallAMinute:
    """A platform client whose every publish is one capped call."""

    def __init__(self):
        self.limits = EndpointLimits({ANY_ENDPOINT: Cap(1, 60.0)})
        self.called: list[uuid.UUID] = []

    async def publish(self, request: PublishRequested, token: str, journal) -> Published:
        async with self.limits.slot(request.account_id, "publish"):
            self.called.append(request.target_id)
        return Published(RemoteHandle(kind="youtube.video", id=str(request.target_id)), "https://youtu.be/x")


class Through:
    """No rules, token or quotas in the way."""

    async def publish(self, request, send):
        return await send(request, "token")


def record(partition: int, account: str, offset: int) -> tuple[Record, uuid.UUID]:
    request = REQUEST.model_copy(update={"message_id": uuid.uuid4(), "target_id": uuid.uuid4(),
                                         "account_id": account, "attempt": 1})
    return Record("publish.requested.youtube", partition, offset, account.encode(), request.to_bytes(), {}), \
        request.target_id


async def test_the_requests_of_a_lost_partition_stop_before_their_call_and_get_no_answer():
    ctx = ServiceContext("publisher-youtube", Settings())
    sent: list = []

    async def send(messages):
        sent.extend(messages)

    ctx.send = send
    client = OneCallAMinute()
    handlers = PublishHandlers(ctx, client, Through(), MemoryJournals())
    lost = [record(0, "moved", offset) for offset in range(3)]  # one account's backlog
    kept = [record(1, "stays", 0)]
    batch = asyncio.create_task(handlers.requested([r for r, _ in lost + kept]))
    await asyncio.sleep(0.2)  # each account's first call went; "moved" waits a minute for its next
    assert client.called == [lost[0][1], kept[0][1]]
    client.limits.lost_partitions({0})
    await asyncio.wait({batch}, timeout=2.0)
    assert batch.done() and batch.exception() is None, "the batch ends at once"
    results = [PublishResult.from_bytes(m.value) for m in sent]
    assert {(r.target_id, r.outcome) for r in results} == {(lost[0][1], PublishOutcome.PUBLISHED),
                                                           (kept[0][1], PublishOutcome.PUBLISHED)}
    assert client.called == [lost[0][1], kept[0][1]], "no call for the requests handed over"
