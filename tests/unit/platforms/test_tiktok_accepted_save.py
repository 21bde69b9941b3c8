"""A TikTok init that got its answer while the answer's save raised (a Postgres blip, a pool
timeout): the publish id is proof TikTok took it, so the target is accepted, not reviewed, and
it is posted exactly once however it is tried again.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import sandbox
from contracts import ContentType, ErrorClass, ObservedState, Platform, RemoteHandle
from services.publishers.platforms import (
    ACCEPTED,
    CREATED,
    INTENT,
    Accepted,
    Checkpoint,
    MediaPolicy,
    MemoryJournal,
    PlatformError,
    RetryRules,
    build_client,
)
from test_platform_clients import IMAGE, MIB, ROOT, again, local_video, publish_request

VIDEO = f"{ROOT}/media/clip.mp4?bytes=300000"
ACCOUNT = "acct_1"
TOKEN = f"sandbox:{ACCOUNT}"
FAST = RetryRules(base_delay=0.0, max_delay=0.0)


class AcceptedSaveFailsOnce(MemoryJournal):
    """The first ACCEPTED save raises before anything is written, as a pool timeout would."""

    failed = False

    async def save(self, stage, handle):
        if stage == ACCEPTED and not self.failed:
            self.failed = True
            raise TimeoutError("pool timeout")
        await super().save(stage, handle)


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
def policy(tmp_path: Path) -> MediaPolicy:
    return MediaPolicy.sandbox().with_roots(tmp_path)


def tiktok(http, policy, **options):
    return build_client(Platform.TIKTOK, http, f"{ROOT}/tiktok", media_http=http, media_policy=policy,
                        retry=FAST, **options)


async def published(http) -> list[str]:
    return [r["remoteId"] for r in (await http.get(f"{ROOT}/_sandbox/published")).json()]


async def created(http) -> int:
    return (await http.get(f"{ROOT}/_sandbox/stats")).json()["tiktok"]["created"]


@pytest.mark.parametrize("content, url", [(ContentType.VIDEO, VIDEO), (ContentType.IMAGE, IMAGE)])
async def test_an_answered_pull_whose_save_raised_is_accepted_and_followed_on_a_retry(http, policy, content, url):
    client, journal = tiktok(http, policy), AcceptedSaveFailsOnce()
    request = publish_request(Platform.TIKTOK, ACCOUNT, content, url)
    outcome = await client.publish(request, TOKEN, journal)
    assert isinstance(outcome, Accepted) and outcome.handle.id, "the queue gets the publish id to follow"
    assert (await journal.load()).stage == INTENT, "the journal lags"
    report = await client.check_status(outcome.handle, TOKEN, ACCOUNT)
    assert report.state is ObservedState.PUBLISHED
    # the request read again here (at-least-once): followed from the remembered id, not reviewed
    resumed = await client.publish(again(request), TOKEN, journal)
    assert resumed.handle.id == outcome.handle.id
    assert (await journal.load()).stage == ACCEPTED, "the journal caught up"
    assert await published(http) == [outcome.handle.id] and await created(http) == 1


async def test_another_process_resumes_from_the_queues_handle_and_reviews_without_it(http, policy):
    journal = AcceptedSaveFailsOnce()
    request = publish_request(Platform.TIKTOK, ACCOUNT, ContentType.VIDEO, VIDEO)
    outcome = await tiktok(http, policy).publish(request, TOKEN, journal)
    # a re-drive with the handle the queue kept from the accepted result: the same publish
    redriven = again(request).model_copy(update={"remote_handle": outcome.handle})
    resumed = await tiktok(http, policy).publish(redriven, TOKEN, journal)
    assert resumed.handle.id == outcome.handle.id
    # a handle answering another intent stands for nothing here; nor does a request without one
    # (the process died before the queue heard): review, never a second init
    other = RemoteHandle(kind="tiktok.publish_id", id="", extra={"source": "PULL_FROM_URL", "intent": "another"})
    lagging = MemoryJournal([Checkpoint(INTENT, other)])
    for handle in (outcome.handle, None):
        with pytest.raises(PlatformError) as raised:
            await tiktok(http, policy).publish(again(request).model_copy(update={"remote_handle": handle}),
                                               TOKEN, lagging)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "needs_review")
    assert await published(http) == [outcome.handle.id] and await created(http) == 1


async def test_an_upload_whose_accepted_save_raised_is_accepted_and_resumed(http, policy, tmp_path):
    client, journal = tiktok(http, policy, chunk_size=5 * MIB), AcceptedSaveFailsOnce()
    request = publish_request(Platform.TIKTOK, ACCOUNT, ContentType.VIDEO, local_video(tmp_path, 5 * MIB + 7))
    outcome = await client.publish(request, TOKEN, journal)
    assert (await journal.load()).stage == CREATED
    resumed = await tiktok(http, policy, chunk_size=5 * MIB).publish(again(request), TOKEN, journal)
    assert resumed.handle.id == outcome.handle.id
    assert await published(http) == [outcome.handle.id] and await created(http) == 1


async def test_a_retry_after_tiktok_failed_the_post_makes_a_new_one_from_the_queues_handle(http, policy):
    # the answer's save raised, TikTok then failed the pull; the queue keeps the handle through
    # that FAILED, so another process's retry reads it there, not a pull to review
    reply = await http.post(f"{ROOT}/_sandbox/faults", json={"platform": "tiktok", "kind": "processing_failure",
                                                             "count": 1})
    assert reply.status_code == 201, reply.text
    journal = AcceptedSaveFailsOnce()
    request = publish_request(Platform.TIKTOK, ACCOUNT, ContentType.VIDEO, VIDEO)
    outcome = await tiktok(http, policy).publish(request, TOKEN, journal)
    assert (await journal.load()).stage == INTENT
    report = await tiktok(http, policy).check_status(outcome.handle, TOKEN, ACCOUNT)
    assert report.state is ObservedState.FAILED and report.error.error_class is ErrorClass.RETRYABLE
    retried = again(request).model_copy(update={"remote_handle": outcome.handle})
    made = await tiktok(http, policy).publish(retried, TOKEN, journal)
    assert made.handle.id != outcome.handle.id and await created(http) == 2
    assert (await tiktok(http, policy).check_status(made.handle, TOKEN, ACCOUNT)).state is ObservedState.PUBLISHED
    assert await published(http) == [made.handle.id]
