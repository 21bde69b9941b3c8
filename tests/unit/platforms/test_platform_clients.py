"""One behavioural suite for every platform client, run against the sandbox in-process.

`PlatformClientSuite` holds the behaviour; each `Test<Platform>Client` says what differs
(which content it takes, what its URLs look like, which error replies to classify).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import sandbox
from contracts import (
    ContentType,
    ErrorClass,
    MediaRef,
    ObservedState,
    Platform,
    PublishRequested,
    RemoteHandle,
)
from services.publishers.platforms import (
    Accepted,
    PlatformClient,
    PlatformError,
    StatusReport,
    build_client,
)

ROOT = "http://sandbox"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=700000"
IMAGE = f"{ROOT}/media/photo.jpg?bytes=50000"


def publish_request(platform: Platform, account: str, content_type: ContentType, *urls: str,
                    caption: str = "Launch day\nsecond line", hashtags: tuple[str, ...] = ("#autopost", "demo"),
                    ) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=account, attempt=1, content_type=content_type, caption=caption,
        hashtags=list(hashtags), media=[MediaRef(url=u) for u in urls],
        scheduled_time=datetime.now(timezone.utc),
    )


class AnswerWith(sandbox.Faults):
    """Test-only use of the sandbox's fault hook: answer one operation with a canned reply."""

    def __init__(self, operation: str, response: Response):
        self.operation, self.response = operation, response

    def before(self, operation: str, request: Request) -> Response | None:
        return self.response if operation == self.operation else None


class PlatformClientSuite:
    platform: ClassVar[Platform]
    account: ClassVar[str] = "acct_1"
    url_pattern: ClassVar[str]  # a published URL, for videos
    image_url_pattern: ClassVar[str | None] = None  # None: the platform takes no images
    more_content: ClassVar[list[tuple[ContentType, str]]] = []  # other kinds it publishes
    client_options: ClassVar[dict[str, Any]] = {}
    first_operation: ClassVar[str]  # the fault-hook name of the first call publish makes
    # (status, body, headers, expected class, expected code) replies of the first call
    error_cases: ClassVar[list[tuple[int, dict, dict, ErrorClass, str]]] = []

    @property
    def token(self) -> str:
        return f"sandbox:{self.account}"

    @pytest.fixture
    def app(self):
        return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.05))

    @pytest.fixture
    async def http(self, app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            yield client

    @pytest.fixture
    def client(self, http) -> PlatformClient:
        return build_client(self.platform, http, f"{ROOT}/{self.platform.value}", **self.client_options)

    def store(self, app):
        return getattr(app.state.sandbox, self.platform.value)

    async def published(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        return (await http.get(f"{ROOT}/_sandbox/published")).json()

    async def follow(self, client: PlatformClient, handle: RemoteHandle) -> StatusReport:
        for _ in range(100):
            report = await client.check_status(handle, self.token)
            if report.state is not ObservedState.PROCESSING:
                return report
            await asyncio.sleep(0.02)
        raise AssertionError(f"still processing: {report}")

    async def publish_and_follow(self, client, content_type: ContentType, *urls: str):
        outcome = await client.publish(publish_request(self.platform, self.account, content_type, *urls),
                                       self.token)
        assert isinstance(outcome, Accepted)
        report = await self.follow(client, outcome.handle)
        assert report.state is ObservedState.PUBLISHED, report
        return outcome.handle, report

    # -- behaviour ---------------------------------------------------------------------------

    async def test_video_is_published_and_followed_to_its_url(self, client, http):
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, VIDEO)
        assert re.fullmatch(self.url_pattern, report.url), report.url
        [record] = await self.published(http)
        assert record["platform"] == self.platform.value
        assert record["accountId"] == self.account
        assert (record["remoteId"], record["url"]) == (handle.id, report.url)
        assert record["caption"].startswith("Launch day") and "#autopost #demo" in record["caption"]
        assert datetime.fromisoformat(record["publishedAt"]).tzinfo is not None

    async def test_image(self, client, http):
        request = publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE)
        if self.image_url_pattern is None:
            with pytest.raises(PlatformError) as raised:
                await client.publish(request, self.token)
            assert raised.value.error_class is ErrorClass.PERMANENT
            assert await self.published(http) == []
            return
        handle, report = await self.publish_and_follow(client, ContentType.IMAGE, IMAGE)
        assert re.fullmatch(self.image_url_pattern, report.url), report.url
        assert [r["remoteId"] for r in await self.published(http)] == [handle.id]

    async def test_other_content_types(self, client, http):
        handles = []
        for content_type, url in self.more_content:
            handle, report = await self.publish_and_follow(client, content_type, url)
            assert report.url and report.url.startswith("https://")
            handles.append(handle.id)
        assert [r["remoteId"] for r in await self.published(http)] == handles

    async def test_one_record_per_publish(self, client, http):
        outcomes = await asyncio.gather(*(
            client.publish(publish_request(self.platform, f"{self.account}_{i}", ContentType.VIDEO, VIDEO),
                           f"sandbox:{self.account}_{i}")
            for i in range(3)))
        records = await self.published(http)
        assert sorted(r["remoteId"] for r in records) == sorted(o.handle.id for o in outcomes)
        assert len({r["remoteId"] for r in records}) == 3

    async def test_missing_token_is_an_auth_error(self, client, http):
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), "")
        assert raised.value.error_class is ErrorClass.AUTH
        assert await self.published(http) == []

    async def test_error_replies_are_classified(self, client, app):
        assert self.error_cases
        for status, body, headers, error_class, code in self.error_cases:
            self.store(app).faults = AnswerWith(self.first_operation, JSONResponse(body, status, headers))
            with pytest.raises(PlatformError) as raised:
                await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                     self.token)
            error = raised.value
            assert (error.error_class, error.code) == (error_class, code), error
            if error_class is ErrorClass.RATE_LIMITED:
                assert error.retry_after and error.retry_after > 0
            assert error.to_contract().error_class is error_class

    async def test_server_errors_and_transport_failures_are_retryable(self, client, app):
        self.store(app).faults = AnswerWith(self.first_operation, Response("upstream broke", 503))
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                 self.token)
        assert raised.value.error_class is ErrorClass.RETRYABLE

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as broken:
            offline = build_client(self.platform, broken, f"{ROOT}/{self.platform.value}")
            with pytest.raises(PlatformError) as raised:
                await offline.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                      self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "transport_error")

    async def test_token_never_appears_in_error_messages(self, client, app):
        secret = "sandbox:very-secret-token"
        status, body, headers, _, _ = self.error_cases[-1]
        echoed = _replace_messages(body, f"bad token {secret}")
        self.store(app).faults = AnswerWith(self.first_operation, JSONResponse(echoed, status, headers))
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), secret)
        assert secret not in str(raised.value) and secret not in raised.value.message

    async def test_media_contradicting_the_content_type_is_permanent(self, client, http):
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.REEL, IMAGE),
                                 self.token)
        assert raised.value.error_class is ErrorClass.PERMANENT
        assert await self.published(http) == []

    async def test_check_status_refuses_another_platforms_handle(self, client):
        with pytest.raises(PlatformError) as raised:
            await client.check_status(RemoteHandle(kind="other.thing", id="1"), self.token)
        assert raised.value.error_class is ErrorClass.PERMANENT


def _replace_messages(body: Any, text: str) -> Any:
    if isinstance(body, dict):
        return {k: text if k == "message" else _replace_messages(v, text) for k, v in body.items()}
    if isinstance(body, list):
        return [_replace_messages(v, text) for v in body]
    return body


def tiktok_error(code: str) -> dict:
    return {"data": {}, "error": {"code": code, "message": code, "log_id": "1"}}


def graph_error(code: int, subcode: int | None = None) -> dict:
    error = {"message": "m", "type": "OAuthException", "code": code, "fbtrace_id": "x"}
    return {"error": {**error, "error_subcode": subcode} if subcode else error}


def google_error(status: int, reason: str, domain: str = "youtube.video") -> dict:
    return {"error": {"code": status, "message": reason,
                      "errors": [{"message": reason, "domain": domain, "reason": reason}]}}


class TestTikTokClient(PlatformClientSuite):
    platform = Platform.TIKTOK
    url_pattern = r"https://www\.tiktok\.com/@acct_1/video/\d+"
    image_url_pattern = r"https://www\.tiktok\.com/@acct_1/photo/\d+"
    more_content = [(ContentType.REEL, VIDEO)]
    first_operation = "tiktok.creator_info"
    error_cases = [
        (429, tiktok_error("rate_limit_exceeded"), {}, ErrorClass.RATE_LIMITED, "rate_limit_exceeded"),
        (403, tiktok_error("spam_risk_too_many_posts"), {}, ErrorClass.QUOTA, "spam_risk_too_many_posts"),
        (401, tiktok_error("scope_not_authorized"), {}, ErrorClass.AUTH, "scope_not_authorized"),
        (200, tiktok_error("unaudited_client_can_only_post_to_private_accounts"), {}, ErrorClass.PERMANENT,
         "unaudited_client_can_only_post_to_private_accounts"),
    ]

    async def test_private_account_posts_self_only_without_public_url(self, client, app, http):
        app.state.sandbox.tiktok.private_accounts.add(self.account)
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, VIDEO)
        assert report.url is None
        [record] = await self.published(http)
        assert record["privacy"] == "SELF_ONLY"

    async def test_local_file_goes_up_in_chunks(self, http, tmp_path: Path):
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\1" * (2 * 5 * 1024 * 1024 + 123))  # 2 chunks, remainder in the last
        client = build_client(self.platform, http, f"{ROOT}/tiktok", chunk_size=5 * 1024 * 1024)
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, video.as_uri())
        assert handle.id.startswith("v_pub_file~")
        assert re.fullmatch(self.url_pattern, report.url)


class TestInstagramClient(PlatformClientSuite):
    platform = Platform.INSTAGRAM
    account = "17841400000000001"
    url_pattern = r"https://www\.instagram\.com/reel/[\w-]+/"
    image_url_pattern = r"https://www\.instagram\.com/p/[\w-]+/"
    more_content = [(ContentType.REEL, VIDEO), (ContentType.STORY, IMAGE), (ContentType.STORY, VIDEO)]
    client_options = {"poll_interval": 0.01, "poll_timeout": 5.0}
    first_operation = "instagram.media.post"
    error_cases = [
        (400, graph_error(9, 2207042), {}, ErrorClass.QUOTA, "9/2207042"),
        (400, graph_error(4), {}, ErrorClass.RATE_LIMITED, "4"),
        (400, graph_error(4, 2207051), {}, ErrorClass.PERMANENT, "4/2207051"),
        (400, graph_error(-2, 2207003), {}, ErrorClass.RETRYABLE, "-2/2207003"),
        (400, graph_error(190, 463), {}, ErrorClass.AUTH, "190/463"),
        (400, graph_error(36004, 2207010), {}, ErrorClass.PERMANENT, "36004/2207010"),
    ]

    async def test_handle_keeps_the_container(self, client):
        outcome = await client.publish(
            publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert outcome.handle.kind == "instagram.media"
        assert outcome.handle.extra["igUserId"] == self.account
        assert outcome.handle.extra["containerId"].isdigit()

    async def test_container_not_ready_in_time_is_retryable_with_the_container(self, http):
        client = build_client(self.platform, http, f"{ROOT}/instagram", poll_interval=0.01, poll_timeout=0.0)
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.REEL, VIDEO),
                                 self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "container_not_ready")
        assert raised.value.handle.kind == "instagram.container"


class TestYouTubeClient(PlatformClientSuite):
    platform = Platform.YOUTUBE
    url_pattern = r"https://www\.youtube\.com/watch\?v=[\w-]{11}"
    more_content = [(ContentType.REEL, VIDEO), (ContentType.STORY, VIDEO)]
    client_options = {"chunk_size": 256 * 1024}  # 700,000 bytes: two full chunks and a tail
    first_operation = "youtube.insert"
    error_cases = [
        (403, google_error(403, "quotaExceeded", "youtube.quota"), {}, ErrorClass.QUOTA, "quotaExceeded"),
        (429, google_error(429, "rateLimitExceeded"), {"Retry-After": "7"}, ErrorClass.RATE_LIMITED,
         "rateLimitExceeded"),
        (400, google_error(400, "uploadLimitExceeded"), {}, ErrorClass.QUOTA, "uploadLimitExceeded"),
        (503, google_error(503, "backendError", "global"), {}, ErrorClass.RETRYABLE, "backendError"),
        (400, google_error(400, "invalidTitle"), {}, ErrorClass.PERMANENT, "invalidTitle"),
    ]

    async def test_metadata_is_explicit_and_within_limits(self, client, app):
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO,
                                  caption="<b>" + "T" * 150 + "\nbody é " * 1000, hashtags=("#a", "b"))
        outcome = await client.publish(request, self.token)
        video = app.state.sandbox.youtube.videos[outcome.handle.id]
        assert video.status["privacyStatus"] == "public"
        assert video.snippet["title"] == "b" + "T" * 99
        assert len(video.snippet["description"].encode()) <= 5000
        assert video.snippet["tags"] == ["a", "b"]
        assert outcome.handle.extra["sessionUri"].startswith(f"{ROOT}/youtube/upload/")

    async def test_local_file_streams_from_disk(self, http, tmp_path: Path):
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\2" * (3 * 256 * 1024 + 5))
        client = build_client(self.platform, http, f"{ROOT}/youtube", chunk_size=256 * 1024)
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, video.as_uri())
        assert report.url == f"https://www.youtube.com/watch?v={handle.id}"

    async def test_media_of_unknown_length_is_sent_with_open_ranges(self, http, app):
        async def body():
            for _ in range(3):
                yield b"\3" * 200_000

        def media_host(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=body())  # streamed: no Content-Length

        async with httpx.AsyncClient(transport=httpx.MockTransport(media_host)) as media_http:
            client = build_client(self.platform, http, f"{ROOT}/youtube", chunk_size=256 * 1024,
                                  media_http=media_http)
            handle, _ = await self.publish_and_follow(client, ContentType.VIDEO, "https://cdn.example/v.mp4")
        [session] = app.state.sandbox.youtube.sessions.values()
        assert (session.total, session.video_id) == (600_000, handle.id)

    async def test_missing_media_is_permanent_and_opens_no_session(self, client, app):
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO,
                                                 "file:///nonexistent/clip.mp4"), self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_unavailable")
        assert app.state.sandbox.youtube.sessions == {}
