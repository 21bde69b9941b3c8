"""The YouTube client holds a chunk buffer (8 MiB by default, and its copy in flight) for each
upload, so one process uploads only a few videos at once (`uploads_at_once`,
AUTOPOST_YOUTUBE_UPLOADS_AT_ONCE): a batch of 64 targets must not hold 64 buffers in a pod
limited to 256 MiB. An upload waiting for its place holds nothing: no media open, no session,
no cap slot; one that fails or is cancelled gives its place back.

Run against the sandbox in-process; the media host's streams are counted while open (an
upload's buffer lives exactly as long as its media stream).
"""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

import sandbox
from contracts import ContentType, MediaRef, Platform, PublishRequested
from services.publishers.app import platform_client
from services.publishers.limits import EndpointLimits
from services.publishers.platforms import (
    CREATED,
    MediaPolicy,
    MemoryJournal,
    PlatformError,
    RetryRules,
    build_client,
)
from services.runtime import PlatformSettings, Settings

ROOT = "http://sandbox"
BASE = f"{ROOT}/youtube"
CHUNK = 256 * 1024
MIB = 1024 * 1024
VIDEO = f"{ROOT}/media/clip.mp4?bytes={3 * MIB}"  # twelve 256 KiB chunks, read 1 MiB at a time
BROKEN = "https://broken.example/clip.mp4"  # streams a little, then the connection drops
FAST = RetryRules(base_delay=0.01, max_delay=0.05)


def request_for(account: str, url: str = VIDEO) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.YOUTUBE,
        account_id=account, attempt=1, content_type=ContentType.VIDEO, caption="Launch day",
        hashtags=["#autopost"], media=[MediaRef(url=url)], scheduled_time=datetime.now(timezone.utc))


def again(request: PublishRequested) -> PublishRequested:
    return request.model_copy(update={"attempt": request.attempt + 1, "message_id": uuid.uuid4()})


def token(account: str) -> str:
    return f"sandbox:{account}"


class CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, gate: "Gate"):
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
    upload that holds its buffer) now and at most; the chunks sent per session."""

    def __init__(self, app, *, hold: bool = True):
        self.inner = httpx.ASGITransport(app=app)
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.media_open = self.most_media_open = self.media_fetches = 0
        self.chunks: dict[str, int] = {}  # upload_id: chunk PUTs received
        self.uploading: set[str] = set()
        self.most_uploading = 0
        self.held = 0  # chunk PUTs waiting at the gate now

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.headers.get("content-length") != "0":  # a chunk
            upload_id = request.url.params["upload_id"]
            self.chunks[upload_id] = self.chunks.get(upload_id, 0) + 1
            self.uploading.add(upload_id)
            self.most_uploading = max(self.most_uploading, len(self.uploading))
            self.held += 1
            try:
                await self.release.wait()
            finally:
                self.held -= 1
        response = await self.inner.handle_async_request(request)
        if request.method == "PUT" and response.status_code in (200, 201):  # the video: done
            self.uploading.discard(request.url.params["upload_id"])
        if request.url.path.startswith("/media/"):
            self.media_fetches += 1
            self.media_open += 1
            self.most_media_open = max(self.most_media_open, self.media_open)
            response.stream = CountedStream(response.stream, self)
        return response


class BrokenMediaHost(httpx.AsyncBaseTransport):
    """`broken.example` sends 300 KB of a video and then drops; other hosts go to `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "broken.example":
            return await self.inner.handle_async_request(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"\1" * 300_000
            raise httpx.ReadError("connection reset by peer", request=request)

        return httpx.Response(200, content=body())


class RecordingLimits(EndpointLimits):
    """No caps; remembers every slot asked for, (account, endpoint)."""

    def __init__(self) -> None:
        super().__init__({})
        self.slots: list[tuple[str, str]] = []

    def slot(self, account_id: str, endpoint: str):
        self.slots.append((account_id, endpoint))
        return super().slot(account_id, endpoint)


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point runs."""


class CrashAfterFirstChunk(httpx.AsyncBaseTransport):
    """The process dies just after the sandbox took the first chunk (its answer is lost)."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self.inner, self.crashed = inner, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "PUT" and request.headers.get("content-length") != "0" and not self.crashed:
            self.crashed = True
            await response.aread()
            raise SimulatedCrash("after the first chunk")
        return response


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.05, daily_quotas=False))


@pytest.fixture
def gate(app) -> Gate:
    return Gate(app)


@pytest.fixture
async def http(gate) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=BrokenMediaHost(gate)) as client:
        yield client


def youtube(http: httpx.AsyncClient, **options) -> object:
    return build_client(Platform.YOUTUBE, http, BASE, chunk_size=CHUNK, media_http=http,
                        media_policy=MediaPolicy.sandbox(), retry=FAST, **options)


def sessions_of(app, account: str) -> list:
    return [s for s in app.state.sandbox.youtube.sessions.values() if s.account_id == account]


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")


async def settle() -> None:
    """Long enough for any publish that could get further to do so."""
    await asyncio.sleep(0.2)


async def test_by_default_four_uploads_hold_their_buffer_at_once(app, gate, http):
    client = youtube(http)
    accounts = [f"acct_{i}" for i in range(12)]
    publishes = [asyncio.create_task(client.publish(request_for(a), token(a))) for a in accounts]
    try:
        await until(lambda: gate.held >= 4)
        await settle()
        # 4 uploads read their media and sent a chunk; the others wait, not even a session made
        assert (gate.media_open, gate.held, len(gate.chunks)) == (4, 4, 4)
        assert len(app.state.sandbox.youtube.sessions) == 4
        gate.release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*publishes), 10)
    finally:
        for task in publishes:
            task.cancel()
    assert len({o.handle.id for o in outcomes}) == 12
    assert (gate.most_uploading, gate.most_media_open, gate.media_open) == (4, 4, 0)
    assert all(count == 12 for count in gate.chunks.values())


async def test_the_bound_comes_from_the_settings(app, gate, http, monkeypatch):
    assert PlatformSettings().youtube_uploads_at_once == 4
    monkeypatch.setenv("AUTOPOST_YOUTUBE_UPLOADS_AT_ONCE", "2")
    assert PlatformSettings.from_env().youtube_uploads_at_once == 2
    monkeypatch.setenv("AUTOPOST_YOUTUBE_UPLOADS_AT_ONCE", "0")  # at least one, or nothing uploads
    assert PlatformSettings.from_env().youtube_uploads_at_once == 1
    with pytest.raises(ValueError):
        youtube(http, uploads_at_once=0)

    settings = Settings(api_bases={Platform.YOUTUBE: BASE},
                        platforms=PlatformSettings(media_allow_loopback=True, youtube_uploads_at_once=2))
    client = platform_client(settings, Platform.YOUTUBE, http, http)
    accounts = [f"acct_{i}" for i in range(5)]
    publishes = [asyncio.create_task(client.publish(request_for(a), token(a))) for a in accounts]
    try:
        await until(lambda: gate.held >= 2)
        await settle()
        assert (len(gate.uploading), gate.held) == (2, 2)
        gate.release.set()
        await asyncio.wait_for(asyncio.gather(*publishes), 10)
    finally:
        for task in publishes:
            task.cancel()
    assert gate.most_uploading == 2


async def test_a_waiting_upload_holds_no_cap_slot_media_or_session(app, gate, http):
    limits = RecordingLimits()
    client = youtube(http, uploads_at_once=1, limits=limits)
    first = asyncio.create_task(client.publish(request_for("acct_a"), token("acct_a")))
    second = asyncio.create_task(client.publish(request_for("acct_b"), token("acct_b")))
    try:
        await until(lambda: gate.held == 1)
        await settle()
        assert ("acct_a", "videos_insert") in limits.slots
        assert not [slot for slot in limits.slots if slot[0] == "acct_b"], "no cap slot spent waiting"
        assert sessions_of(app, "acct_b") == [], "no session started for it yet"
        assert (gate.media_fetches, gate.media_open) == (1, 1), "its media is not open yet"
        gate.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
    finally:
        first.cancel()
        second.cancel()
    assert limits.slots.count(("acct_b", "videos_insert")) == 1


async def test_a_failed_upload_gives_its_place_back(app, gate, http):
    gate.release.set()
    client = youtube(http, uploads_at_once=1)
    for _ in range(3):  # the media drops part-way, with a chunk held in the buffer
        with pytest.raises(PlatformError) as raised:
            await asyncio.wait_for(client.publish(request_for("acct_x", BROKEN), token("acct_x")), 5)
        assert raised.value.code == "media_unavailable"
    with pytest.raises(PlatformError):  # a missing file fails inside the place too
        await asyncio.wait_for(client.publish(request_for("acct_x", "file:///nonexistent.mp4"),
                                              token("acct_x")), 5)
    outcomes = await asyncio.wait_for(asyncio.gather(
        *(client.publish(request_for(f"acct_{i}"), token(f"acct_{i}")) for i in range(3))), 10)
    assert len({o.handle.id for o in outcomes}) == 3


async def test_a_cancelled_upload_gives_its_place_back(app, gate, http):
    client = youtube(http, uploads_at_once=1)
    holder = asyncio.create_task(client.publish(request_for("acct_a"), token("acct_a")))
    await until(lambda: gate.held == 1)
    waiter = asyncio.create_task(client.publish(request_for("acct_b"), token("acct_b")))
    next_in_line = asyncio.create_task(client.publish(request_for("acct_c"), token("acct_c")))
    await settle()
    waiter.cancel()  # cancelled while waiting for a place: it must not take one
    holder.cancel()  # cancelled mid-upload (a lease lost, a shutdown): its place is given back
    await asyncio.gather(holder, waiter, return_exceptions=True)
    await until(lambda: len(sessions_of(app, "acct_c")) == 1 and gate.held == 1)
    assert gate.media_open == 1 and sessions_of(app, "acct_b") == []
    gate.release.set()
    await asyncio.wait_for(next_in_line, 10)
    await asyncio.wait_for(client.publish(request_for("acct_d"), token("acct_d")), 10)
    assert gate.media_open == 0


async def test_a_resumed_upload_waits_for_a_place_too(app, gate, http):
    journal, request = MemoryJournal(), request_for("acct_b")
    async with httpx.AsyncClient(transport=CrashAfterFirstChunk(httpx.ASGITransport(app=app))) as crashing:
        with pytest.raises(SimulatedCrash):
            await youtube(crashing).publish(request, token("acct_b"), journal)
    assert (await journal.load()).stage == CREATED
    [stored] = sessions_of(app, "acct_b")
    assert stored.received == CHUNK

    client = youtube(http, uploads_at_once=1)
    holder = asyncio.create_task(client.publish(request_for("acct_a"), token("acct_a")))
    await until(lambda: gate.held == 1)
    resumed = asyncio.create_task(client.publish(again(request), token("acct_b"), journal))
    try:
        await settle()
        assert gate.media_fetches == 1 and stored.upload_id not in gate.chunks
        gate.release.set()
        outcome = await asyncio.wait_for(resumed, 10)
        await asyncio.wait_for(holder, 10)
    finally:
        holder.cancel()
        resumed.cancel()
    assert outcome.handle.id == stored.video_id
    assert gate.chunks[stored.upload_id] == 11  # the chunks the server did not have yet


async def test_the_memory_of_uploads_is_that_of_the_few_at_once(app, tmp_path: Path):
    """What the bound is for: traced memory at its peak, many uploads against one alone."""
    chunk = 4 * CHUNK  # 1 MiB chunks of 3 MiB files: each upload holds ~2 MiB, and a copy in flight
    files = []
    for i in range(8):
        path = tmp_path / f"clip{i}.mp4"
        path.write_bytes(bytes([i]) * (3 * MIB))
        files.append(path.as_uri())

    class SlowChunks(httpx.AsyncBaseTransport):  # each chunk takes a while: the uploads overlap
        inner = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "PUT":
                await asyncio.sleep(0.02)
            return await self.inner.handle_async_request(request)

    async def peak(client, uris: list[str]) -> int:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            await asyncio.wait_for(asyncio.gather(
                *(client.publish(request_for(f"acct_{i}", uri), token(f"acct_{i}")) for i, uri in enumerate(uris))),
                30)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    async with httpx.AsyncClient(transport=SlowChunks()) as slow:
        client = build_client(Platform.YOUTUBE, slow, BASE, chunk_size=chunk, media_http=slow,
                              media_policy=MediaPolicy.sandbox().with_roots(tmp_path), retry=FAST,
                              uploads_at_once=2)
        alone = await peak(client, files[:1])
        together = await peak(client, files)
    assert alone > 2 * MIB  # the buffer is what is measured
    # 8 uploads, 2 at a time: about twice one upload's memory (8 times without the bound)
    assert together < 3 * alone, (together / MIB, alone / MIB)
