"""Instagram engagement by media product type: a story has its own insights metrics (no likes,
comments or saves), and none at all once it is 24 hours old (Meta's IG Media Insights reference)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from starlette.responses import JSONResponse

import sandbox
from contracts import ContentType, ErrorClass, MediaRef, Platform, PublishRequested, RemoteHandle
from services.publishers.platforms import Accepted, MediaPolicy, PlatformError, Published, build_client
from test_platform_clients import AnswerWith

ROOT = "http://sandbox"
IMAGE = f"{ROOT}/media/photo.jpg?bytes=50000"
VIDEO = f"{ROOT}/media/clip.mp4?bytes=300000"
ACCOUNT = "17841400000000001"
TOKEN = f"sandbox:{ACCOUNT}"
DAY = 86_400.0


class Recorder(sandbox.Faults):
    """Lets every call through and notes which operations were asked for, with their metrics."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    async def before(self, operation, request, account=None):
        params = request.query_params
        self.calls.append((operation, params.get("metric") or params.get("fields", "")))
        return None


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0, engagement_timescale_seconds=0.01))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
def client(http, tmp_path):
    return build_client(Platform.INSTAGRAM, http, f"{ROOT}/instagram", poll_interval=0.01, poll_timeout=5.0,
                        media_policy=MediaPolicy.sandbox().with_roots(tmp_path))


def store(app):
    return app.state.sandbox.instagram


async def publish(client, content_type: ContentType, url: str) -> RemoteHandle:
    request = PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.INSTAGRAM,
        account_id=ACCOUNT, attempt=1, content_type=content_type, caption="Launch day",
        media=[MediaRef(url=url)], scheduled_time=datetime.now(timezone.utc))
    outcome = await client.publish(request, TOKEN)
    assert isinstance(outcome, (Accepted, Published))
    return outcome.handle


def stored_before_the_fix(handle: RemoteHandle) -> RemoteHandle:
    """The handle as publishers wrote it before it kept the product type and publish time."""
    return handle.model_copy(update={"extra": {k: handle.extra[k] for k in ("containerId", "igUserId")}})


def age_story(app, handle: RemoteHandle, seconds: float) -> None:
    store(app).media[handle.id].published_at -= seconds


@pytest.mark.parametrize("url", [IMAGE, VIDEO])
async def test_a_storys_engagement_is_read_with_the_metrics_stories_have(client, app, url):
    handle = await publish(client, ContentType.STORY, url)
    assert handle.extra["productType"] == "STORY"
    # the queue makes its last collection before a story's figures are gone
    lives = (handle.figures_until - datetime.now(timezone.utc)).total_seconds()
    assert 86_400 - 60 < lives <= 86_400

    figures = await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)

    media = store(app).media[handle.id]
    truth = app.state.sandbox.engagement.figures("instagram", ACCOUNT, media.id, media.published_at)
    assert figures.views is not None and figures.views > 0
    assert figures.comments is not None, "a story's replies are its conversation"
    assert figures.shares is not None
    assert figures.likes is None and figures.saves is None, "stories have no such insight"
    assert figures.audience_size == app.state.sandbox.engagement.audience("instagram", ACCOUNT)
    assert figures.interactions <= sum(truth.values())


async def test_a_story_stored_before_its_product_type_was_kept_is_looked_up_first(client, app):
    handle = stored_before_the_fix(await publish(client, ContentType.STORY, IMAGE))
    recorder = store(app).faults = Recorder()

    figures = await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)

    assert figures.views is not None and figures.likes is None
    (asked,) = [metric for operation, metric in recorder.calls if operation == "instagram.insights"]
    assert "likes" not in asked.split(",") and "saved" not in asked.split(",")
    assert any(op == "instagram.node" and "media_product_type" in f for op, f in recorder.calls)


@pytest.mark.parametrize("content_type, url", [(ContentType.IMAGE, IMAGE), (ContentType.REEL, VIDEO)])
async def test_feed_posts_and_reels_keep_likes_comments_and_saves(client, content_type, url):
    handle = await publish(client, content_type, url)
    assert handle.extra["productType"] == ("REELS" if content_type is ContentType.REEL else "FEED")
    assert handle.figures_until is None, "read for as long as the queue likes"
    figures = await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert None not in (figures.views, figures.likes, figures.comments, figures.shares, figures.saves)


async def test_a_story_past_24_hours_is_not_available_for_good_without_asking(client, app):
    handle = await publish(client, ContentType.STORY, IMAGE)
    handle = handle.model_copy(update={"extra": {**handle.extra, "publishedAt": time.time() - DAY - 60}})
    recorder = store(app).faults = Recorder()

    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)

    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "engagement_not_available")
    assert "24" in raised.value.message
    assert recorder.calls == [], "nothing is asked of Graph for an expired story"


async def test_an_old_handles_expired_story_is_not_available_for_good(client, app):
    handle = stored_before_the_fix(await publish(client, ContentType.STORY, VIDEO))
    age_story(app, handle, DAY + 60)  # Graph's timestamp of the story tells its age

    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)

    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "engagement_not_available")


async def test_an_empty_answer_for_a_story_is_not_zero_engagement(client, app):
    """Graph gives an empty data set for insights that are "currently unavailable": while the
    story is live that is a read to try again, not figures of nothing."""
    handle = await publish(client, ContentType.STORY, IMAGE)
    store(app).faults = AnswerWith("instagram.insights", JSONResponse({"data": []}))

    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert raised.value.error_class is ErrorClass.RETRYABLE

    late = handle.model_copy(update={"extra": {**handle.extra, "publishedAt": time.time() - DAY + 1}})
    with pytest.raises(PlatformError) as raised:  # Graph's clock may be a little ahead of ours
        await client.fetch_engagement(late, TOKEN, ACCOUNT, None)
    assert raised.value.error_class is ErrorClass.RETRYABLE


async def test_graphs_refusal_of_a_metric_is_permanent(client, app):
    """What the sandbox answers a story asked for likes (as Graph does): never worth retrying."""
    handle = await publish(client, ContentType.STORY, IMAGE)
    store(app).faults = AnswerWith("instagram.insights", JSONResponse({"error": {
        "message": "(#100) The Media Insights API does not support the likes metric for this media product type.",
        "type": "OAuthException", "code": 100, "fbtrace_id": "A1"}}, 400))
    with pytest.raises(PlatformError) as raised:
        await client.fetch_engagement(handle, TOKEN, ACCOUNT, None)
    assert raised.value.error_class is ErrorClass.PERMANENT
