"""A public TikTok post whose moderation outlasts the status check's hour: published without its
address, its engagement is still read, by the public id TikTok's status endpoint gives later.

platforms.md §1.5: public posts pass moderation (usually < 1 min, sometimes hours) before their
`publicaly_available_post_id` appears; SELF_ONLY posts never get one.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import sandbox
from contracts import FOUND_HANDLE_KIND, ContentType, ErrorClass, ObservedState, Platform, RemoteHandle
from services.publishers.limits import EndpointLimits
from services.publishers.platforms import MediaPolicy, PlatformError, RetryRules, build_client
from test_platform_clients import publish_request

ROOT = "http://sandbox"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=300000"
ACCOUNT = "acct_1"
TOKEN = f"sandbox:{ACCOUNT}"
URL = re.compile(r"https://www\.tiktok\.com/@acct_1/video/(\d+)")
FAST = RetryRules(base_delay=0.0, max_delay=0.0)
MODERATION = 0.3  # seconds the sandbox keeps a public post's id back


class RecordingLimits(EndpointLimits):
    """No caps, but every slot taken is noted: which endpoint for which account."""

    def __init__(self):
        super().__init__({})
        self.slots: list[tuple[str, str]] = []

    def slot(self, account_id: str, endpoint: str):
        self.slots.append((account_id, endpoint))
        return super().slot(account_id, endpoint)


class Counting(sandbox.Faults):
    """Counts the calls of each TikTok operation; answers `answer` for `operation` if given."""

    def __init__(self, operation: str | None = None, answer: Response | None = None):
        self.calls: dict[str, int] = {}
        self.operation, self.answer = operation, answer

    async def before(self, operation: str, request: Request, account: str | None = None) -> Response | None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        return self.answer if operation == self.operation else None


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0, tiktok_moderation_seconds=MODERATION,
                                                      engagement_timescale_seconds=0.1))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


def make_client(http, tmp_path, **options):
    return build_client(Platform.TIKTOK, http, f"{ROOT}/tiktok", media_http=http,
                        media_policy=MediaPolicy.sandbox().with_roots(tmp_path), retry=FAST, **options)


async def published_without_address(http, tmp_path, **options):
    """A post accepted now and checked as if the hour's wait were over: PUBLISHED, no URL."""
    client = make_client(http, tmp_path, **options)
    outcome = await client.publish(publish_request(Platform.TIKTOK, ACCOUNT, ContentType.VIDEO, VIDEO), TOKEN)
    late = make_client(http, tmp_path, clock=lambda: time.time() + 2 * 3600)  # past the hour
    report = await late.check_status(outcome.handle, TOKEN, ACCOUNT)
    assert (report.state, report.url) == (ObservedState.PUBLISHED, None), "the status check gave up on the id"
    return client, outcome.handle


async def test_a_post_still_in_moderation_is_read_again_later_not_given_up(http, app, tmp_path):
    limits = RecordingLimits()
    client, handle = await published_without_address(http, tmp_path, limits=limits)
    assert handle.extra["privacy"] == "PUBLIC_TO_EVERYONE"
    limits.slots.clear()
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "in_moderation")
    # the look-up is a status call, within the account's status cap
    assert limits.slots == [(ACCOUNT, "status_fetch")]


async def test_once_the_public_id_is_out_the_figures_are_read_by_it_and_the_address_comes_back(
        http, app, tmp_path):
    limits = RecordingLimits()
    client, handle = await published_without_address(http, tmp_path, limits=limits)
    await asyncio.sleep(MODERATION + 0.05)
    limits.slots.clear()
    figures, url = await client.read_engagement(handle, TOKEN, ACCOUNT, None)
    [publish] = app.state.sandbox.tiktok.publishes.values()
    assert URL.fullmatch(url) and URL.fullmatch(url).group(1) == publish.post_id
    assert figures.audience_size == app.state.sandbox.engagement.audience("tiktok", ACCOUNT)
    assert figures.likes is not None and figures.views is not None
    assert [e for _, e in limits.slots] == ["status_fetch", "video_query", "user_info"]
    # the same through the platform-neutral read
    again = await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert again.audience_size == figures.audience_size


async def test_with_the_address_known_no_status_call_is_made(http, app, tmp_path):
    limits = RecordingLimits()
    client, handle = await published_without_address(http, tmp_path, limits=limits)
    await asyncio.sleep(MODERATION + 0.05)
    report = await client.check_status(handle, TOKEN, ACCOUNT)
    assert URL.fullmatch(report.url)
    limits.slots.clear()
    _, url = await client.read_engagement(handle, TOKEN, ACCOUNT, report.url)
    assert url is None, "nothing learnt: the caller had the address"
    assert "status_fetch" not in [e for _, e in limits.slots]


async def test_a_self_only_post_stays_without_figures_for_good_and_costs_no_status_call(http, app, tmp_path):
    client = make_client(http, tmp_path, unaudited=True)  # posts SELF_ONLY: never a public id
    outcome = await client.publish(publish_request(Platform.TIKTOK, ACCOUNT, ContentType.VIDEO, VIDEO), TOKEN)
    assert outcome.handle.extra["privacy"] == "SELF_ONLY"
    app.state.sandbox.tiktok.faults = counting = Counting()
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(outcome.handle, TOKEN, ACCOUNT, None)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "no_public_post")
    assert counting.calls == {}


@pytest.mark.parametrize("handle", [
    RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1", extra={"username": "acct_1", "mediaType": "video"}),
    RemoteHandle(kind=FOUND_HANDLE_KIND, id="https://www.tiktok.com/@acct_1"),
], ids=["handle from before privacy was kept", "found without a public id"])
async def test_without_a_public_privacy_on_the_handle_there_is_nothing_to_wait_for(http, app, tmp_path, handle):
    app.state.sandbox.tiktok.faults = counting = Counting()
    with pytest.raises(PlatformError) as raised:
        await make_client(http, tmp_path).fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "no_public_post")
    assert counting.calls == {}


async def test_a_failed_status_look_up_is_classified_as_tiktok_answered(http, app, tmp_path):
    client, handle = await published_without_address(http, tmp_path)
    await asyncio.sleep(MODERATION + 0.05)
    app.state.sandbox.tiktok.faults = Counting("tiktok.status_fetch", JSONResponse(
        {"data": {}, "error": {"code": "rate_limit_exceeded", "message": "slow down", "log_id": "1"}},
        429, headers={"Retry-After": "30"}))
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert (raised.value.error_class, raised.value.retry_after) == (ErrorClass.RATE_LIMITED, 30.0)
    app.state.sandbox.tiktok.faults = Counting("tiktok.status_fetch", JSONResponse(
        {"data": {}, "error": {"code": "access_token_invalid", "message": "expired", "log_id": "1"}}, 401))
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert raised.value.error_class is ErrorClass.AUTH, "the publish grant itself: a token problem"


async def test_a_publish_tiktok_reports_failed_will_never_have_figures(http, app, tmp_path):
    client, handle = await published_without_address(http, tmp_path)
    app.state.sandbox.tiktok.faults = Counting("tiktok.status_fetch", JSONResponse(
        {"data": {"status": "FAILED", "fail_reason": "spam_risk_text", "publicaly_available_post_id": []},
         "error": {"code": "ok", "message": "", "log_id": "1"}}))
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "no_public_post")
