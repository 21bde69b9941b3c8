"""Engagement of a published post through each platform client, served by its sandbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import ClassVar

import httpx
import pytest
from starlette.responses import JSONResponse

import sandbox
from contracts import FOUND_HANDLE_KIND, ContentType, ErrorClass, MediaRef, ObservedState, Platform, PublishRequested, RemoteHandle
from services.publishers.platforms import Accepted, MediaPolicy, PlatformError, Published, build_client
from test_platform_clients import AnswerWith

ROOT = "http://sandbox"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=300000"
TIMESCALE = 0.1  # the sandbox's engagement builds up within a second


class EngagementSuite:
    platform: ClassVar[Platform]
    account: ClassVar[str] = "acct_1"
    client_options: ClassVar[dict] = {}
    has_shares: ClassVar[bool] = True
    first_operation: ClassVar[str]  # the fault-hook name of the first engagement call
    finds_by_address: ClassVar[bool] = False  # a post's public URL is enough to read its figures

    @property
    def token(self) -> str:
        return f"sandbox:{self.account}"

    @pytest.fixture
    def app(self):
        return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0,
                                                          engagement_timescale_seconds=TIMESCALE))

    @pytest.fixture
    async def http(self, app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            yield client

    @pytest.fixture
    def client(self, http, tmp_path):
        policy = MediaPolicy.sandbox().with_roots(tmp_path)
        return build_client(self.platform, http, f"{ROOT}/{self.platform.value}",
                            **self.media_options(http, policy), **self.client_options)

    def media_options(self, http, policy) -> dict:
        return {"media_http": http, "media_policy": policy}

    async def published(self, client) -> tuple[RemoteHandle, str | None]:
        request = PublishRequested(
            message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=self.platform,
            account_id=self.account, attempt=1, content_type=ContentType.VIDEO, caption="Launch day",
            media=[MediaRef(url=VIDEO)], scheduled_time=datetime.now(timezone.utc))
        outcome = await client.publish(request, self.token)
        assert isinstance(outcome, (Accepted, Published))
        for _ in range(50):
            report = await client.check_status(outcome.handle, self.token, self.account)
            if report.state is ObservedState.PUBLISHED:
                return outcome.handle, report.url
            await asyncio.sleep(0.01)
        raise AssertionError("not published")

    async def test_figures_grow_with_age_and_come_with_the_audience_size(self, client, app):
        handle, url = await self.published(client)
        early = await client.fetch_engagement(handle, self.token, self.account, url)
        await asyncio.sleep(3 * TIMESCALE)
        later = await client.fetch_engagement(handle, self.token, self.account, url)

        truth = app.state.sandbox.engagement
        assert later.audience_size == truth.audience(self.platform.value, self.account)
        assert later.audience_size and later.audience_size > 0
        assert later.likes is not None and later.comments is not None and later.views is not None
        assert (later.shares is not None) is self.has_shares
        assert later.interactions >= early.interactions, "engagement only grows"
        assert later.interactions > 0, "a post on an account with followers earns something"

    async def test_reading_twice_gives_the_same_figures_for_the_same_age(self, client, app):
        handle, url = await self.published(client)
        await asyncio.sleep(3 * TIMESCALE)  # fully built: later reads cannot differ
        await asyncio.sleep(TIMESCALE)
        first = await client.fetch_engagement(handle, self.token, self.account, url)
        second = await client.fetch_engagement(handle, self.token, self.account, url)
        assert abs(first.interactions - second.interactions) <= max(2, first.interactions // 50)

    async def test_errors_are_classified(self, client, app):
        handle, url = await self.published(client)
        store = getattr(app.state.sandbox, self.platform.value)
        store.faults = AnswerWith(self.first_operation, JSONResponse({"error": "down"}, 503))
        with pytest.raises(PlatformError) as raised:
            await client.fetch_engagement(handle, self.token, self.account, url)
        assert raised.value.error_class is ErrorClass.RETRYABLE

    async def test_a_post_an_operator_found_is_read_by_its_address_where_that_finds_it(self, client, app):
        _, url = await self.published(client)
        await asyncio.sleep(3 * TIMESCALE)
        found = RemoteHandle(kind=FOUND_HANDLE_KIND, id=url)  # `autopost found`: only the address is known
        if not self.finds_by_address:
            with pytest.raises(PlatformError) as raised:
                await client.fetch_engagement(found, self.token, self.account, url)
            assert raised.value.error_class is ErrorClass.PERMANENT, "its collections are skipped, not retried"
            return
        figures = await client.fetch_engagement(found, self.token, self.account, url)
        assert figures.audience_size == app.state.sandbox.engagement.audience(self.platform.value, self.account)
        assert figures.interactions > 0

    async def refused(self, client, app, answer: JSONResponse) -> PlatformError:
        handle, url = await self.published(client)
        getattr(app.state.sandbox, self.platform.value).faults = AnswerWith(self.first_operation, answer)
        with pytest.raises(PlatformError) as raised:
            await client.fetch_engagement(handle, self.token, self.account, url)
        return raised.value

    async def test_another_platforms_handle_is_refused(self, client):
        with pytest.raises(PlatformError) as raised:
            await client.fetch_engagement(RemoteHandle(kind="elsewhere", id="1"), self.token, self.account, None)
        assert raised.value.error_class is ErrorClass.PERMANENT


class TestTikTokEngagement(EngagementSuite):
    platform = Platform.TIKTOK
    first_operation = "tiktok.video_query"
    finds_by_address = True

    async def test_a_post_without_public_id_has_no_figures(self, http, tmp_path):
        # SELF_ONLY (an unaudited client's): never a public id. A public post published without
        # one (a long moderation) is looked up instead: test_tiktok_moderated_engagement
        client = build_client(self.platform, http, f"{ROOT}/{self.platform.value}", unaudited=True,
                              **self.media_options(http, MediaPolicy.sandbox().with_roots(tmp_path)))
        handle, _ = await self.published(client)
        with pytest.raises(PlatformError) as raised:
            await client.fetch_engagement(handle, self.token, self.account, None)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "no_public_post")


    @pytest.mark.parametrize("code", ["scope_not_authorized", "scope_permission_missed"])
    async def test_a_scope_the_user_did_not_grant_fails_the_read_not_the_account(self, client, app, code):
        error = await self.refused(client, app, JSONResponse(
            {"data": {}, "error": {"code": code, "message": "video.list not granted", "log_id": "1"}}, 401))
        assert (error.error_class, error.code) == (ErrorClass.PERMANENT, "engagement_not_permitted")

    async def test_a_rejected_token_is_still_a_token_problem(self, client, app):
        error = await self.refused(client, app, JSONResponse(
            {"data": {}, "error": {"code": "access_token_invalid", "message": "expired", "log_id": "1"}}, 401))
        assert error.error_class is ErrorClass.AUTH


class TestInstagramEngagement(EngagementSuite):
    platform = Platform.INSTAGRAM
    account = "17841400000000001"
    client_options = {"poll_interval": 0.01, "poll_timeout": 5.0}
    first_operation = "instagram.insights"

    def media_options(self, http, policy) -> dict:
        return {"media_policy": policy}  # Instagram fetches the media itself

    async def test_saves_are_counted(self, client):
        handle, url = await self.published(client)
        await asyncio.sleep(3 * TIMESCALE)
        figures = await client.fetch_engagement(handle, self.token, self.account, url)
        assert figures.saves is not None


    @pytest.mark.parametrize("code", [10, 200])
    async def test_insights_the_grant_does_not_give_fail_the_read_not_the_account(self, client, app, code):
        error = await self.refused(client, app, JSONResponse(
            {"error": {"code": code, "message": "(#10) Not enough viewers for the media to show insights"}}, 400))
        assert (error.error_class, error.code) == (ErrorClass.PERMANENT, "engagement_not_permitted")

    async def test_a_rejected_token_is_still_a_token_problem(self, client, app):
        error = await self.refused(client, app, JSONResponse(
            {"error": {"code": 190, "message": "Error validating access token"}}, 400))
        assert error.error_class is ErrorClass.AUTH


class TestYouTubeEngagement(EngagementSuite):
    platform = Platform.YOUTUBE
    client_options = {"chunk_size": 256 * 1024}
    has_shares = False  # the Data API has no share count
    first_operation = "youtube.list"

    async def test_a_video_not_listed_yet_spends_no_channels_read(self, client, app):
        class Seen(sandbox.Faults):
            def __init__(self):
                super().__init__()
                self.operations: list[str] = []

            async def before(self, operation, request, account=None):
                self.operations.append(operation)
                return None

        app.state.sandbox.youtube.faults = seen = Seen()
        with pytest.raises(PlatformError) as raised:
            await client.fetch_engagement(RemoteHandle(kind="youtube.video", id="not-yet"), self.token,
                                          self.account, None)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "video_not_listed")
        assert seen.operations == ["youtube.list"], "channels.list costs a unit and answers nothing here"
