"""Hypothesis garbles the platforms' answers (status, body, headers) on the way back to each
client: every publish and status check ends, in bounded time, with a result or a classified
PlatformError, never another exception and never a loop."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import httpx
from httpx_aiohttp import AiohttpTransport
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sandbox
from contracts import ContentType, ErrorClass, MediaRef, Platform, PublishRequested, RemoteHandle
from services.publishers.platforms import (
    Accepted,
    MediaPolicy,
    MemoryJournal,
    PlatformError,
    Published,
    RetryRules,
    StatusReport,
    build_client,
)
from services.publishers.platforms._base import send

ROOT = "http://sandbox"
FAST = RetryRules(base_delay=0.001, max_delay=0.005)
OPTIONS = {
    Platform.TIKTOK: {"chunk_size": 5 * 1024 * 1024},
    Platform.INSTAGRAM: {"poll_interval": 0.001, "poll_timeout": 0.2},
    Platform.YOUTUBE: {"chunk_size": 256 * 1024},
}
ACCOUNTS = {Platform.TIKTOK: "fuzz_tt", Platform.INSTAGRAM: "17841400000000077", Platform.YOUTUBE: "UCfuzz"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
statuses = st.sampled_from([200, 201, 204, 206, 308, 400, 401, 403, 404, 409, 429, 500, 502, 503])
mutations = st.one_of(
    st.just(None),  # left alone
    st.tuples(st.just("status"), statuses),
    st.tuples(st.just("body"), json_values.map(orjson.dumps) | st.binary(max_size=40)),
    st.tuples(st.just("both"), statuses, json_values.map(orjson.dumps)),
    st.tuples(st.just("headers"), st.dictionaries(st.sampled_from(["location", "range", "retry-after"]),
                                                  st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
                                                  max_size=2)),
)


class Garbling(httpx.AsyncBaseTransport):
    """The sandbox's real answer, then the n-th mutation drawn for the n-th response."""

    def __init__(self, inner: httpx.AsyncBaseTransport, draw):
        self.inner, self.draw, self.seen = inner, draw, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.seen += 1
        if self.seen > 60:  # plenty to reach every step; later answers are left alone
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        mutation = self.draw(mutations)
        status, headers = response.status_code, {k: v for k, v in response.headers.items()
                                                 if k.lower() != "content-length"}
        if mutation is not None:
            kind = mutation[0]
            if kind in ("status", "both"):
                status = mutation[1]
            if kind == "body":
                body = mutation[1]
            if kind == "both":
                body = mutation[2]
            if kind == "headers":
                headers.update(mutation[1])
        return httpx.Response(status, headers=headers, content=body)


def request(platform: Platform) -> PublishRequested:
    content = ContentType.REEL if platform is Platform.INSTAGRAM else ContentType.VIDEO
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=ACCOUNTS[platform], attempt=1, content_type=content, caption="fuzzed\nanswers",
        hashtags=["#fuzz"], media=[MediaRef(url=f"{ROOT}/media/clip.mp4?bytes=600000")],
        scheduled_time=datetime.now(timezone.utc))


def check(outcome) -> None:
    if isinstance(outcome, PlatformError):
        assert isinstance(outcome.error_class, ErrorClass) and outcome.code and outcome.message
    else:
        assert isinstance(outcome, (Accepted, Published, StatusReport)), outcome


async def run_once(platform: Platform, draw) -> None:
    app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0))
    transport = Garbling(httpx.ASGITransport(app=app), draw)
    async with httpx.AsyncClient(transport=transport, base_url=ROOT) as http:
        client = build_client(platform, http, f"{ROOT}/{platform.value}", retry=FAST,
                              **({} if platform is Platform.INSTAGRAM else {"media_http": http}),
                              media_policy=MediaPolicy.sandbox(), **OPTIONS[platform])
        token = f"sandbox:{ACCOUNTS[platform]}"
        try:
            outcome = await asyncio.wait_for(client.publish(request(platform), token, MemoryJournal()), 20)
        except PlatformError as error:
            outcome = error
        check(outcome)
        handle = outcome.handle if isinstance(outcome, (Accepted, Published)) else None
        if handle is None and isinstance(outcome, PlatformError):
            handle = outcome.handle
        if isinstance(handle, RemoteHandle):
            try:
                report = await asyncio.wait_for(client.check_status(handle, token, ACCOUNTS[platform]), 20)
            except PlatformError as error:
                report = error
            check(report)


@pytest.mark.parametrize("platform", list(Platform))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbled_answers_end_in_a_result_or_a_classified_error(platform, data):
    asyncio.run(run_once(platform, data.draw))


async def test_a_redirect_to_no_url_is_an_unreadable_reply_not_a_crash():
    # httpx parses a 3xx's Location even when it does not follow it (found by the test above)
    answer = httpx.MockTransport(lambda request: httpx.Response(308, headers={"location": "A:0"}))
    async with httpx.AsyncClient(transport=answer) as http:
        with pytest.raises(PlatformError) as raised:
            await send(http, "PUT", "https://upload.example/session")
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "invalid_response")
    assert raised.value.maybe_processed, "the request was taken: an upload is checked before it is sent again"


async def _refused_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_a_connection_never_made_was_never_sent_through_aiohttp_too():
    # httpx-aiohttp raises ConnectTimeout for a refused connection: it must not read as "maybe taken",
    # or a TikTok pull init that never left would go to review
    url = f"http://127.0.0.1:{await _refused_port()}/v2/post/publish/video/init/"
    for transport in (AiohttpTransport(), httpx.AsyncHTTPTransport()):
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(PlatformError) as raised:
                await send(http, "POST", url, json={})
        assert raised.value.error_class is ErrorClass.RETRYABLE
        assert not raised.value.maybe_processed, type(transport).__name__


async def test_a_connection_dropped_after_the_request_was_written_may_have_been_taken():
    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v2/post/publish/video/init/"
    try:
        for transport in (AiohttpTransport(), httpx.AsyncHTTPTransport()):
            async with httpx.AsyncClient(transport=transport) as http:
                with pytest.raises(PlatformError) as raised:
                    await send(http, "POST", url, json={})
            assert raised.value.maybe_processed, type(transport).__name__
    finally:
        server.close()
        await server.wait_closed()
