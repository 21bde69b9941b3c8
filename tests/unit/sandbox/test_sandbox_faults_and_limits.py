"""The sandbox's fault control API and the limits, quotas and flows the fakes enforce themselves."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

import sandbox

ROOT = "http://sandbox"
ALICE = {"Authorization": "Bearer sandbox:alice"}
BOB = {"Authorization": "Bearer sandbox:bob"}
VIDEO = f"{ROOT}/media/clip.mp4?bytes=1000"
IMAGE = f"{ROOT}/media/a.jpg"
KIB256 = 256 * 1024


def make_http(**settings) -> tuple[httpx.AsyncClient, object]:
    app = sandbox.create_app(sandbox.SandboxSettings(**{"processing_seconds": 0, **settings}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT), app


def pull(title: str = "hi", privacy: str = "PUBLIC_TO_EVERYONE", url: str = VIDEO) -> dict:
    return {"post_info": {"privacy_level": privacy, "title": title},
            "source_info": {"source": "PULL_FROM_URL", "video_url": url}}


async def tiktok_init(http, headers=ALICE, **kwargs) -> httpx.Response:
    return await http.post("/tiktok/v2/post/publish/video/init/", headers=headers, json=pull(**kwargs))


# -- the control API ---------------------------------------------------------------------------

async def test_faults_are_set_listed_counted_and_cleared_through_the_api():
    client, _ = make_http()
    async with client as http:
        bad = await http.post("/_sandbox/faults", json={"kind": "meteor"})
        assert bad.status_code == 400 and "unknown fault kind" in bad.json()["error"]
        assert (await http.post("/_sandbox/faults", json={"kind": "x", "colour": 1})).status_code == 400
        ids = (await http.post("/_sandbox/faults", json={"rules": [
            {"kind": "server_error", "platform": "tiktok", "operation": "video_init", "account": "alice",
             "count": 1},
            {"kind": "rate_limit", "platform": "tiktok", "probability": 0},
        ]})).json()["ids"]
        assert len(ids) == 2
        # another account, another operation: untouched
        assert (await tiktok_init(http, headers=BOB)).status_code == 200
        assert (await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=ALICE)).status_code == 200
        failed = await tiktok_init(http)
        assert (failed.status_code, failed.json()["error"]["code"]) == (500, "internal_error")
        assert (await tiktok_init(http)).status_code == 200  # count spent
        listed = (await http.get("/_sandbox/faults")).json()
        assert [r["hits"] for r in listed["rules"]] == [1, 0]
        assert listed["injected"] == {"server_error": 1}
        assert (await http.get("/_sandbox/stats")).json()["faultsInjected"] == {"server_error": 1}
        assert (await http.delete(f"/_sandbox/faults/{ids[1]}")).status_code == 204
        assert (await http.delete("/_sandbox/faults/nope")).status_code == 404
        assert (await http.delete("/_sandbox/faults")).status_code == 204
        assert (await http.get("/_sandbox/faults")).json() == {"rules": [], "injected": {}}


async def test_skip_lets_requests_through_first_and_profiles_load():
    client, app = make_http()
    async with client as http:
        await http.post("/_sandbox/faults", json={"kind": "auth_expired", "platform": "youtube", "skip": 2,
                                                  "count": 1})
        listed = lambda: http.get("/youtube/youtube/v3/videos", headers=ALICE, params={"part": "id"})  # noqa: E731
        assert [(await listed()).status_code for _ in range(4)] == [200, 200, 401, 200]
        assert (await http.post("/_sandbox/faults", json={"profile": "flaky"})).status_code == 201
        kinds = {r["kind"] for r in (await http.get("/_sandbox/faults")).json()["rules"]}
        assert {"server_error", "rate_limit", "timeout", "lost_chunk", "processing_failure"} <= kinds
        assert (await http.post("/_sandbox/faults", json={"profile": "chaos"})).status_code == 400


async def test_a_timeout_answers_late_and_still_carries_the_request_out():
    client, app = make_http()
    async with client as http:
        await http.post("/_sandbox/faults", json={"kind": "timeout", "platform": "tiktok",
                                                  "operation": "video_init", "waitSeconds": 0.3})
        started = time.monotonic()
        reply = await tiktok_init(http)
        assert time.monotonic() - started >= 0.3
        assert reply.status_code == 200 and len(app.state.sandbox.tiktok.publishes) == 1


@pytest.mark.parametrize("platform, path, kind, status, code", [
    ("tiktok", "/tiktok/v2/post/publish/creator_info/query/", "rate_limit", 429, "rate_limit_exceeded"),
    ("tiktok", "/tiktok/v2/post/publish/creator_info/query/", "auth_expired", 401, "access_token_invalid"),
    ("tiktok", "/tiktok/v2/post/publish/creator_info/query/", "quota", 403, "spam_risk_too_many_posts"),
    ("instagram", "/instagram/v25.0/42/content_publishing_limit", "rate_limit", 400, 4),
    ("instagram", "/instagram/v25.0/42/content_publishing_limit", "server_error", 500, 2),
    ("instagram", "/instagram/v25.0/42/content_publishing_limit", "auth_expired", 400, 190),
    ("instagram", "/instagram/v25.0/42/content_publishing_limit", "quota", 400, 9),
    ("youtube", "/youtube/youtube/v3/videos?part=id&id=x", "rate_limit", 429, "rateLimitExceeded"),
    ("youtube", "/youtube/youtube/v3/videos?part=id&id=x", "server_error", 503, "backendError"),
    ("youtube", "/youtube/youtube/v3/videos?part=id&id=x", "auth_expired", 401, "authError"),
    ("youtube", "/youtube/youtube/v3/videos?part=id&id=x", "quota", 403, "quotaExceeded"),
])
async def test_faults_answer_in_the_platforms_own_envelope(platform, path, kind, status, code):
    client, _ = make_http()
    async with client as http:
        await http.post("/_sandbox/faults", json={"kind": kind, "platform": platform, "waitSeconds": 7})
        method = http.get if platform != "tiktok" else http.post
        reply = await method(path, headers=ALICE)
    body = reply.json()
    assert reply.status_code == status
    if platform == "tiktok":
        assert body["error"]["code"] == code and body["error"]["log_id"]
    elif platform == "instagram":
        assert body["error"]["code"] == code and body["error"]["fbtrace_id"]
    else:
        assert body["error"]["errors"][0]["reason"] == code
    if kind == "rate_limit" and platform != "instagram":
        assert reply.headers["retry-after"] == "7"


# -- TikTok --------------------------------------------------------------------------------------

async def test_tiktok_minute_limits_per_user_token_and_the_creators_daily_cap():
    client, _ = make_http(tiktok_daily_posts=3)
    async with client as http:
        statuses = [(await tiktok_init(http, title=f"post {i}")).status_code for i in range(3)]
        capped = await tiktok_init(http, title="post 4")
        assert statuses == [200, 200, 200]
        assert (capped.status_code, capped.json()["error"]["code"]) == (403, "spam_risk_too_many_posts")
        inits = [await tiktok_init(http, headers=BOB, title=f"b{i}") for i in range(7)]
        assert [r.status_code for r in inits[:3]] == [200] * 3
        codes = [r.json()["error"]["code"] for r in inits]
        assert "rate_limit_exceeded" in codes  # the 7th init within the minute
        assert inits[6].status_code == 429


async def test_tiktok_inbox_upload_ends_in_the_users_inbox_and_is_not_a_post():
    client, _ = make_http()
    async with client as http:
        init = await http.post("/tiktok/v2/post/publish/inbox/video/init/", headers=ALICE,
                               json={"source_info": {"source": "PULL_FROM_URL", "video_url": VIDEO}})
        publish_id = init.json()["data"]["publish_id"]
        status = (await http.post("/tiktok/v2/post/publish/status/fetch/", headers=ALICE,
                                  json={"publish_id": publish_id})).json()["data"]
        records = (await http.get("/_sandbox/published")).json()
    assert status["status"] == "SEND_TO_USER_INBOX" and records == []


async def test_tiktok_processing_failure_and_unaudited_clients():
    client, app = make_http(tiktok_unaudited=True)
    app.state.sandbox.tiktok.private_accounts.add("alice")
    async with client as http:
        assert (await tiktok_init(http, headers=BOB)).json()["error"]["code"] == \
            "unaudited_client_can_only_post_to_private_accounts"
        await http.post("/_sandbox/faults", json={"kind": "processing_failure", "reason": "spam_risk_text"})
        publish_id = (await tiktok_init(http, privacy="FOLLOWER_OF_CREATOR")).json()["data"]["publish_id"]
        status = (await http.post("/tiktok/v2/post/publish/status/fetch/", headers=ALICE,
                                  json={"publish_id": publish_id})).json()["data"]
        assert (status["status"], status["fail_reason"]) == ("FAILED", "spam_risk_text")
        assert app.state.sandbox.tiktok.publishes[publish_id].privacy == "SELF_ONLY"  # forced
        assert (await http.get("/_sandbox/published")).json() == []


# -- Instagram -----------------------------------------------------------------------------------

async def graph(http, method, path, **kwargs):
    return await http.request(method, f"/instagram/v25.0{path}", headers=ALICE, **kwargs)


async def test_instagram_carousel_rules():
    client, _ = make_http()
    async with client as http:
        child = lambda **p: graph(http, "POST", "/alice/media", data={"is_carousel_item": "true", **p})  # noqa: E731
        a = (await child(image_url=IMAGE)).json()["id"]
        b = (await child(media_type="VIDEO", video_url=VIDEO)).json()["id"]
        standalone = await graph(http, "POST", "/alice/media", data={"media_type": "VIDEO", "video_url": VIDEO})
        assert standalone.json()["error"]["error_subcode"] == 2207023
        one = await graph(http, "POST", "/alice/media", data={"media_type": "CAROUSEL", "children": a})
        assert one.json()["error"]["error_subcode"] == 2207028
        item_alone = await graph(http, "POST", "/alice/media_publish", data={"creation_id": a})
        assert item_alone.status_code == 400
        carousel = await graph(http, "POST", "/alice/media", data={"media_type": "CAROUSEL", "children": f"{a},{b}",
                                                                    "caption": "two"})
        media_id = (await graph(http, "POST", "/alice/media_publish",
                                data={"creation_id": carousel.json()["id"]})).json()["id"]
        media = (await graph(http, "GET", f"/{media_id}", params={"fields": "media_type,permalink"})).json()
        records = (await http.get("/_sandbox/published")).json()
    assert media["media_type"] == "CAROUSEL_ALBUM" and media["permalink"].startswith("https://www.instagram.com/p/")
    assert [r["remoteId"] for r in records] == [media_id]


async def test_instagram_publishing_limit_container_cap_and_usage_header():
    client, _ = make_http(instagram_publish_limit=1, instagram_container_limit=3, instagram_calls_per_hour=10)
    async with client as http:
        first = (await graph(http, "POST", "/alice/media", data={"image_url": IMAGE})).json()["id"]
        second = (await graph(http, "POST", "/alice/media", data={"image_url": IMAGE})).json()["id"]
        assert (await graph(http, "POST", "/alice/media_publish", data={"creation_id": first})).status_code == 200
        capped = await graph(http, "POST", "/alice/media_publish", data={"creation_id": second})
        assert (capped.json()["error"]["code"], capped.json()["error"]["error_subcode"]) == (9, 2207042)
        limit = (await graph(http, "GET", "/alice/content_publishing_limit")).json()["data"][0]
        assert limit == {"quota_usage": 1, "config": {"quota_total": 1, "quota_duration": 86400}}
        await graph(http, "POST", "/alice/media", data={"image_url": IMAGE})
        fourth = await graph(http, "POST", "/alice/media", data={"image_url": IMAGE})
        assert fourth.json()["error"]["code"] == 9  # 3 containers a day here
        usage = fourth.headers["x-business-use-case-usage"]
        assert '"call_count":70' in usage and '"type":"instagram"' in usage
        for _ in range(3):
            await graph(http, "GET", "/alice/content_publishing_limit")
        throttled = await graph(http, "GET", "/alice/content_publishing_limit")
    assert throttled.json()["error"]["code"] == 80002
    assert '"estimated_time_to_regain_access":' in throttled.headers["x-business-use-case-usage"]


async def test_instagram_processing_failure_and_stories_edge():
    client, _ = make_http()
    async with client as http:
        await http.post("/_sandbox/faults", json={"kind": "processing_failure", "reason": "2207026", "count": 1})
        broken = (await graph(http, "POST", "/alice/media", data={"image_url": IMAGE})).json()["id"]
        status = (await graph(http, "GET", f"/{broken}", params={"fields": "status_code,status"})).json()
        assert status["status_code"] == "ERROR" and "2207026" in status["status"]
        story = (await graph(http, "POST", "/alice/media", data={"media_type": "STORIES", "image_url": IMAGE})).json()
        await graph(http, "POST", "/alice/media_publish", data={"creation_id": story["id"]})
        stories = (await graph(http, "GET", "/alice/stories", params={"fields": "id,timestamp"})).json()["data"]
        feed = (await graph(http, "GET", "/alice/media", params={"fields": "id"})).json()["data"]
    assert len(stories) == 1 and feed == []


# -- YouTube -------------------------------------------------------------------------------------

async def start_session(http, headers=ALICE, status=None, title="A title") -> httpx.Response:
    return await http.post(
        "/youtube/upload/youtube/v3/videos", params={"uploadType": "resumable", "part": "snippet,status"},
        headers=headers, json={"snippet": {"title": title},
                               "status": status or {"privacyStatus": "public"}})


async def upload(http, session: str, size: int) -> httpx.Response:
    return await http.put(session, content=b"\0" * size, headers={"Content-Range": f"bytes 0-{size - 1}/{size}"})


async def test_youtube_quota_buckets_are_per_project():
    client, _ = make_http(youtube_daily_inserts=2, youtube_daily_units=3)
    async with client as http:
        assert (await start_session(http)).status_code == 200
        assert (await start_session(http, headers=BOB)).status_code == 200  # the project's bucket
        refused = await start_session(http)
        assert refused.status_code == 403
        assert refused.json()["error"]["errors"][0] == {
            "message": refused.json()["error"]["message"], "domain": "youtube.quota", "reason": "quotaExceeded"}
        listed = [await http.get("/youtube/youtube/v3/videos", headers=ALICE, params={"part": "id", "id": "x"})
                  for _ in range(4)]
    assert [r.status_code for r in listed] == [200, 200, 200, 403]


async def test_youtube_lost_chunk_keeps_part_expiry_is_404_and_uploads_are_listed():
    client, app = make_http()
    async with client as http:
        session = (await start_session(http)).headers["location"]
        await http.post("/_sandbox/faults", json={"kind": "lost_chunk", "count": 1})
        total = 3 * KIB256
        part = await upload(http, session, total)  # the whole file; half of it arrives
        assert (part.status_code, part.headers["range"]) == (308, f"bytes=0-{KIB256 - 1}")
        rest = await http.put(session, content=b"\0" * (total - KIB256),
                              headers={"Content-Range": f"bytes {KIB256}-{total - 1}/{total}"})
        video = rest.json()
        channel = (await http.get("/youtube/youtube/v3/channels", headers=ALICE,
                                  params={"part": "contentDetails", "mine": "true"})).json()["items"][0]
        uploads = (await http.get("/youtube/youtube/v3/playlistItems", headers=ALICE, params={
            "part": "snippet", "playlistId": channel["contentDetails"]["relatedPlaylists"]["uploads"]})).json()
        other = (await start_session(http, title="Other")).headers["location"]
        await http.post("/_sandbox/faults", json={"kind": "session_expired", "count": 1})
        gone = await upload(http, other, 10)
    assert rest.status_code == 201
    assert [i["snippet"]["resourceId"]["videoId"] for i in uploads["items"]] == [video["id"]]
    assert gone.status_code == 404


async def test_youtube_scheduled_video_goes_public_at_publish_at_and_failures_show():
    client, _ = make_http()
    async with client as http:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1.2))
        assert (await start_session(http, status={"privacyStatus": "public", "publishAt": at})).status_code == 400
        session = (await start_session(http, status={"privacyStatus": "private", "publishAt": at})).headers["location"]
        video = (await upload(http, session, 10)).json()
        await http.post("/_sandbox/faults", json={"kind": "processing_failure", "count": 1})
        failing = (await upload(http, (await start_session(http, title="B")).headers["location"], 10)).json()
        status = lambda i: http.get("/youtube/youtube/v3/videos", headers=ALICE,  # noqa: E731
                                    params={"part": "status", "id": i})
        before = (await status(video["id"])).json()["items"][0]["status"]
        await asyncio.sleep(2.3)
        after = (await status(video["id"])).json()["items"][0]["status"]
        failed = (await status(failing["id"])).json()["items"][0]["status"]
        records = (await http.get("/_sandbox/published")).json()
    assert (before["privacyStatus"], before["publishAt"]) == ("private", at)
    assert after["privacyStatus"] == "public" and "publishAt" not in after
    assert (failed["uploadStatus"], failed["failureReason"]) == ("failed", "uploadAborted")
    assert [r["remoteId"] for r in records] == [video["id"]]


# -- the record ----------------------------------------------------------------------------------

async def test_the_same_content_twice_counts_as_a_duplicate():
    client, _ = make_http()
    async with client as http:
        for title in ("same", "same", "different"):
            await tiktok_init(http, title=title)
        await tiktok_init(http, headers=BOB, title="same")  # another account: not a duplicate
        stats = (await http.get("/_sandbox/stats")).json()
        records = (await http.get("/_sandbox/published")).json()
    assert stats["duplicates"] == 1 and stats["tiktok"]["duplicates"] == 1
    assert [r["copy"] for r in records] == [1, 2, 1, 1]
