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
from pathlib import Path

import httpx
import pytest

from contracts import Platform, PublishRequested
from services.publishers.app import platform_client
from services.publishers.platforms import CREATED, MediaPolicy, PlatformError, build_client
from services.runtime import PlatformSettings, Settings
from test_platform_clients import RecordingLimits, again, is_put
from upload_gate import BROKEN, FAST, MIB, ROOT, SlowChunks, settle, token, until, video_request
from upload_gate import a_cancelled_upload_gives_its_place_back, crashed_after_first_chunk
from upload_gate import Gate as UploadGate
from upload_gate import app_fixture, http_fixture  # noqa: F401  (the fixtures app and http)

BASE = f"{ROOT}/youtube"
CHUNK = 256 * 1024
VIDEO = f"{ROOT}/media/clip.mp4?bytes={3 * MIB}"  # twelve 256 KiB chunks, read 1 MiB at a time


def request_for(account: str, url: str = VIDEO) -> PublishRequested:
    return video_request(Platform.YOUTUBE, account, url)


class Gate(UploadGate):
    """The upload gate: a chunk is a PUT with a body; a PUT answered 200 or 201 ends its upload."""

    def is_chunk(self, request: httpx.Request) -> bool:
        return is_put(request)

    def finished(self, request: httpx.Request, response: httpx.Response) -> bool:
        return request.method == "PUT" and response.status_code in (200, 201)  # the video: done


@pytest.fixture
def gate(app) -> Gate:
    return Gate(app)


def youtube(http: httpx.AsyncClient, **options) -> object:
    return build_client(Platform.YOUTUBE, http, BASE, chunk_size=CHUNK, media_http=http,
                        media_policy=MediaPolicy.sandbox(), retry=FAST, **options)


def sessions_of(app, account: str) -> list:
    return [s for s in app.state.sandbox.youtube.sessions.values() if s.account_id == account]


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
    await a_cancelled_upload_gives_its_place_back(youtube(http, uploads_at_once=1), gate, request_for,
                                                  lambda account: sessions_of(app, account))


async def test_a_resumed_upload_waits_for_a_place_too(app, gate, http):
    request = request_for("acct_b")
    journal = await crashed_after_first_chunk(app, youtube, request, is_put)
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

    async with httpx.AsyncClient(transport=SlowChunks(app, lambda request: request.method == "PUT")) as slow:
        client = build_client(Platform.YOUTUBE, slow, BASE, chunk_size=chunk, media_http=slow,
                              media_policy=MediaPolicy.sandbox().with_roots(tmp_path), retry=FAST,
                              uploads_at_once=2)
        alone = await peak(client, files[:1])
        together = await peak(client, files)
    assert alone > 2 * MIB  # the buffer is what is measured
    # 8 uploads, 2 at a time: about twice one upload's memory (8 times without the bound)
    assert together < 3 * alone, (together / MIB, alone / MIB)
