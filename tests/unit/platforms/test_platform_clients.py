"""One behavioural suite for every platform client, run against the sandbox in-process.

`PlatformClientSuite` holds the behaviour; each `Test<Platform>Client` says what differs (which
content it takes, what its URLs look like, which calls it makes, where it can crash). Faults
are injected through the sandbox's own control API (`/_sandbox/faults`), as an operator would.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

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
from services.publishers.limits import ANY_ENDPOINT, Cap, EndpointLimits, HandedOver, serving
from services.publishers.platforms import (
    ABANDONED,
    ACCEPTED,
    CREATED,
    INTENT,
    Accepted,
    Checkpoint,
    MediaPolicy,
    MemoryJournal,
    PlatformClient,
    PlatformError,
    Published,
    RetryRules,
    StatusReport,
    build_client,
)

ROOT = "http://sandbox"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=700000"
IMAGE = f"{ROOT}/media/photo.jpg?bytes=50000"
FAST = RetryRules(base_delay=0.01, max_delay=0.05)
MIB = 1024 * 1024


def publish_request(platform: Platform, account: str, content_type: ContentType, *urls: str,
                    caption: str = "Launch day\nsecond line", hashtags: tuple[str, ...] = ("#autopost", "demo"),
                    scheduled_time: datetime | None = None) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=account, attempt=1, content_type=content_type, caption=caption,
        hashtags=list(hashtags), media=[MediaRef(url=u) for u in urls],
        scheduled_time=scheduled_time or datetime.now(timezone.utc),
    )


def again(request: PublishRequested) -> PublishRequested:
    """The same target sent again (a retry, or a lease that ran out)."""
    return request.model_copy(update={"attempt": request.attempt + 1, "message_id": uuid.uuid4()})


class AnswerWith(sandbox.Faults):
    """Test-only use of the sandbox's fault hook: answer one operation with a canned reply."""

    def __init__(self, operation: str, response: Response):
        self.operation, self.response = operation, response

    async def before(self, operation: str, request: Request, account: str | None = None) -> Response | None:
        return self.response if operation == self.operation else None


class PermalinkUnanswered(sandbox.Faults):
    """Instagram's media node read for its permalink fails; every other call goes through."""

    async def before(self, operation: str, request: Request, account: str | None = None) -> Response | None:
        if operation == "instagram.node" and "permalink" in request.query_params.get("fields", ""):
            return Response("upstream broke", 503)
        return None


class Operations(sandbox.Faults):
    """Every call the sandbox answers, by operation (a node read with the fields it asks for),
    passed on to the faults it wraps."""

    def __init__(self, inner: sandbox.Faults | None = None):
        self.calls: list[str] = []
        self.inner = inner or sandbox.Faults()

    async def before(self, operation: str, request: Request, account: str | None = None) -> Response | None:
        fields = request.query_params.get("fields", "") if operation.endswith(".node") else ""
        self.calls.append(f"{operation}:{fields}" if fields else operation)
        return await self.inner.before(operation, request, account)


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point runs (not an error the code handles)."""


class CrashingJournal:
    """Dies at the first save of `stage`: just before it is written, or just after."""

    def __init__(self, inner: MemoryJournal, stage: str, before: bool):
        self.inner, self.stage, self.before, self.crashed = inner, stage, before, False

    async def load(self):
        return await self.inner.load()

    async def abandon(self, reason: str) -> None:
        await self.inner.abandon(reason)

    async def save(self, stage: str, handle: RemoteHandle) -> None:
        crash = stage == self.stage and not self.crashed
        self.crashed |= crash
        if crash and self.before:
            raise SimulatedCrash(f"before saving {stage}")
        await self.inner.save(stage, handle)
        if crash:
            raise SimulatedCrash(f"after saving {stage}")


class CrashingTransport(httpx.AsyncBaseTransport):
    """Dies on the `nth` request that `match`es, after the platform has handled it: the work
    is done there, the answer is lost with the process."""

    def __init__(self, inner: httpx.AsyncBaseTransport, match: Callable[[httpx.Request], bool], nth: int = 1):
        self.inner, self.match, self.left = inner, match, nth

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.match(request):
            self.left -= 1
            if self.left == 0:
                await response.aread()
                raise SimulatedCrash(f"after {request.method} {request.url.path}")
        return response


class TimeoutTransport(httpx.AsyncBaseTransport):
    """ASGITransport has no timeouts: this one gives up on answers slower than `seconds`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float):
        self.inner, self.seconds = inner, seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), self.seconds)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None


class RecordingLimits(EndpointLimits):
    def __init__(self) -> None:
        super().__init__({})
        self.slots: list[tuple[str, str]] = []

    def slot(self, account_id: str, endpoint: str):
        self.slots.append((account_id, endpoint))
        return super().slot(account_id, endpoint)


@dataclass(frozen=True)
class CrashPoint:
    name: str
    stage: str | None = None  # die at this journal save…
    before_save: bool = False  # …before it is written: the platform answered, nothing was kept
    request: Callable[[httpx.Request], bool] | None = None  # or after this HTTP request was handled
    nth: int = 1


def is_put(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.headers.get("content-length") != "0"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crash_point" in metafunc.fixturenames:
        points = metafunc.cls.crash_points
        metafunc.parametrize("crash_point", points, ids=[p.name.replace(" ", "-") for p in points])


class PlatformClientSuite:
    platform: ClassVar[Platform]
    account: ClassVar[str] = "acct_1"
    url_pattern: ClassVar[str]  # a published URL, for videos
    image_url_pattern: ClassVar[str | None] = None  # None: the platform takes no images
    more_content: ClassVar[list[tuple[ContentType, tuple[str, ...]]]] = []  # other kinds it publishes
    client_options: ClassVar[dict[str, Any]] = {}
    first_operation: ClassVar[str]  # the fault-hook name of the first call publish makes
    create_operation: ClassVar[str]  # the call that creates the remote object
    expected_endpoints: ClassVar[set[str]]  # the per-account caps a publish goes through
    # (status, body, headers, expected class, expected code) replies of the first call
    error_cases: ClassVar[list[tuple[int, dict, dict, ErrorClass, str]]] = []
    crash_points: ClassVar[list[CrashPoint]] = []
    processing_failure: ClassVar[tuple[ErrorClass, str]]  # how a transient processing failure reads
    daily_cap: ClassVar[tuple[dict[str, Any], str]]  # sandbox settings, and the quota code they cause

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
    def policy(self, tmp_path: Path) -> MediaPolicy:
        return MediaPolicy.sandbox().with_roots(tmp_path)

    @pytest.fixture
    def client(self, http, policy) -> PlatformClient:
        return self.make_client(http, policy)

    def make_client(self, http: httpx.AsyncClient, policy: MediaPolicy, **options: Any) -> PlatformClient:
        return build_client(self.platform, http, f"{ROOT}/{self.platform.value}",
                            **self.media_options(http, policy), retry=FAST, **{**self.client_options, **options})

    def media_options(self, http, policy) -> dict[str, Any]:
        return {"media_http": http, "media_policy": policy}

    def request(self, tmp_path: Path, account: str | None = None) -> PublishRequested:
        """A publish that goes through every step this platform has (upload where it has one)."""
        return publish_request(self.platform, account or self.account, ContentType.VIDEO, VIDEO)

    def store(self, app):
        return getattr(app.state.sandbox, self.platform.value)

    async def published(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        return (await http.get(f"{ROOT}/_sandbox/published")).json()

    async def stats(self, http: httpx.AsyncClient) -> dict[str, Any]:
        return (await http.get(f"{ROOT}/_sandbox/stats")).json()

    async def inject(self, http: httpx.AsyncClient, **rule: Any) -> None:
        reply = await http.post(f"{ROOT}/_sandbox/faults", json={"platform": self.platform.value, **rule})
        assert reply.status_code == 201, reply.text

    async def follow(self, client: PlatformClient, handle: RemoteHandle, account: str | None = None) -> StatusReport:
        for _ in range(200):
            report = await client.check_status(handle, f"sandbox:{account or self.account}", account or self.account)
            if report.state is not ObservedState.PROCESSING:
                return report
            await asyncio.sleep(0.02)
        raise AssertionError(f"still processing: {report}")

    async def publish_and_follow(self, client, content_type: ContentType, *urls: str):
        outcome = await client.publish(publish_request(self.platform, self.account, content_type, *urls),
                                       self.token)
        assert isinstance(outcome, (Accepted, Published)), outcome
        report = await self.follow(client, outcome.handle)
        assert report.state is ObservedState.PUBLISHED, report
        if isinstance(outcome, Published):  # live at once: the URL is the one the poller finds
            assert outcome.url == report.url
        return outcome.handle, report

    async def published_once(self, client, http, request, journal) -> RemoteHandle:
        """Publish `request` again with `journal`; it must end published, once."""
        outcome = await client.publish(again(request), f"sandbox:{request.account_id}", journal)
        report = await self.follow(client, outcome.handle, request.account_id)
        assert report.state is ObservedState.PUBLISHED, report
        records = [r for r in await self.published(http) if r["accountId"] == request.account_id]
        assert [r["remoteId"] for r in records] == [outcome.handle.id], records
        assert (await self.stats(http))["duplicates"] == 0
        return outcome.handle

    # -- flows -------------------------------------------------------------------------------

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
        for content_type, urls in self.more_content:
            handle, report = await self.publish_and_follow(client, content_type, *urls)
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

    async def test_calls_go_through_the_accounts_caps(self, http, policy):
        limits = RecordingLimits()
        client = self.make_client(http, policy, limits=limits)
        outcome = await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                       self.token)
        await self.follow(client, outcome.handle)
        assert {account for account, _ in limits.slots} == {self.account}
        assert self.expected_endpoints <= {endpoint for _, endpoint in limits.slots}

    # -- errors ------------------------------------------------------------------------------

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

    async def test_server_errors_and_transport_failures_are_retryable(self, client, app, http, policy):
        self.store(app).faults = AnswerWith(self.first_operation, Response("upstream broke", 503))
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                 self.token)
        assert raised.value.error_class is ErrorClass.RETRYABLE

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as broken:
            offline = build_client(self.platform, broken, f"{ROOT}/{self.platform.value}", retry=FAST,
                                   **self.media_options(http, policy))  # the media host still answers
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

    # -- every fault class, from the sandbox -------------------------------------------------

    async def test_transient_server_errors_are_retried_in_place(self, client, http, tmp_path):
        await self.inject(http, kind="server_error", count=2)
        outcome = await client.publish(self.request(tmp_path), self.token)
        assert (await self.follow(client, outcome.handle)).state is ObservedState.PUBLISHED
        assert (await self.stats(http))["faultsInjected"] == {"server_error": 2}
        assert len(await self.published(http)) == 1

    async def test_a_short_rate_limit_is_waited_out_in_place(self, client, http, tmp_path):
        await self.inject(http, kind="rate_limit", operation=self.create_operation, count=1, waitSeconds=0.05)
        outcome = await client.publish(self.request(tmp_path), self.token)
        assert (await self.follow(client, outcome.handle)).state is ObservedState.PUBLISHED
        assert (await self.stats(http))["faultsInjected"] == {"rate_limit": 1}

    async def test_a_long_rate_limit_goes_back_with_the_servers_wait(self, client, http, tmp_path):
        await self.inject(http, kind="rate_limit", operation=self.create_operation, count=1, waitSeconds=30)
        with pytest.raises(PlatformError) as raised:
            await client.publish(self.request(tmp_path), self.token)
        assert raised.value.error_class is ErrorClass.RATE_LIMITED
        assert raised.value.retry_after == pytest.approx(30, abs=1)
        assert await self.published(http) == []

    async def test_slow_answers_are_retried_where_that_is_safe(self, app, policy, tmp_path):
        async with httpx.AsyncClient(transport=TimeoutTransport(httpx.ASGITransport(app=app), 0.3)) as http:
            client = self.make_client(http, policy)
            await self.inject(http, kind="timeout", operation=self.create_operation, count=1, waitSeconds=2)
            await self.inject(http, kind="timeout", exclude=[self.create_operation], count=2, waitSeconds=2)
            outcome = await client.publish(self.request(tmp_path), self.token)
            assert (await self.follow(client, outcome.handle)).state is ObservedState.PUBLISHED
            assert (await self.stats(http))["faultsInjected"] == {"timeout": 3}
            assert len(await self.published(http)) == 1

    async def test_quota_exhausted_is_deferred_with_its_window(self, client, http, tmp_path):
        await self.inject(http, kind="quota", operation=self.create_operation, count=1)
        with pytest.raises(PlatformError) as raised:
            await client.publish(self.request(tmp_path), self.token)
        assert raised.value.error_class is ErrorClass.QUOTA
        assert await self.published(http) == []

    async def test_the_platforms_own_daily_cap_is_quota(self, policy, tmp_path):
        settings, code = self.daily_cap
        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.05, **settings))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            client = self.make_client(http, policy)
            await client.publish(self.request(tmp_path), self.token)
            created = (await self.stats(http))[self.platform.value]["created"]
            with pytest.raises(PlatformError) as raised:
                await client.publish(self.request(tmp_path), self.token)
            assert (raised.value.error_class, raised.value.code) == (ErrorClass.QUOTA, code)
            assert raised.value.retry_after is None or raised.value.retry_after > 0
            if self.platform is Platform.INSTAGRAM:  # read before publishing: nothing was created
                assert (await self.stats(http))[self.platform.value]["created"] == created

    async def test_token_expiry_mid_way_keeps_the_remote_object_and_the_next_call_resumes(
            self, client, http, tmp_path):
        await self.inject(http, kind="auth_expired", operation=self.mid_operation, count=1, skip=self.mid_skip)
        journal, request = MemoryJournal(), self.request(tmp_path)
        with pytest.raises(PlatformError) as raised:
            await client.publish(request, self.token, journal)
        assert raised.value.error_class is ErrorClass.AUTH
        assert (await journal.load()).stage == CREATED
        await self.published_once(client, http, request, journal)
        assert (await self.stats(http))[self.platform.value]["created"] == self.objects_per_post

    async def test_processing_failure_is_reported_with_its_reason_and_then_made_afresh(
            self, client, http, tmp_path):
        await self.inject(http, kind="processing_failure", count=1)
        journal, request = MemoryJournal(), self.request(tmp_path)
        error_class, code = self.processing_failure
        try:
            outcome = await client.publish(request, self.token, journal)
        except PlatformError as error:  # found while waiting for the container
            assert (error.error_class, error.code) == (error_class, code)
        else:
            report = await self.follow(client, outcome.handle)
            assert report.state is ObservedState.FAILED
            assert (report.error.error_class, report.error.code) == (error_class, code)
        assert await self.published(http) == []
        await self.published_once(client, http, request, journal)

    async def test_a_crash_at_any_step_then_another_attempt_publishes_exactly_once(
            self, crash_point: CrashPoint, app, http, policy, tmp_path):
        journal, request = MemoryJournal(), self.request(tmp_path)
        first = journal if crash_point.stage is None else CrashingJournal(journal, crash_point.stage,
                                                                            crash_point.before_save)
        transport = httpx.ASGITransport(app=app)
        if crash_point.request is not None:
            transport = CrashingTransport(transport, crash_point.request, crash_point.nth)
        async with httpx.AsyncClient(transport=transport) as dying:
            with pytest.raises(SimulatedCrash):
                await self.make_client(dying, policy).publish(request, self.token, first)
        # a new process: a fresh client, the journal from the database, the request sent again
        await self.published_once(self.make_client(http, policy), http, request, journal)

    async def test_a_request_sent_again_with_the_queues_handle_does_not_post_again(self, client, http, tmp_path):
        request = self.request(tmp_path)
        outcome = await client.publish(request, self.token)
        resent = again(request).model_copy(update={"remote_handle": outcome.handle})
        assert (await client.publish(resent, self.token, MemoryJournal())).handle.id == outcome.handle.id
        await self.follow(client, outcome.handle)
        assert len(await self.published(http)) == 1
        assert (await self.stats(http))[self.platform.value]["created"] == self.objects_per_post

    # per platform
    mid_operation: ClassVar[str]  # where a token expiry strikes after the remote object exists
    mid_skip: ClassVar[int] = 0
    objects_per_post: ClassVar[int] = 1  # remote objects one publish creates (the sandbox's "created")


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


def local_video(tmp_path: Path, size: int, name: str = "clip.mp4") -> str:
    path = tmp_path / name
    with path.open("wb") as out:
        out.truncate(size)  # sparse: no need to hold it in memory to write it
    return path.as_uri()


class TestTikTokClient(PlatformClientSuite):
    platform = Platform.TIKTOK
    url_pattern = r"https://www\.tiktok\.com/@acct_1/video/\d+"
    image_url_pattern = r"https://www\.tiktok\.com/@acct_1/photo/\d+"
    more_content = [(ContentType.REEL, (VIDEO,)), (ContentType.IMAGE, (IMAGE, f"{IMAGE}&n=2", f"{IMAGE}&n=3"))]
    client_options = {"chunk_size": 5 * MIB}
    first_operation = "tiktok.creator_info"
    create_operation = "video_init"
    expected_endpoints = {"creator_info", "video_init", "status_fetch"}
    error_cases = [
        (429, tiktok_error("rate_limit_exceeded"), {}, ErrorClass.RATE_LIMITED, "rate_limit_exceeded"),
        (403, tiktok_error("spam_risk_too_many_posts"), {}, ErrorClass.QUOTA, "spam_risk_too_many_posts"),
        (401, tiktok_error("scope_not_authorized"), {}, ErrorClass.AUTH, "scope_not_authorized"),
        (200, tiktok_error("unaudited_client_can_only_post_to_private_accounts"), {}, ErrorClass.PERMANENT,
         "unaudited_client_can_only_post_to_private_accounts"),
    ]
    processing_failure = (ErrorClass.RETRYABLE, "internal")
    daily_cap = ({"tiktok_daily_posts": 1}, "spam_risk_too_many_posts")
    mid_operation = "upload"
    mid_skip = 1  # the second chunk
    crash_points = [
        CrashPoint("init answered nothing stored", stage=CREATED, before_save=True),
        CrashPoint("publish id stored no byte sent", stage=CREATED),
        CrashPoint("after the first chunk", request=is_put, nth=1),
        CrashPoint("after the last chunk", request=is_put, nth=2),
        CrashPoint("accepted result never sent", stage=ACCEPTED),
    ]

    def request(self, tmp_path: Path, account: str | None = None) -> PublishRequested:
        # a local file goes up in chunks: 2 of 5 MiB, the remainder in the last
        return publish_request(self.platform, account or self.account, ContentType.VIDEO,
                               local_video(tmp_path, 2 * 5 * MIB + 123))

    async def test_local_file_goes_up_in_chunks(self, client, app, tmp_path: Path):
        outcome = await client.publish(self.request(tmp_path), self.token)
        assert outcome.handle.id.startswith("v_pub_file~")
        assert "uploadUrl" not in outcome.handle.extra  # a credential: it stays in the journal
        report = await self.follow(client, outcome.handle)
        assert re.fullmatch(self.url_pattern, report.url)
        [publish] = self.store(app).publishes.values()
        assert (publish.total_chunks, publish.received) == (2, 2 * 5 * MIB + 123)

    async def test_remote_media_outside_the_verified_prefixes_is_streamed_up(self, http, app, policy):
        client = self.make_client(http, policy, pull_prefixes=("https://cdn.verified.example/",))
        outcome = await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                       self.token)
        assert outcome.handle.id.startswith("v_pub_file~")
        [publish] = self.store(app).publishes.values()
        assert (publish.source, publish.received) == ("FILE_UPLOAD", 700_000)

    async def test_a_video_tiktok_will_not_pull_from_an_unverified_domain_is_streamed_up(self, policy):
        # the app verified another domain than the media's; no prefixes configured here
        app = sandbox.create_app(sandbox.SandboxSettings(
            processing_seconds=0, tiktok_verified_url_prefixes=("https://cdn.verified.example/",)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            journal = MemoryJournal()
            outcome = await self.make_client(http, policy).publish(
                publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token, journal)
            assert outcome.handle.id.startswith("v_pub_file~")
            [publish] = self.store(app).publishes.values()
            assert (publish.source, publish.received) == ("FILE_UPLOAD", 700_000), "one post, its bytes sent"
            assert [g.stage for g in journal.generations] == [ABANDONED, ACCEPTED], "the refused pull set aside"
            with pytest.raises(PlatformError) as raised:  # photos can only be pulled
                await self.make_client(http, policy).publish(
                    publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "url_ownership_unverified")

    async def test_a_public_post_in_moderation_is_followed_until_its_address_comes(self, policy):
        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, tiktok_moderation_seconds=0.3))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            client = self.make_client(http, policy)
            outcome = await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                           self.token)
            early = await client.check_status(outcome.handle, self.token, self.account)
            assert (early.state, early.url) == (ObservedState.PROCESSING, None), "published, its id not out yet"
            assert "moderation" in early.detail
            await asyncio.sleep(0.35)
            later = await client.check_status(outcome.handle, self.token, self.account)
            assert later.state is ObservedState.PUBLISHED and re.fullmatch(self.url_pattern, later.url)
            # an id that never comes: after an hour's wait, published without an address
            stuck = self.make_client(http, policy, clock=lambda: time.time() + 2 * 3600)  # past the hour
            app.state.sandbox.tiktok.publishes[outcome.handle.id].post_id = None
            report = await stuck.check_status(outcome.handle, self.token, self.account)
        assert (report.state, report.url) == (ObservedState.PUBLISHED, None)

    async def test_private_account_posts_to_its_followers(self, client, app, http):
        app.state.sandbox.tiktok.private_accounts.add(self.account)
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, VIDEO)
        [record] = await self.published(http)
        assert record["privacy"] == "FOLLOWER_OF_CREATOR"

    async def test_unaudited_client_posts_self_only_and_only_to_private_accounts(self, http, policy):
        client = self.make_client(http, policy, unaudited=True)
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, VIDEO)
        assert report.url is None  # SELF_ONLY posts get no public id
        assert [r["privacy"] for r in await self.published(http)] == ["SELF_ONLY"]

        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, tiktok_unaudited=True))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as strict:
            with pytest.raises(PlatformError) as raised:
                await self.make_client(strict, policy).publish(
                    publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        assert (raised.value.error_class, raised.value.code) == (
            ErrorClass.PERMANENT, "unaudited_client_can_only_post_to_private_accounts")

    async def test_a_pull_init_without_an_answer_goes_to_review_and_is_never_sent_again(self, app, policy):
        async with httpx.AsyncClient(transport=TimeoutTransport(httpx.ASGITransport(app=app), 0.3)) as http:
            client = self.make_client(http, policy)
            await self.inject(http, kind="timeout", operation="video_init", waitSeconds=2)
            journal = MemoryJournal()
            request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO)
            for attempt in (request, again(request)):
                with pytest.raises(PlatformError) as raised:
                    await client.publish(attempt, self.token, journal)
                assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "needs_review")
            rules = (await http.get(f"{ROOT}/_sandbox/faults")).json()["rules"]
        assert rules[0]["hits"] == 1, "the second attempt did not send the init again"

    async def test_a_pull_init_answered_unreadably_is_not_sent_again_but_reviewed(self, client, app, http):
        # a 2xx was taken: the post may exist, and a second init could post it twice
        class Garbled(AnswerWith):
            hits = 0

            async def before(self, operation, request, account=None):
                answer = await super().before(operation, request, account)
                self.hits += answer is not None
                return answer

        self.store(app).faults = garbled = Garbled("tiktok.video_init", Response(b"<html>ok</html>", 200))
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        assert (raised.value.code, garbled.hits) == ("needs_review", 1)

    async def test_a_pull_init_tiktok_refused_is_sent_again_on_the_next_try_not_reviewed(self, client, http):
        await self.inject(http, kind="server_error", operation="video_init", count=FAST.attempts)
        journal = MemoryJournal()
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO)
        with pytest.raises(PlatformError) as raised:
            await client.publish(request, self.token, journal)
        assert raised.value.error_class is ErrorClass.RETRYABLE, "every init answered 5xx: none was taken"
        outcome = await client.publish(again(request), self.token, journal)
        assert outcome.handle.id.startswith("v_pub_url~")
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]

    async def test_an_intent_stored_though_its_save_failed_is_sent_again_not_reviewed(self, client, http):
        class CommitAnswerLost(MemoryJournal):  # the database cut after the commit, before the reply
            async def save(self, stage, handle):
                await super().save(stage, handle)
                if stage == INTENT and len(self.generations) == 1:
                    raise ConnectionResetError("connection lost")

        journal = CommitAnswerLost()
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO)
        with pytest.raises(ConnectionResetError):
            await client.publish(request, self.token, journal)
        assert (await journal.load()).stage == INTENT and await self.published(http) == []
        outcome = await client.publish(again(request), self.token, journal)
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]
        # an intent this process did not fail to save stays a matter for review
        other = MemoryJournal([Checkpoint(INTENT, RemoteHandle(
            kind="tiktok.publish_id", id="", extra={"source": "PULL_FROM_URL", "intent": "another"}))])
        with pytest.raises(PlatformError) as raised:
            await client.publish(again(request), self.token, other)
        assert raised.value.code == "needs_review"

    async def test_a_pull_init_waiting_for_its_cap_is_not_journalled_yet(self, http, policy):
        client = self.make_client(http, policy, limits=EndpointLimits({"video_init": Cap(1, 60.0)}))
        await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        journal = MemoryJournal()
        waiting = asyncio.create_task(client.publish(
            publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token, journal))
        await asyncio.sleep(0.2)  # the minute's one init is spent: this one waits for the next
        try:
            assert not waiting.done()
            assert await journal.load() is None, "a crash while it waits leaves nothing to review"
        finally:
            waiting.cancel()

    async def test_a_pull_init_handed_over_while_it_waits_for_its_cap_leaves_nothing_to_review(self, http, policy):
        """Its partition went to another publisher: it stops before the call, with nothing
        journalled, so the new owner sends the init (limits.py)."""
        limits = EndpointLimits({"video_init": Cap(1, 60.0)})
        client = self.make_client(http, policy, limits=limits)
        with serving(0):
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        journal = MemoryJournal()

        async def next_one():
            with serving(0):
                return await client.publish(
                    publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token, journal)

        waiting = asyncio.create_task(next_one())
        await asyncio.sleep(0.2)  # the minute's one init is spent: this one waits for the next
        limits.lost_partitions({0})
        await asyncio.wait({waiting}, timeout=2.0)  # at once, not after the cap's minute
        assert waiting.done() and isinstance(waiting.exception(), HandedOver)
        assert await journal.load() is None and len(await self.published(http)) == 1

    async def test_a_pull_init_refused_then_handed_over_before_its_retry_can_be_sent_again(self, http, policy):
        """TikTok refused it (a 5xx: not taken), and the partition went before the retry: its
        intent is set aside, so the new owner sends a new init instead of stopping for review."""
        limits = EndpointLimits({"video_init": Cap(100, 60.0, burst=100)})
        client = self.make_client(http, policy, limits=limits)
        await self.inject(http, kind="server_error", operation="video_init", count=1)
        journal = MemoryJournal()
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO)
        sleep = client.retry.sleep

        async def handed_over_meanwhile(seconds):  # the rebalance comes during the retry's pause
            limits.lost_partitions({0})
            await sleep(seconds)

        client.retry = replace(client.retry, sleep=handed_over_meanwhile)
        with serving(0), pytest.raises(HandedOver):
            await client.publish(request, self.token, journal)
        assert (await journal.load()).stage == ABANDONED
        outcome = await client.publish(again(request), self.token, journal)  # the new owner
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]

    async def test_only_a_few_pull_inits_wait_between_their_intent_and_their_answer(self, app, policy):
        held, release, places = [], asyncio.Event(), 3

        class HoldInits(httpx.AsyncBaseTransport):  # TikTok slow to answer inits
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.path.endswith("/video/init/"):
                    held.append(request)
                    await release.wait()
                return await httpx.ASGITransport(app=app).handle_async_request(request)

        async with httpx.AsyncClient(transport=HoldInits()) as http:
            client = self.make_client(http, policy, pull_inits_at_once=places)
            journals = [MemoryJournal() for _ in range(3 * places)]
            publishes = [asyncio.create_task(client.publish(
                publish_request(self.platform, f"acct_{i}", ContentType.VIDEO, VIDEO), f"sandbox:acct_{i}", journal))
                for i, journal in enumerate(journals)]
            for _ in range(100):  # until the first inits are out, and a while longer
                await asyncio.sleep(0.02)
                if len(held) >= places:
                    break
            await asyncio.sleep(0.1)
            journalled = [j for j in journals if j.generations and j.generations[-1].stage == INTENT]
            # a crash now would send these, and only these, to review
            assert len(held) == len(journalled) == places
            release.set()
            outcomes = await asyncio.gather(*publishes)
        assert len({o.handle.id for o in outcomes}) == len(journals)
        assert all(j.generations[-1].stage == ACCEPTED for j in journals)

    async def test_the_sandboxes_minute_limit_is_rate_limited_for_a_minute(self, client, http):
        for _ in range(6):
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO), self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RATE_LIMITED, "rate_limit_exceeded")
        assert raised.value.retry_after == 60.0

    async def test_a_lost_chunk_is_found_and_sent_again(self, client, http, app, tmp_path):
        await self.inject(http, kind="lost_chunk", count=1)  # the first chunk: acknowledged, not kept
        outcome = await client.publish(self.request(tmp_path), self.token)
        assert (await self.follow(client, outcome.handle)).state is ObservedState.PUBLISHED
        [publish] = self.store(app).publishes.values()
        assert publish.received == publish.video_size
        assert (await self.stats(http))["faultsInjected"] == {"lost_chunk": 1}


class TestInstagramClient(PlatformClientSuite):
    platform = Platform.INSTAGRAM
    account = "17841400000000001"
    url_pattern = r"https://www\.instagram\.com/reel/[\w-]+/"
    image_url_pattern = r"https://www\.instagram\.com/p/[\w-]+/"
    more_content = [(ContentType.REEL, (VIDEO,)), (ContentType.STORY, (IMAGE,)), (ContentType.STORY, (VIDEO,)),
                    (ContentType.IMAGE, (IMAGE, VIDEO, f"{IMAGE}&n=3"))]
    client_options = {"poll_interval": 0.01, "poll_timeout": 5.0}
    first_operation = "instagram.content_publishing_limit"
    create_operation = "media.post"
    expected_endpoints = {"content_publishing_limit", "media", "media_publish", "node"}
    error_cases = [
        (400, graph_error(9, 2207042), {}, ErrorClass.QUOTA, "9/2207042"),
        (400, graph_error(4), {}, ErrorClass.RATE_LIMITED, "4"),
        (400, graph_error(4, 2207051), {}, ErrorClass.PERMANENT, "4/2207051"),
        (400, graph_error(-2, 2207003), {}, ErrorClass.RETRYABLE, "-2/2207003"),
        (400, graph_error(190, 463), {}, ErrorClass.AUTH, "190/463"),
        (400, graph_error(36004, 2207010), {}, ErrorClass.PERMANENT, "36004/2207010"),
    ]
    processing_failure = (ErrorClass.RETRYABLE, "ERROR/2207053")
    daily_cap = ({"instagram_publish_limit": 1}, "content_publishing_limit")
    mid_operation = "media_publish"
    crash_points = [
        CrashPoint("container made nothing stored", stage=CREATED, before_save=True),
        CrashPoint("container stored", stage=CREATED),
        CrashPoint("media_publish done answer lost", request=lambda r: r.url.path.endswith("/media_publish")),
        CrashPoint("accepted result never sent", stage=ACCEPTED),
    ]

    def media_options(self, http, policy) -> dict[str, Any]:
        return {"media_policy": policy}  # Instagram fetches the media itself

    async def test_a_published_media_comes_back_live_with_its_permalink(self, client, http):
        outcome = await client.publish(
            publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert isinstance(outcome, Published)
        [record] = await self.published(http)
        assert (outcome.handle.id, outcome.url) == (record["remoteId"], record["url"])

    async def test_an_image_is_published_without_its_container_read_first(self, client, app, http):
        self.store(app).faults = seen = Operations()
        outcome = await client.publish(
            publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert isinstance(outcome, Published)
        assert seen.calls == ["instagram.content_publishing_limit", "instagram.media.post",
                              "instagram.media_publish", "instagram.node:permalink,media_product_type"]

    async def test_an_image_not_ready_yet_is_waited_for_and_published_once(self, policy):
        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, instagram_image_seconds=0.3))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            client = self.make_client(http, policy)
            self.store(app).faults = seen = Operations()
            outcome = await client.publish(
                publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
            assert isinstance(outcome, Published)
            assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]
        tries = seen.calls.count("instagram.media_publish")
        assert tries >= 2, "refused as not ready (2207027) first"
        assert "instagram.node:status_code,status" in seen.calls, "looked at between tries"

    async def test_a_container_found_failed_between_publish_tries_is_not_tried_again_and_is_made_anew(self, client, app, http):
        # processing ends in ERROR with a transient subcode: media_publish is refused as not
        # ready meanwhile; once the container's status says ERROR it is not asked again
        await self.inject(http, kind="processing_failure", count=1, reason="2207001")
        self.store(app).faults = seen = Operations(self.store(app).faults)
        journal, request = MemoryJournal(), publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE)
        with pytest.raises(PlatformError) as raised:
            await client.publish(request, self.token, journal)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "ERROR/2207001")
        assert raised.value.handle is not None and seen.calls[-1] == "instagram.node:status_code,status"
        outcome = await client.publish(again(request), self.token, journal)  # a new container
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]
        assert len(self.store(app).containers) == 2

    async def test_without_its_permalink_it_is_accepted_for_the_poller_to_follow(self, client, app, http):
        self.store(app).faults = PermalinkUnanswered()
        outcome = await client.publish(
            publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert isinstance(outcome, Accepted), "published, but its URL is the poller's to find"
        self.store(app).faults = sandbox.Faults()
        report = await self.follow(client, outcome.handle)
        [record] = await self.published(http)
        assert (report.state, report.url) == (ObservedState.PUBLISHED, record["url"])

    @pytest.mark.parametrize("content_type", [ContentType.IMAGE, ContentType.STORY])
    async def test_a_post_without_caption_whose_publish_answer_was_lost_is_found(
            self, content_type, app, http, policy):
        # found among the account's media (or its stories, for a story) although no caption tells it
        request = publish_request(self.platform, self.account, content_type, IMAGE, caption="", hashtags=())
        journal = MemoryJournal()
        lost = CrashingTransport(httpx.ASGITransport(app=app), lambda r: r.url.path.endswith("/media_publish"), 1)
        async with httpx.AsyncClient(transport=lost) as dying:
            with pytest.raises(SimulatedCrash):
                await self.make_client(dying, policy).publish(request, self.token, journal)
        await self.published_once(self.make_client(http, policy), http, request, journal)

    async def first_attempt_failing(self, client, app, faults: sandbox.Faults
                                    ) -> tuple[PublishRequested, MemoryJournal, PlatformError]:
        """An image's first attempt under `faults`, which must fail: its request, journal and error."""
        journal = MemoryJournal()
        request = publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE)
        self.store(app).faults = faults
        with pytest.raises(PlatformError) as raised:
            await client.publish(request, self.token, journal)
        return request, journal, raised.value

    async def test_a_container_gone_between_publish_tries_is_made_again_on_the_next_attempt(
            self, client, app, http):
        class GoneAfterAFailedPublish(sandbox.Faults):
            tried = False

            async def before(self, operation, request, account=None):
                if operation == "instagram.media_publish":
                    self.tried = True
                    return JSONResponse(graph_error(-1, 2207001), 400)  # retryable: tried again
                if self.tried and operation == "instagram.node" and "status_code" in request.query_params.get(
                        "fields", ""):
                    return JSONResponse(graph_error(100, 33), 400)  # the container no longer exists
                return None

        request, journal, error = await self.first_attempt_failing(client, app, GoneAfterAFailedPublish())
        assert (error.error_class, error.code) == (ErrorClass.RETRYABLE, "container_gone")
        self.store(app).faults = sandbox.Faults()
        self.store(app).containers.clear()  # gone indeed
        outcome = await client.publish(again(request), self.token, journal)
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]
        assert len(self.store(app).containers) == 1, "a new container for the next attempt"

    async def test_a_container_media_publish_refuses_for_good_is_replaced_on_the_next_attempt(
            self, client, app, http):
        class FirstContainerRefused(sandbox.Faults):  # 24/2207006: its media not found, whatever is tried
            first: str | None = None

            async def before(self, operation, request, account=None):
                if operation != "instagram.media_publish":
                    return None
                form = parse_qs((await request.body()).decode())  # the body is kept for the handler
                creation_id = (form.get("creation_id") or request.query_params.getlist("creation_id") or [None])[0]
                self.first = self.first or creation_id
                if creation_id == self.first:
                    return JSONResponse(graph_error(24, 2207006), 400)
                return None

        request, journal, error = await self.first_attempt_failing(client, app, FirstContainerRefused())
        assert (error.error_class, error.handle) == (ErrorClass.RETRYABLE, None)
        outcome = await client.publish(again(request), self.token, journal)
        assert [r["remoteId"] for r in await self.published(http)] == [outcome.handle.id]
        assert len(self.store(app).containers) == 2, "a new container, which published"

    async def test_handle_keeps_the_container(self, client):
        outcome = await client.publish(
            publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
        assert outcome.handle.kind == "instagram.media"
        assert outcome.handle.extra["igUserId"] == self.account
        assert outcome.handle.extra["containerId"].isdigit()

    async def test_carousel_is_its_children_then_one_post(self, client, app, http):
        handle, report = await self.publish_and_follow(client, ContentType.IMAGE, IMAGE, VIDEO)
        assert re.fullmatch(self.image_url_pattern, report.url)
        containers = self.store(app).containers.values()
        assert sorted(c.media_type for c in containers) == ["CAROUSEL", "IMAGE", "VIDEO"]
        assert [r["remoteId"] for r in await self.published(http)] == [handle.id]
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.IMAGE,
                                                 *[IMAGE] * 11), self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "100/2207028")

    async def test_the_limit_read_for_the_ledger_is_a_call_within_the_accounts_cap(self, http, policy, app):
        limits = EndpointLimits({ANY_ENDPOINT: Cap(1, 60.0)})
        client = self.make_client(http, policy, limits=limits)
        limit = await client.publishing_limit(self.account, self.token)
        assert (limit.used, limit.total, limit.window_seconds) == (0, 50, 86400)
        assert not limits.limiter(self.account, "content_publishing_limit").has_capacity(), "it took the cap"
        self.store(app).faults = AnswerWith(self.first_operation, Response("upstream broke", 503))
        unreadable = self.make_client(http, policy)
        assert await unreadable.publishing_limit(self.account, self.token) is None, "never blocks publishing"

    async def test_container_not_ready_in_time_is_pending_and_resumed(self, http, policy):
        client = self.make_client(http, policy, poll_interval=0.01, poll_timeout=0.0)
        journal = MemoryJournal()
        request = publish_request(self.platform, self.account, ContentType.REEL, VIDEO)
        with pytest.raises(PlatformError) as raised:
            await client.publish(request, self.token, journal)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "container_not_ready")
        # not a failure: the queue looks again in a minute (platforms.md's cadence) at no attempt's cost
        wire = raised.value.to_contract()
        assert (wire.pending, wire.retry_after_sec) == (True, 60.0)
        assert raised.value.handle.kind == "instagram.container"
        await asyncio.sleep(0.06)
        handle = await self.published_once(self.make_client(http, policy), http, request, journal)
        assert handle.extra["containerId"] == raised.value.handle.id

    async def test_a_stored_container_that_vanished_is_made_again(self, client, app, http, tmp_path):
        journal, request = MemoryJournal(), self.request(tmp_path)
        with pytest.raises(SimulatedCrash):
            await client.publish(request, self.token, CrashingJournal(journal, CREATED, before=False))
        self.store(app).containers.clear()
        handle = await self.published_once(client, http, request, journal)
        assert handle.extra["containerId"] in self.store(app).containers

    async def test_a_post_that_was_the_last_within_the_limit_is_recovered_not_deferred(self, policy, tmp_path):
        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.05, instagram_publish_limit=1))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            journal, request = MemoryJournal(), self.request(tmp_path)
            publishes = CrashingTransport(httpx.ASGITransport(app=app), lambda r: r.url.path.endswith("/media_publish"))
            async with httpx.AsyncClient(transport=publishes) as dying:
                with pytest.raises(SimulatedCrash):  # published: 1 of 1 used, the answer lost
                    await self.make_client(dying, policy).publish(request, self.token, journal)
            await self.published_once(self.make_client(http, policy), http, request, journal)

    async def test_usage_at_100_percent_stops_calls_for_the_account(self, policy):
        app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, instagram_calls_per_hour=4))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
            client = self.make_client(http, policy)
            await client.publish(publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE), self.token)
            before = app.state.sandbox.requests["instagram"]
            with pytest.raises(PlatformError) as raised:
                await client.publish(publish_request(self.platform, self.account, ContentType.IMAGE, IMAGE),
                                     self.token)
            assert (raised.value.error_class, raised.value.code) == (ErrorClass.RATE_LIMITED, "usage_limit")
            assert raised.value.retry_after > 3000  # the window's oldest call leaves in about an hour
            assert app.state.sandbox.requests["instagram"] == before, "no call was made"


class TestYouTubeClient(PlatformClientSuite):
    platform = Platform.YOUTUBE
    url_pattern = r"https://www\.youtube\.com/watch\?v=[\w-]{11}"
    more_content = [(ContentType.REEL, (VIDEO,)), (ContentType.STORY, (VIDEO,))]
    client_options = {"chunk_size": 256 * 1024}  # 700,000 bytes: two full chunks and a tail
    first_operation = "youtube.insert"
    create_operation = "insert"
    expected_endpoints = {"videos_insert", "videos_list"}
    error_cases = [
        (403, google_error(403, "quotaExceeded", "youtube.quota"), {}, ErrorClass.QUOTA, "quotaExceeded"),
        (429, google_error(429, "rateLimitExceeded"), {"Retry-After": "7"}, ErrorClass.RATE_LIMITED,
         "rateLimitExceeded"),
        (400, google_error(400, "uploadLimitExceeded"), {}, ErrorClass.QUOTA, "uploadLimitExceeded"),
        (503, google_error(503, "backendError", "global"), {}, ErrorClass.RETRYABLE, "backendError"),
        (400, google_error(400, "invalidTitle"), {}, ErrorClass.PERMANENT, "invalidTitle"),
    ]
    processing_failure = (ErrorClass.RETRYABLE, "uploadAborted")
    daily_cap = ({"youtube_daily_inserts": 1}, "quotaExceeded")
    mid_operation = "upload"
    mid_skip = 1
    crash_points = [
        CrashPoint("session started nothing stored", stage=CREATED, before_save=True),
        CrashPoint("session stored no byte sent", stage=CREATED),
        CrashPoint("after the first chunk", request=is_put, nth=1),
        CrashPoint("after the last chunk", request=is_put, nth=3),
        CrashPoint("accepted result never sent", stage=ACCEPTED),
    ]

    async def test_metadata_is_explicit_and_within_limits(self, client, app):
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO,
                                  caption="<b>" + "T" * 150 + "\nbody é " * 1000, hashtags=("#a", "b"))
        journal = MemoryJournal()
        outcome = await client.publish(request, self.token, journal)
        video = app.state.sandbox.youtube.videos[outcome.handle.id]
        assert video.status["privacyStatus"] == "public" and "publishAt" not in video.status
        assert video.snippet["title"] == "b" + "T" * 99
        assert len(video.snippet["description"].encode()) <= 5000
        assert video.snippet["tags"] == ["a", "b"]
        assert outcome.handle.extra == {}  # the session URI is a credential: never on the wire

    async def test_a_slot_far_enough_ahead_is_scheduled_natively(self, http, app, policy):
        client = self.make_client(http, policy, schedule_lead=0.5)
        at = (datetime.now(timezone.utc) + timedelta(seconds=1.5)).replace(microsecond=0) + timedelta(seconds=1)
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO, scheduled_time=at)
        outcome = await client.publish(request, self.token)
        video = app.state.sandbox.youtube.videos[outcome.handle.id]
        assert video.status["privacyStatus"] == "private"
        assert datetime.fromisoformat(video.status["publishAt"].replace("Z", "+00:00")) == at
        await asyncio.sleep(0.1)
        early = await client.check_status(outcome.handle, self.token, self.account)
        assert early.state is ObservedState.PROCESSING and early.detail.startswith("scheduled")
        await asyncio.sleep((at - datetime.now(timezone.utc)).total_seconds() + 0.1)
        assert (await client.check_status(outcome.handle, self.token, self.account)).state is ObservedState.PUBLISHED

    async def test_local_file_streams_from_disk(self, client, tmp_path: Path):
        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\2" * (3 * 256 * 1024 + 5))
        handle, report = await self.publish_and_follow(client, ContentType.VIDEO, video.as_uri())
        assert report.url == f"https://www.youtube.com/watch?v={handle.id}"

    async def test_media_of_unknown_length_is_sent_with_open_ranges(self, http, app, policy):
        async def body():
            for _ in range(3):
                yield b"\3" * 200_000

        def media_host(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=body())  # streamed: no Content-Length

        async with httpx.AsyncClient(transport=httpx.MockTransport(media_host)) as media_http:
            client = build_client(self.platform, http, f"{ROOT}/youtube", chunk_size=256 * 1024,
                                  media_http=media_http, media_policy=policy, retry=FAST)
            handle, _ = await self.publish_and_follow(client, ContentType.VIDEO, "https://cdn.example/v.mp4")
        [session] = app.state.sandbox.youtube.sessions.values()
        assert (session.total, session.video_id) == (600_000, handle.id)

    async def test_missing_media_is_permanent_and_opens_no_session(self, client, app, tmp_path):
        with pytest.raises(PlatformError) as raised:
            await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO,
                                                 (tmp_path / "nonexistent.mp4").as_uri()), self.token)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_unavailable")
        assert app.state.sandbox.youtube.sessions == {}

    async def test_interrupted_chunks_resume_from_the_servers_range(self, client, http, app):
        await self.inject(http, kind="server_error", operation="upload", count=1, skip=1)
        await self.inject(http, kind="lost_chunk", count=1)
        outcome = await client.publish(publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO),
                                       self.token)
        [session] = app.state.sandbox.youtube.sessions.values()
        assert (session.received, session.video_id) == (700_000, outcome.handle.id)
        assert (await self.stats(http))["faultsInjected"] == {"server_error": 1, "lost_chunk": 1}

    async def test_an_expired_session_is_looked_for_among_the_uploads_before_a_new_one(self, client, http, app,
                                                                                       policy):
        async def crash_after_put(nth: int, request: PublishRequested, journal: MemoryJournal) -> None:
            async with httpx.AsyncClient(transport=CrashingTransport(httpx.ASGITransport(app=app), is_put, nth)) as dying:
                with pytest.raises(SimulatedCrash):
                    await self.make_client(dying, policy).publish(request, self.token, journal)
            app.state.sandbox.youtube.sessions.clear()  # then the session expires

        journal = MemoryJournal()
        request = publish_request(self.platform, self.account, ContentType.VIDEO, VIDEO)
        # the last chunk went through but its answer died with the process
        await crash_after_put(3, request, journal)
        handle = await self.published_once(client, http, request, journal)
        assert handle.id in app.state.sandbox.youtube.videos

        # a session that expired before its last byte: nothing to find, a new upload
        journal, request = MemoryJournal(), publish_request(self.platform, self.account, ContentType.VIDEO,
                                                             VIDEO, caption="another post")
        await crash_after_put(1, request, journal)
        outcome = await client.publish(again(request), self.token, journal)
        assert (await journal.load()).stage == ACCEPTED
        assert len(app.state.sandbox.youtube.sessions) == 1
        assert outcome.handle.id != handle.id


def test_only_graph_code_100_means_a_container_is_gone():
    from services.publishers.platforms._instagram import _gone

    def error(code: str) -> PlatformError:
        return PlatformError(ErrorClass.PERMANENT, code, "")

    assert _gone(error("100")) and _gone(error("100/33"))
    assert not any(_gone(error(code)) for code in ("1000", "10000/1", "10", "190"))
