"""The TikTok client's chunked uploads (FILE_UPLOAD: local media, or remote media outside the
verified pull prefixes) hold a chunk buffer each: 10 MB by default, the last chunk up to twice
that, and its copy in flight. So one process uploads only a few videos at once
(`uploads_at_once`, AUTOPOST_TIKTOK_UPLOADS_AT_ONCE): a batch of 64 targets must not hold 64
buffers in a pod limited to 256 MiB. An upload waiting for its place holds nothing: no media
open, no intent, no init and no `video_init` cap slot; one that fails or is cancelled gives its
place back; a resumed upload waits for a place too. A chunk's copy is made once and freed when
its PUT returns (httpx's response-stream cycle kept finished chunks until the garbage
collector ran).

Run against the sandbox in-process; the media host's streams are counted while open (an
upload's buffer lives exactly as long as its media stream).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from pathlib import Path

import httpx
import pytest

from contracts import Platform, PublishRequested
from services.publishers.app import platform_client
from services.publishers.platforms import CREATED, MediaPolicy, MemoryJournal, PlatformError, build_client
from services.publishers.platforms._base import release_response
from services.publishers.platforms._media import head_bytes
from services.runtime import PlatformSettings, Settings
from test_platform_clients import RecordingLimits, again
from upload_gate import BROKEN, FAST, MIB, ROOT, SlowChunks, settle, token, until, video_request
from upload_gate import a_cancelled_upload_gives_its_place_back, crashed_after_first_chunk
from upload_gate import Gate as UploadGate
from upload_gate import app_fixture, http_fixture  # noqa: F401  (the fixtures app and http)

BASE = f"{ROOT}/tiktok"
CHUNK = 5 * MIB  # the smallest chunk TikTok takes
VIDEO = f"{ROOT}/media/clip.mp4?bytes={MIB}"  # one chunk (a video under 5 MB goes up whole)
TWO_CHUNKS = f"{ROOT}/media/clip.mp4?bytes={2 * CHUNK + 123}"  # the last absorbs the 123
BROKEN_MEDIA = f"{BROKEN}?says=700000"  # says 700,000 bytes, streams 300,000, then drops
VERIFIED = ("https://cdn.verified.example/",)  # the sandbox's media is not on it: streamed up


def request_for(account: str, url: str = VIDEO) -> PublishRequested:
    return video_request(Platform.TIKTOK, account, url)


def is_chunk(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.endswith("/upload/video/")


class Gate(UploadGate):
    """The upload gate, also counting the video inits sent per account. `refuse` answers every
    chunk with a permanent refusal."""

    def __init__(self, app):
        super().__init__(app)
        self.refuse = False
        self.inits: dict[str, int] = {}  # account: video inits received

    def is_chunk(self, request: httpx.Request) -> bool:
        return is_chunk(request)

    def finished(self, request: httpx.Request, response: httpx.Response) -> bool:
        return is_chunk(request) and response.status_code == 201  # the last chunk: done

    def answer_released(self, request: httpx.Request) -> httpx.Response | None:
        if not self.refuse:
            return None
        return httpx.Response(403, json={"error": {"code": "invalid_params", "message": "refused", "log_id": "x"}})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/video/init/"):
            account = request.headers["authorization"].removeprefix("Bearer sandbox:")
            self.inits[account] = self.inits.get(account, 0) + 1
        return await super().handle_async_request(request)


@pytest.fixture
def gate(app) -> Gate:
    return Gate(app)


def tiktok(http: httpx.AsyncClient, **options) -> object:
    options.setdefault("media_policy", MediaPolicy.sandbox())
    return build_client(Platform.TIKTOK, http, BASE, chunk_size=CHUNK, media_http=http, retry=FAST,
                        pull_prefixes=VERIFIED, **options)


def publishes_of(app, account: str) -> list:
    return [p for p in app.state.sandbox.tiktok.publishes.values() if p.account_id == account]


def local_video(folder: Path, size: int) -> str:
    path = folder / f"clip{size}.mp4"
    with open(path, "wb") as file:
        file.truncate(size)  # sparse: no disk spent on it
    return path.as_uri()


async def traced_peak(*publishes) -> int:
    """The most memory Python held while `publishes` ran, above what it held before them."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await asyncio.wait_for(asyncio.gather(*publishes), 60)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


async def test_by_default_two_uploads_hold_their_buffer_at_once(app, gate, http):
    client = tiktok(http)
    accounts = [f"acct_{i}" for i in range(8)]
    publishes = [asyncio.create_task(client.publish(request_for(a, TWO_CHUNKS), token(a))) for a in accounts]
    try:
        await until(lambda: gate.held >= 2)
        await settle()
        # 2 uploads opened their media, sent their init and a chunk; the others wait, no init sent
        assert (gate.media_open, gate.held, len(gate.chunks)) == (2, 2, 2)
        assert sum(gate.inits.values()) == 2 and len(app.state.sandbox.tiktok.publishes) == 2
        gate.release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*publishes), 20)
    finally:
        for task in publishes:
            task.cancel()
    assert len({o.handle.id for o in outcomes}) == 8
    assert (gate.most_uploading, gate.most_media_open, gate.media_open) == (2, 2, 0)
    assert all(count == 2 for count in gate.chunks.values())
    assert all(p.received == p.video_size for p in app.state.sandbox.tiktok.publishes.values())


async def test_the_bound_comes_from_the_settings(app, gate, http, monkeypatch):
    assert PlatformSettings().tiktok_uploads_at_once == 2
    monkeypatch.setenv("AUTOPOST_TIKTOK_UPLOADS_AT_ONCE", "3")
    assert PlatformSettings.from_env().tiktok_uploads_at_once == 3
    monkeypatch.setenv("AUTOPOST_TIKTOK_UPLOADS_AT_ONCE", "0")  # at least one, or nothing uploads
    assert PlatformSettings.from_env().tiktok_uploads_at_once == 1
    with pytest.raises(ValueError):
        tiktok(http, uploads_at_once=0)

    settings = Settings(api_bases={Platform.TIKTOK: BASE}, platforms=PlatformSettings(
        media_allow_loopback=True, tiktok_pull_prefixes=VERIFIED, tiktok_uploads_at_once=3))
    client = platform_client(settings, Platform.TIKTOK, http, http)
    accounts = [f"acct_{i}" for i in range(6)]
    # two chunks of the default 10 MB: a media stream stays open while its first chunk is held
    # (one read whole is closed)
    two_default_chunks = f"{ROOT}/media/clip.mp4?bytes={20_000_123}"
    publishes = [asyncio.create_task(client.publish(request_for(a, two_default_chunks), token(a))) for a in accounts]
    try:
        await until(lambda: gate.held >= 3)
        await settle()
        assert (len(gate.uploading), gate.held, gate.media_open) == (3, 3, 3)
        gate.release.set()
        await asyncio.wait_for(asyncio.gather(*publishes), 10)
    finally:
        for task in publishes:
            task.cancel()
    assert gate.most_uploading == 3


async def test_a_waiting_upload_holds_no_media_intent_init_or_init_slot(app, gate, http):
    limits = RecordingLimits()
    client = tiktok(http, uploads_at_once=1, limits=limits)
    journals = {"acct_a": MemoryJournal(), "acct_b": MemoryJournal()}
    first = asyncio.create_task(client.publish(request_for("acct_a", TWO_CHUNKS), token("acct_a"), journals["acct_a"]))
    second = asyncio.create_task(client.publish(request_for("acct_b", TWO_CHUNKS), token("acct_b"),
                                                journals["acct_b"]))
    try:
        await until(lambda: gate.held == 1)
        await settle()
        assert ("acct_a", "video_init") in limits.slots
        assert ("acct_b", "video_init") not in limits.slots, "no init cap slot spent waiting"
        assert "acct_b" not in gate.inits and publishes_of(app, "acct_b") == [], "no init sent for it yet"
        assert await journals["acct_b"].load() is None, "no intent: a crash now leaves nothing behind"
        assert (gate.media_fetches, gate.media_open) == (1, 1), "its media is not open yet"
        gate.release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
    finally:
        first.cancel()
        second.cancel()
    assert limits.slots.count(("acct_b", "video_init")) == 1
    assert gate.most_uploading == 1


async def test_a_failed_upload_gives_its_place_back(app, gate, http, tmp_path: Path):
    gate.release.set()
    client = tiktok(http, uploads_at_once=1, media_policy=MediaPolicy.sandbox().with_roots(tmp_path))
    for i in range(3):  # the media drops part-way, with part of a chunk read into the buffer
        with pytest.raises(PlatformError) as raised:
            await asyncio.wait_for(client.publish(request_for(f"acct_x{i}", BROKEN_MEDIA), token(f"acct_x{i}")), 5)
        assert raised.value.code == "media_unavailable"
    with pytest.raises(PlatformError):  # a missing file fails inside the place too
        await asyncio.wait_for(client.publish(request_for("acct_y", (tmp_path / "gone.mp4").as_uri()),
                                              token("acct_y")), 5)
    gate.refuse = True
    for i in range(2):  # the upload server refuses the chunk for good
        with pytest.raises(PlatformError) as raised:
            await asyncio.wait_for(client.publish(request_for(f"acct_z{i}", local_video(tmp_path, 2 * CHUNK)),
                                                  token(f"acct_z{i}")), 5)
        assert raised.value.code == "invalid_params"
    gate.refuse = False
    outcomes = await asyncio.wait_for(asyncio.gather(
        *(client.publish(request_for(f"acct_{i}"), token(f"acct_{i}")) for i in range(3))), 10)
    assert len({o.handle.id for o in outcomes}) == 3
    assert gate.media_open == 0


async def test_a_cancelled_upload_gives_its_place_back(app, gate, http):
    await a_cancelled_upload_gives_its_place_back(tiktok(http, uploads_at_once=1), gate,
                                                  lambda account: request_for(account, TWO_CHUNKS),
                                                  lambda account: publishes_of(app, account))


async def test_a_resumed_upload_waits_for_a_place_too(app, gate, http):
    request = request_for("acct_b", TWO_CHUNKS)
    journal = await crashed_after_first_chunk(app, tiktok, request, is_chunk)
    assert (await journal.load()).stage == CREATED
    [stored] = publishes_of(app, "acct_b")
    assert stored.received == CHUNK

    client = tiktok(http, uploads_at_once=1)
    holder = asyncio.create_task(client.publish(request_for("acct_a"), token("acct_a")))
    await until(lambda: gate.held == 1)
    resumed = asyncio.create_task(client.publish(again(request), token("acct_b"), journal))
    try:
        await settle()
        # it read how far the upload got, and waits: its media is not open again, no chunk sent
        assert gate.media_fetches == 1 and gate.held == 1 and len(gate.chunks) == 1
        gate.release.set()
        outcome = await asyncio.wait_for(resumed, 10)
        await asyncio.wait_for(holder, 10)
    finally:
        holder.cancel()
        resumed.cancel()
    assert outcome.handle.id == stored.publish_id
    assert stored.received == stored.video_size
    assert gate.most_uploading == 1
    assert sorted(gate.chunks.values()) == [1, 1]  # acct_a's one chunk; acct_b's last, not its first again


async def test_an_upload_holds_its_largest_chunk_about_twice_at_most(app, tmp_path: Path):
    """The last chunk absorbs the remainder (here nearly two chunks): at the peak, the chunk as
    read and its one copy being sent; not a second copy, nor the chunks sent before it."""
    last = 2 * CHUNK - 1
    video = local_video(tmp_path, CHUNK + last)  # 2 chunks: 5 MiB, then 10 MiB less a byte
    async with httpx.AsyncClient(transport=SlowChunks(app, is_chunk)) as slow:
        client = tiktok(slow, media_policy=MediaPolicy.sandbox().with_roots(tmp_path))
        await client.publish(request_for("warm", video), token("warm"))  # imports, sandbox state
        peak = await traced_peak(client.publish(request_for("acct_a", video), token("acct_a")))
    assert 2 * last < peak < 2 * last + 3 * MIB, peak / MIB  # a read piece over, and small change


async def test_a_finished_chunk_is_freed_when_its_put_returns(app, tmp_path: Path):
    """Not when the garbage collector comes to it: without it (a quiet process may not run it
    for many chunks), memory stays that of the chunk on its way, not of those sent before."""
    video = local_video(tmp_path, 5 * CHUNK + 123)  # 5 chunks
    async with httpx.AsyncClient(transport=SlowChunks(app, is_chunk)) as slow:
        client = tiktok(slow, media_policy=MediaPolicy.sandbox().with_roots(tmp_path))
        await client.publish(request_for("warm", video), token("warm"))
        gc.collect()
        gc.disable()
        try:
            peak = await traced_peak(client.publish(request_for("acct_a", video), token("acct_a")))
        finally:
            gc.enable()
    assert peak < 3 * CHUNK, peak / MIB  # the chunk read and its copy; 5 chunks and more before


async def test_the_memory_of_uploads_is_that_of_the_few_at_once(app, tmp_path: Path):
    """What the bound is for: traced memory at its peak, many uploads against one alone."""
    video = local_video(tmp_path, 3 * CHUNK - 1)  # 2 chunks, the last nearly 10 MiB: about 21 MiB each
    async with httpx.AsyncClient(transport=SlowChunks(app, is_chunk)) as slow:
        client = tiktok(slow, media_policy=MediaPolicy.sandbox().with_roots(tmp_path), uploads_at_once=2)
        await client.publish(request_for("warm", video), token("warm"))
        alone = await traced_peak(client.publish(request_for("acct_0", video), token("acct_0")))
        together = await traced_peak(*(client.publish(request_for(f"acct_{i}", video), token(f"acct_{i}"))
                                       for i in range(1, 7)))
    assert alone > 3 * CHUNK  # the buffer is what is measured
    # 6 uploads, 2 at a time: about twice one upload's memory (6 times without the bound)
    assert together < 2.5 * alone, (together / MIB, alone / MIB)


def test_a_chunk_is_copied_once_and_a_response_let_go_stays_readable():
    buffer = bytearray(b"abcdef")
    head = head_bytes(buffer, 4)
    assert (head, type(head), buffer) == (b"abcd", bytes, bytearray(b"abcdef"))
    buffer += b"g"  # the buffer is not pinned by a view left behind
    response = httpx.Response(206, content=b'{"ok": true}', request=httpx.Request("PUT", "http://x/"))
    release_response(response)
    assert response.json() == {"ok": True} and response.status_code == 206
