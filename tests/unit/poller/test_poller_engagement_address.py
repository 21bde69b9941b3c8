"""The poller's engagement read of a post the queue has no address for: the address the client
found it by comes back on the observation, for the queue to keep."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx

import sandbox
from contracts import (
    ContentType,
    EngagementFigures,
    ErrorClass,
    MediaRef,
    Platform,
    PublishRequested,
    RemoteHandle,
    StatusCheck,
    StatusObserved,
    StatusRequested,
    Topics,
)
from services.poller.handlers import PollHandlers
from services.publishers.limits import no_limits
from services.publishers.platforms import MediaPolicy, PlatformError, RetryRules, build_client
from services.quotas import quota_rules
from services.runtime import Record
from services.runtime._settings import QuotaSettings
from services.publishers.platforms._client import PlatformClientBase
from test_poller_status_reads import FakeContext, FakeTokens, FreeLedger

ROOT = "http://sandbox"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=300000"
ACCOUNT = "acct_1"
FIGURES = EngagementFigures(views=10, likes=2, comments=0, shares=0, audience_size=100)


class SandboxTokens(FakeTokens):
    async def token_for(self, platform, account_id):
        return f"sandbox:{account_id}"


async def collect(client, platform: Platform, handle: RemoteHandle, url: str | None) -> StatusObserved:
    ctx = FakeContext()
    handlers = PollHandlers(ctx, {platform: client}, SandboxTokens(), FreeLedger(), quota_rules(QuotaSettings()))
    message = StatusRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), platform=platform, account_id=ACCOUNT, attempt=1,
        check=StatusCheck.ENGAGEMENT, remote_handle=handle, url=url, age_seconds=3600.0,
        expires_at=datetime.now(timezone.utc) + timedelta(minutes=2))
    record = Record(topic=Topics.status_requested(platform), partition=0, offset=0,
                    key=ACCOUNT.encode(), value=message.to_bytes(), headers={})
    await handlers.requested([record])
    [sent] = ctx.sent
    return StatusObserved.from_bytes(sent.value)


async def test_a_tiktok_post_without_an_address_is_read_by_its_public_id_and_the_address_comes_back(tmp_path):
    app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = build_client(Platform.TIKTOK, http, f"{ROOT}/tiktok", media_http=http,
                              media_policy=MediaPolicy.sandbox().with_roots(tmp_path),
                              retry=RetryRules(base_delay=0.0, max_delay=0.0))
        request = PublishRequested(
            message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.TIKTOK,
            account_id=ACCOUNT, attempt=1, content_type=ContentType.VIDEO, caption="Launch day",
            media=[MediaRef(url=VIDEO)], scheduled_time=datetime.now(timezone.utc))
        outcome = await client.publish(request, f"sandbox:{ACCOUNT}")
        # as the queue holds it after the status check gave up on the public id
        observation = await collect(client, Platform.TIKTOK, outcome.handle, None)
    assert observation.error is None and observation.engagement is not None
    assert re.fullmatch(r"https://www\.tiktok\.com/@acct_1/video/\d+", observation.url or "")


class FiguresOnly(PlatformClientBase):
    """A client with the plain engagement read only (as Instagram's and YouTube's)."""

    def __init__(self):  # no HTTP: the figures are made up
        self.limits = no_limits()

    async def fetch_engagement(self, handle, token, account_id, url=None):
        return FIGURES


async def test_a_client_that_learns_nothing_answers_with_the_address_it_was_given():
    handle = RemoteHandle(kind="youtube.video", id="vid1")
    observation = await collect(FiguresOnly(), Platform.YOUTUBE, handle, "https://youtu.be/vid1")
    assert (observation.url, observation.engagement) == ("https://youtu.be/vid1", FIGURES)


class StillModerated:
    limits = no_limits()

    async def read_engagement(self, handle, token, account_id, url=None):
        raise PlatformError(ErrorClass.RETRYABLE, "in_moderation", "no public id yet")


async def test_a_read_waiting_for_moderation_answers_with_its_retryable_error():
    handle = RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1", extra={"privacy": "PUBLIC_TO_EVERYONE"})
    observation = await collect(StillModerated(), Platform.TIKTOK, handle, None)
    assert observation.url is None and observation.engagement is None
    assert (observation.error.error_class, observation.error.code) == (ErrorClass.RETRYABLE, "in_moderation")
