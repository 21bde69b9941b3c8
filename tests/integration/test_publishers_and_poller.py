"""Each publisher, and the poller, against the real broker and a sandbox over real HTTP."""

import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone

import pytest

from contracts import (
    ContentType,
    MediaRef,
    ObservedState,
    Platform,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    StatusObserved,
    StatusRequested,
    Topics,
)
from services.poller.handlers import PollHandlers
from harness import Pipeline, connect_accounts, produce, read_topic, serve_sandbox, settings_for

pytestmark = pytest.mark.integration


def request(platform: Platform, sandbox_url: str, account: str) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=account, attempt=1, content_type=ContentType.VIDEO, caption="integration",
        hashtags=["#it"], media=[MediaRef(url=f"{sandbox_url}/media/v.mp4?bytes=300000")],
        scheduled_time=datetime.now(timezone.utc),
    )


async def test_each_publisher_publishes_and_the_poller_follows_to_the_url(
    kafka_bootstrap, topic_prefix, database_url
):
    async with AsyncExitStack() as stack:
        sandbox_url = await serve_sandbox(stack, processing_seconds=0)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        await connect_accounts(settings, [(p, f"acct-{p.value}") for p in Platform])
        names = [f"publisher-{p.value}" for p in Platform] + ["poller"]
        await stack.enter_async_context(Pipeline(settings, names))

        requests = {p: request(p, sandbox_url, f"acct-{p.value}") for p in Platform}
        for platform, message in requests.items():
            await produce(kafka_bootstrap, topic_prefix + Topics.publish_requested(platform),
                          [message.to_bytes(), b"{not a request"], key=message.account_id.encode())
        results = [PublishResult.from_bytes(r.value)
                   for r in await read_topic(kafka_bootstrap, topic_prefix + Topics.PUBLISH_RESULT, 3)]
        assert {r.target_id for r in results} == {m.target_id for m in requests.values()}
        by_target = {m.target_id: m for m in requests.values()}
        outcomes = {by_target[r.target_id].platform: r.outcome for r in results}
        # Instagram's media is live once published: its permalink comes with the result
        assert outcomes == {Platform.TIKTOK: PublishOutcome.ACCEPTED, Platform.YOUTUBE: PublishOutcome.ACCEPTED,
                            Platform.INSTAGRAM: PublishOutcome.PUBLISHED}
        assert all(r.remote_handle for r in results)
        assert [r.url for r in results if r.outcome is PublishOutcome.PUBLISHED][0].startswith(
            "https://www.instagram.com/")

        now = datetime.now(timezone.utc)
        fresh_ids = set()
        for result in results:
            asked = by_target[result.target_id]
            # one read after its lease (the queue has asked again since), and the one after it
            stale, fresh = (StatusRequested(message_id=uuid.uuid4(), target_id=result.target_id,
                                            platform=asked.platform, account_id=asked.account_id, attempt=1,
                                            remote_handle=result.remote_handle, expires_at=now + lease)
                            for lease in (timedelta(seconds=-1), timedelta(minutes=2)))
            fresh_ids.add(PollHandlers.observation_id(fresh, ObservedState.PUBLISHED))
            await produce(kafka_bootstrap, topic_prefix + Topics.status_requested(asked.platform),
                          [stale.to_bytes(), fresh.to_bytes()], key=asked.account_id.encode())
        observed = [StatusObserved.from_bytes(r.value)
                    for r in await read_topic(kafka_bootstrap, topic_prefix + Topics.STATUS_OBSERVED, 6, timeout=8)]
        letters = await read_topic(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, 3)

    assert {o.message_id for o in observed} == fresh_ids and len(observed) == 3, "stale requests are skipped"
    assert all(o.state is ObservedState.PUBLISHED and o.url for o in observed)
    assert len(letters) == 3, "each publisher dead-lettered its malformed request and went on"
