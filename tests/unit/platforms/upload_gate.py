"""What the upload-bound tests of the chunked clients (TikTok, YouTube) share: the sandbox behind
a gate that holds chunk PUTs and counts the media streams open, a media host that drops, and the
fixtures `app` and `http` (a test module imports `app_fixture` and `http_fixture`, and defines
its own `gate`).

Not a test module: imported as `upload_gate` (the test's folder is on sys.path, as with
`from test_platform_clients import ...`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sized

import httpx
import pytest

import sandbox
from contracts import ContentType, Platform, PublishRequested
from services.publishers.platforms import MemoryJournal, RetryRules
from test_platform_clients import CrashingTransport, SimulatedCrash, publish_request

ROOT = "http://sandbox"
MIB = 1024 * 1024
FAST = RetryRules(base_delay=0.01, max_delay=0.05)
BROKEN = "https://broken.example/clip.mp4"  # streams 300,000 bytes, then drops (`?says=N`: promises N first)


def video_request(platform: Platform, account: str, url: str) -> PublishRequested:
    return publish_request(platform, account, ContentType.VIDEO, url, caption="Launch day", hashtags=("#autopost",))


def token(account: str) -> str:
    return f"sandbox:{account}"


class CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, gate: Gate):
        self.inner, self.gate, self.closed = inner, gate, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self.inner:
            yield piece

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.gate.media_open -= 1
        await self.inner.aclose()


class Gate(httpx.AsyncBaseTransport):
    """The sandbox (platform and media host) with chunk PUTs held until `release` is set.

    Counts media fetches and the media streams open now (`media_open`) and at most; the
    uploads between their first chunk and the reply to their last (`uploading`: the part of an
    upload that holds its buffer) now and at most; the chunks sent per upload URL. A platform's
    gate says which requests are chunks and which reply ends an upload."""

    def __init__(self, app):
        self.inner = httpx.ASGITransport(app=app)
        self.release = asyncio.Event()
        self.media_open = self.most_media_open = self.media_fetches = 0
        self.chunks: dict[str, int] = {}  # upload_id: chunk PUTs received
        self.uploading: set[str] = set()
        self.most_uploading = 0
        self.held = 0  # chunk PUTs waiting at the gate now

    def is_chunk(self, request: httpx.Request) -> bool:
        raise NotImplementedError

    def finished(self, request: httpx.Request, response: httpx.Response) -> bool:
        """`response` ends its upload: the buffer is let go."""
        raise NotImplementedError

    def answer_released(self, request: httpx.Request) -> httpx.Response | None:
        """The gate's own answer to a chunk it let through, instead of the sandbox's; None: the sandbox's."""
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.is_chunk(request):
            upload_id = request.url.params["upload_id"]
            self.chunks[upload_id] = self.chunks.get(upload_id, 0) + 1
            self.uploading.add(upload_id)
            self.most_uploading = max(self.most_uploading, len(self.uploading))
            self.held += 1
            try:
                await self.release.wait()
            finally:
                self.held -= 1
            answer = self.answer_released(request)
            if answer is not None:
                self.uploading.discard(upload_id)
                return answer
        response = await self.inner.handle_async_request(request)
        if self.finished(request, response):
            self.uploading.discard(request.url.params["upload_id"])
        if request.url.path.startswith("/media/"):
            self.media_fetches += 1
            self.media_open += 1
            self.most_media_open = max(self.most_media_open, self.media_open)
            response.stream = CountedStream(response.stream, self)
        return response


class BrokenMediaHost(httpx.AsyncBaseTransport):
    """`broken.example` sends 300 KB of a video and then drops, having promised the `says` of its
    URL's query (a content-length) if it has one; other hosts go to `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "broken.example":
            return await self.inner.handle_async_request(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"\1" * 300_000
            raise httpx.ReadError("connection reset by peer", request=request)

        says = request.url.params.get("says")
        return httpx.Response(200, content=body(), headers={"content-length": says} if says else None)


class SlowChunks(httpx.AsyncBaseTransport):
    """The sandbox, each request that `slow` picks taking a while, so that uploads overlap."""

    def __init__(self, app, slow: Callable[[httpx.Request], bool]):
        self.inner, self.slow = httpx.ASGITransport(app=app), slow

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.slow(request):
            await asyncio.sleep(0.02)
        return await self.inner.handle_async_request(request)


@pytest.fixture(name="app")
def app_fixture():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.05, daily_quotas=False))


@pytest.fixture(name="http")
async def http_fixture(gate: Gate) -> AsyncIterator[httpx.AsyncClient]:
    """A client through the broken media host to the test module's `gate`."""
    async with httpx.AsyncClient(transport=BrokenMediaHost(gate)) as client:
        yield client


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")


async def settle() -> None:
    """Long enough for any publish that could get further to do so."""
    await asyncio.sleep(0.2)


async def crashed_after_first_chunk(app, client_for: Callable[[httpx.AsyncClient], object], request: PublishRequested,
                                    is_chunk: Callable[[httpx.Request], bool]) -> MemoryJournal:
    """`request` published by a process that dies just after the sandbox took its first chunk
    (the answer lost with it); the journal it left."""
    journal = MemoryJournal()
    async with httpx.AsyncClient(transport=CrashingTransport(httpx.ASGITransport(app=app), is_chunk)) as crashing:
        with pytest.raises(SimulatedCrash):
            await client_for(crashing).publish(request, token(request.account_id), journal)
    return journal


async def a_cancelled_upload_gives_its_place_back(client, gate: Gate, request_for: Callable[[str], PublishRequested],
                                                  uploads_of: Callable[[str], Sized]) -> None:
    """`client` uploads one at a time; `uploads_of(account)`: what the platform holds of that
    account's uploads (an init, a session)."""
    holder = asyncio.create_task(client.publish(request_for("acct_a"), token("acct_a")))
    await until(lambda: gate.held == 1)
    waiter = asyncio.create_task(client.publish(request_for("acct_b"), token("acct_b")))
    next_in_line = asyncio.create_task(client.publish(request_for("acct_c"), token("acct_c")))
    await settle()
    waiter.cancel()  # cancelled while waiting for a place: it must not take one
    holder.cancel()  # cancelled mid-upload (a lease lost, a shutdown): its place is given back
    await asyncio.gather(holder, waiter, return_exceptions=True)
    await until(lambda: len(uploads_of("acct_c")) == 1 and gate.held == 1)
    assert gate.media_open == 1 and uploads_of("acct_b") == []
    gate.release.set()
    await asyncio.wait_for(next_in_line, 10)
    await asyncio.wait_for(client.publish(request_for("acct_d"), token("acct_d")), 10)
    assert gate.media_open == 0
