"""Killing the queue service (SIGKILL) in the middle of a run and starting it again loses no post."""

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from contracts import Platform, Topics
from services.devstack.demo import outcomes, submit_traced
from services.devstack.stack import DevStack, StackOptions

pytestmark = pytest.mark.integration

POSTS = 30


async def test_queue_killed_mid_run_loses_nothing():
    async with DevStack(StackOptions(processing_seconds=0.2)) as stack:
        await stack.connect_accounts([(p, f"acct-{i}-{p.value}") for i in range(POSTS) for p in Platform])
        start = datetime.now(timezone.utc)
        events = [
            {
                "upstreamId": f"restart-{i}",
                "targets": [{"platform": p.value, "accountId": f"acct-{i}-{p.value}"} for p in Platform],
                "media": [{"url": f"{stack.sandbox_url}/media/r{i}.mp4?bytes=300000"}],
                "caption": f"restart test {i}",
                "contentType": "video",
                "schedule": {"mode": "at", "scheduledTime": (start + timedelta(seconds=2 + i * 0.2)).isoformat()},
            }
            for i in range(POSTS)
        ]
        await submit_traced(stack.bootstrap, Topics.CONTENT_SUBMITTED, events)
        ids = [e["upstreamId"] for e in events]

        await asyncio.sleep(4)  # mid-run: some posted, some publishing, some not yet due
        before = Counter(t.status for t in await outcomes(stack.database_url, ids))
        stack.group.kill("queue")
        await asyncio.sleep(1.5)  # publishers and poller keep answering into Kafka meanwhile
        await stack.group.restart("queue")
        await stack.wait_ready("queue")

        deadline = asyncio.get_running_loop().time() + 60
        while True:
            results = await outcomes(stack.database_url, ids)
            if len(results) == POSTS * 3 and all(t.status == "posted" for t in results):
                break
            assert asyncio.get_running_loop().time() < deadline, Counter(t.status for t in results)
            await asyncio.sleep(0.5)
        async with httpx.AsyncClient() as http:
            published = (await http.get(f"{stack.sandbox_url}/_sandbox/published")).json()

    assert before["posted"] < POSTS * 3, f"the kill came after the run had finished: {before}"
    assert all(t.url for t in results)
    on_platforms = Counter((p["platform"], p["accountId"]) for p in published)
    expected = {(p.value, f"acct-{i}-{p.value}") for i in range(POSTS) for p in Platform}
    assert set(on_platforms) == expected, "every target reached its platform"
