"""The fakes on their own, through HTTP: the rules clients must follow, and the sandbox's record."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx
import pytest

import sandbox

ROOT = "http://sandbox"
ALICE = {"Authorization": "Bearer sandbox:alice"}
VIDEO = f"{ROOT}/media/clip.mp4?bytes=1000"
KIB256 = 256 * 1024


def make_http(settings: sandbox.SandboxSettings | None = None) -> tuple[httpx.AsyncClient, object]:
    app = sandbox.create_app(settings or sandbox.SandboxSettings(processing_seconds=0))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT), app


@pytest.fixture
async def http():
    client, _ = make_http()
    async with client:
        yield client


async def published(http: httpx.AsyncClient) -> list[dict]:
    return (await http.get("/_sandbox/published")).json()


# -- TikTok --------------------------------------------------------------------------------------

def tiktok_video(privacy: str, source: dict) -> dict:
    return {"post_info": {"privacy_level": privacy, "title": "hi #x"}, "source_info": source}


async def test_tiktok_rejects_privacy_level_outside_creator_options():
    client, app = make_http()
    app.state.sandbox.tiktok.private_accounts.add("alice")
    async with client as http:
        info = (await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=ALICE)).json()
        assert "PUBLIC_TO_EVERYONE" not in info["data"]["privacy_level_options"]
        reply = await http.post("/tiktok/v2/post/publish/video/init/", headers=ALICE,
                                json=tiktok_video("PUBLIC_TO_EVERYONE",
                                                  {"source": "PULL_FROM_URL", "video_url": VIDEO}))
        records = await published(http)
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "privacy_level_option_mismatch"
    assert reply.json()["error"]["log_id"]
    assert records == []


async def test_tiktok_pull_publishes_at_init_and_completes_after_processing():
    client, _ = make_http(sandbox.SandboxSettings(processing_seconds=0.1))
    async with client as http:
        before = time.time()
        init = await http.post("/tiktok/v2/post/publish/video/init/", headers=ALICE,
                               json=tiktok_video("PUBLIC_TO_EVERYONE",
                                                 {"source": "PULL_FROM_URL", "video_url": VIDEO}))
        publish_id = init.json()["data"]["publish_id"]
        assert publish_id.startswith("v_pub_url~")
        fetch = {"publish_id": publish_id}
        first = (await http.post("/tiktok/v2/post/publish/status/fetch/", headers=ALICE, json=fetch)).json()
        assert first["data"]["status"] == "PROCESSING_DOWNLOAD"
        await asyncio.sleep(0.12)
        done = (await http.post("/tiktok/v2/post/publish/status/fetch/", headers=ALICE, json=fetch)).json()
        records = await published(http)
    assert done["data"]["status"] == "PUBLISH_COMPLETE"
    [post_id] = done["data"]["publicaly_available_post_id"]
    assert post_id.isdigit()
    [record] = records
    assert record["remoteId"] == publish_id
    assert record["url"] == f"https://www.tiktok.com/@alice/video/{post_id}"
    assert before <= datetime.fromisoformat(record["publishedAt"]).timestamp() <= before + 0.1


async def test_tiktok_file_upload_checks_the_chunk_plan_and_order(http: httpx.AsyncClient):
    size, chunk = 12_000_000, 5_242_880  # 2 chunks; the last absorbs the remainder
    bad = await http.post("/tiktok/v2/post/publish/video/init/", headers=ALICE, json=tiktok_video(
        "SELF_ONLY", {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk,
                      "total_chunk_count": 3}))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_file_upload"

    init = await http.post("/tiktok/v2/post/publish/video/init/", headers=ALICE, json=tiktok_video(
        "SELF_ONLY", {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk,
                      "total_chunk_count": 2}))
    upload_url = init.json()["data"]["upload_url"]
    assert upload_url.startswith(f"{ROOT}/tiktok/upload/video/?upload_id=")
    headers = {"Content-Type": "video/mp4"}
    last = size - chunk
    out_of_order = await http.put(upload_url, content=b"\0" * last,
                                  headers={**headers, "Content-Range": f"bytes {chunk}-{size - 1}/{size}"})
    assert out_of_order.status_code == 400
    first = await http.put(upload_url, content=b"\0" * chunk,
                           headers={**headers, "Content-Range": f"bytes 0-{chunk - 1}/{size}"})
    assert first.status_code == 206
    assert await published(http) == []  # not published before the last chunk
    final = await http.put(upload_url, content=b"\0" * last,
                           headers={**headers, "Content-Range": f"bytes {chunk}-{size - 1}/{size}"})
    assert final.status_code == 201
    [record] = await published(http)
    assert record["privacy"] == "SELF_ONLY" and record["url"] is None  # SELF_ONLY: no public post


async def test_tiktok_without_token_gets_its_auth_error(http: httpx.AsyncClient):
    reply = await http.post("/tiktok/v2/post/publish/creator_info/query/")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "access_token_invalid"


# -- Instagram -----------------------------------------------------------------------------------

async def test_instagram_early_publish_is_9007_and_video_finishes_later():
    client, _ = make_http(sandbox.SandboxSettings(processing_seconds=0.1))
    async with client as http:
        created = await http.post("/instagram/v25.0/1784/media", headers=ALICE,
                                  data={"media_type": "REELS", "video_url": VIDEO, "caption": "c"})
        container = created.json()["id"]
        status = (await http.get(f"/instagram/v25.0/{container}",
                                 params={"fields": "status_code,status", "access_token": "t"})).json()
        assert status["status_code"] == "IN_PROGRESS"
        early = await http.post("/instagram/v25.0/1784/media_publish", headers=ALICE,
                                params={"creation_id": container})
        assert early.status_code == 400
        error = early.json()["error"]
        assert (error["code"], error["error_subcode"], error["type"]) == (9007, 2207027, "OAuthException")
        assert error["fbtrace_id"]
        await asyncio.sleep(0.12)
        done = await http.post("/instagram/v25.0/1784/media_publish", headers=ALICE,
                               params={"creation_id": container})
        media_id = done.json()["id"]
        media = (await http.get(f"/instagram/v25.0/{media_id}", headers=ALICE,
                                params={"fields": "permalink,media_product_type"})).json()
        again = await http.post("/instagram/v25.0/1784/media_publish", headers=ALICE,
                                params={"creation_id": container})
        limit = (await http.get("/instagram/v25.0/1784/content_publishing_limit", headers=ALICE)).json()
        records = await published(http)
    assert media["media_product_type"] == "REELS"
    assert media["permalink"].startswith("https://www.instagram.com/reel/")
    assert again.status_code == 400  # a container publishes once
    assert limit["data"][0] == {"quota_usage": 1, "config": {"quota_total": 50, "quota_duration": 86400}}
    assert [(r["accountId"], r["remoteId"], r["url"]) for r in records] == [
        ("1784", media_id, media["permalink"])]


async def test_instagram_image_is_ready_at_once_and_needs_a_token(http: httpx.AsyncClient):
    anonymous = await http.post("/instagram/v25.0/1784/media", data={"image_url": VIDEO})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == 190
    created = await http.post("/instagram/v25.0/1784/media", headers=ALICE,
                              data={"image_url": f"{ROOT}/media/a.jpg"})
    status = await http.get(f"/instagram/v25.0/{created.json()['id']}", headers=ALICE,
                            params={"fields": "status_code"})
    assert status.json()["status_code"] == "FINISHED"
    missing = await http.get("/instagram/v25.0/999", headers=ALICE)
    assert missing.json()["error"]["code"] == 100


# -- YouTube -------------------------------------------------------------------------------------

async def start_youtube_session(http: httpx.AsyncClient, status: dict | None = None) -> httpx.Response:
    return await http.post(
        "/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable", "part": "snippet,status"},
        headers=ALICE, json={"snippet": {"title": "A title"},
                             "status": {"privacyStatus": "public"} if status is None else status})


async def test_youtube_requires_privacy_status(http: httpx.AsyncClient):
    reply = await start_youtube_session(http, status={})
    assert reply.status_code == 400
    assert reply.json()["error"]["errors"][0]["reason"] == "invalidVideoMetadata"


async def test_youtube_rejects_non_final_chunks_off_256_kib(http: httpx.AsyncClient):
    session = (await start_youtube_session(http)).headers["location"]
    assert session.startswith(f"{ROOT}/youtube/upload/youtube/v3/videos?") and "upload_id=" in session
    total = 3 * KIB256
    reply = await http.put(session, content=b"\0" * 100_000,
                           headers={"Content-Range": f"bytes 0-99999/{total}"})
    assert reply.status_code == 400
    assert "262144" in reply.json()["error"]["message"]


async def test_youtube_resumable_upload_follows_ranges_and_answers_status_queries():
    client, _ = make_http(sandbox.SandboxSettings(processing_seconds=0.1))
    async with client as http:
        session = (await start_youtube_session(http)).headers["location"]
        total = KIB256 + 10
        query = {"Content-Range": f"bytes */{total}", "Content-Length": "0"}
        assert "range" not in (await http.put(session, headers=query)).headers  # nothing yet
        part = await http.put(session, content=b"\0" * KIB256,
                              headers={"Content-Range": f"bytes 0-{KIB256 - 1}/{total}"})
        assert (part.status_code, part.headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")
        queried = await http.put(session, headers=query)
        assert (queried.status_code, queried.headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")
        final = await http.put(session, content=b"\0" * 10,
                               headers={"Content-Range": f"bytes {KIB256}-{total - 1}/{total}"})
        assert final.status_code == 201
        video = final.json()
        assert video["status"]["uploadStatus"] == "uploaded"
        assert video["status"]["privacyStatus"] == "public"
        assert (await http.put(session, headers=query)).json()["id"] == video["id"]
        listed = lambda: http.get("/youtube/youtube/v3/videos", headers=ALICE,  # noqa: E731
                                  params={"part": "status,processingDetails", "id": video["id"]})
        early = (await listed()).json()["items"][0]
        await asyncio.sleep(0.12)
        later = (await listed()).json()["items"][0]
        records = await published(http)
    assert early["processingDetails"]["processingStatus"] == "processing"
    assert (later["status"]["uploadStatus"], later["processingDetails"]["processingStatus"]) == (
        "processed", "succeeded")
    assert [(r["platform"], r["remoteId"], r["privacy"]) for r in records] == [
        ("youtube", video["id"], "public")]


async def test_youtube_without_token_gets_googles_401(http: httpx.AsyncClient):
    reply = await http.get("/youtube/youtube/v3/videos", params={"part": "status", "id": "x"})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == 401


# -- media host and admin ------------------------------------------------------------------------

async def test_media_host_streams_deterministic_bytes(http: httpx.AsyncClient):
    first = await http.get("/media/clip.mp4", params={"bytes": 200_000})
    second = await http.get("/media/other.jpg", params={"bytes": 200_000})
    default = await http.head("/media/x.mp4")
    assert first.headers["content-type"] == "video/mp4" and first.headers["content-length"] == "200000"
    assert second.headers["content-type"] == "image/jpeg"
    assert first.content == second.content and len(first.content) == 200_000
    assert default.headers["content-length"] == str(1024 * 1024)


async def test_reset_clears_state_and_stats_count_per_platform(http: httpx.AsyncClient):
    await http.post("/instagram/v25.0/42/media", headers=ALICE, data={"image_url": VIDEO})
    stats = (await http.get("/_sandbox/stats")).json()
    assert stats["instagram"] == {"published": 0, "created": 1, "requests": 1, "duplicates": 0,
                                  "uploadingBytes": 0}
    assert stats["duplicates"] == 0
    assert (await http.post("/_sandbox/reset")).status_code == 204
    assert (await http.get("/_sandbox/stats")).json()["instagram"]["created"] == 0
