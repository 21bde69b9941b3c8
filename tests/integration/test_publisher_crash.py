"""Publishers killed (SIGKILL) in the middle of an upload resume it after a restart: one upload
session per target on the platform, one post per target, nothing posted twice."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from contracts import Topics
from services.devstack.demo import outcomes, submit_traced
from services.devstack.stack import DevStack, StackOptions

pytestmark = pytest.mark.integration

UPLOADERS = ("tiktok", "youtube")
MEDIA_BYTES = 25_000_000  # TikTok: 2 chunks of 10 MB (the last takes the rest); YouTube: 3 of 8 MiB


async def test_publishers_killed_mid_upload_resume_and_post_each_target_once():
    options = StackOptions(processing_seconds=0.2, env={
        "AUTOPOST_LEASE_SECONDS": "8",
        "AUTOPOST_PUBLISH_CLAIM_SECONDS": "3",
        "AUTOPOST_TIKTOK_PULL_PREFIXES": "",  # nothing verified for pulls: TikTok gets chunks too
    }, services=("planner", "queue", "publisher-tiktok", "publisher-youtube", "poller"))
    async with DevStack(options) as stack, httpx.AsyncClient(base_url=stack.sandbox_url, timeout=10) as http:
        await stack.connect_accounts([(p, f"crash-{p}") for p in UPLOADERS])
        # every chunk answers 1.5 s late: slow enough to be killed in the middle
        reply = await http.post("/_sandbox/faults", json={"kind": "timeout", "operation": "upload",
                                                          "waitSeconds": 1.5})
        assert reply.status_code == 201
        event = {
            "upstreamId": "crash-mid-upload",
            "targets": [{"platform": p, "accountId": f"crash-{p}"} for p in UPLOADERS],
            "media": [{"url": f"{stack.sandbox_url}/media/big.mp4?bytes={MEDIA_BYTES}", "mimeType": "video/mp4"}],
            "caption": "killed mid-upload",
            "contentType": "video",
            "schedule": {"mode": "at", "scheduledTime": (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()},
        }
        await submit_traced(stack.bootstrap, Topics.CONTENT_SUBMITTED, [event])

        killed: dict[str, dict] = {}
        deadline = time.monotonic() + 60
        while len(killed) < len(UPLOADERS):
            assert time.monotonic() < deadline, f"no upload got under way: {killed}"
            stats = (await http.get("/_sandbox/stats")).json()
            for platform in UPLOADERS:
                if platform not in killed and stats[platform]["uploadingBytes"] > 0:
                    stack.group.kill(f"publisher-{platform}")  # part of the bytes are up, not all
                    killed[platform] = stats[platform]
            await asyncio.sleep(0.05)
        for platform in UPLOADERS:
            await stack.group.restart(f"publisher-{platform}")
        await asyncio.gather(*(stack.wait_ready(f"publisher-{p}") for p in UPLOADERS))

        deadline = time.monotonic() + 90
        while True:
            results = await outcomes(stack.database_url, ["crash-mid-upload"])
            if len(results) == len(UPLOADERS) and all(t.status == "posted" for t in results):
                break
            assert time.monotonic() < deadline, [(t.platform, t.status) for t in results]
            await asyncio.sleep(0.5)
        stats = (await http.get("/_sandbox/stats")).json()
        published = (await http.get("/_sandbox/published")).json()

    for platform in UPLOADERS:
        assert killed[platform]["published"] == 0 and 0 < killed[platform]["uploadingBytes"] < MEDIA_BYTES
        assert stats[platform]["created"] == 1, f"{platform}: the upload was resumed, not made again"
        assert stats[platform]["published"] == 1
    assert stats["duplicates"] == 0
    assert sorted(p["platform"] for p in published) == sorted(UPLOADERS)
    assert all(t.url for t in results)
