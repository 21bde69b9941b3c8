"""The Instagram sandbox's media insights follow the media product type, as Graph's do: a story
is refused the metrics it has not (likes, comments, saved), a feed post or reel the story-only
ones (replies, navigation); a story's insights are gone once it is 24 hours old."""

from __future__ import annotations

import httpx
import pytest

import sandbox

ACCOUNT = "17841400000000001"
HEADERS = {"Authorization": f"Bearer sandbox:{ACCOUNT}"}
IMAGE = "http://sandbox/media/photo.jpg?bytes=50000"
VIDEO = "http://sandbox/media/clip.mp4?bytes=300000"


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0.0, engagement_timescale_seconds=0.01))


@pytest.fixture
async def graph(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox/instagram/v25.0",
                                 headers=HEADERS) as http:
        yield http


async def published(graph, **params) -> str:
    created = await graph.post(f"/{ACCOUNT}/media", data=params)
    assert created.status_code == 200, created.text
    media = await graph.post(f"/{ACCOUNT}/media_publish", data={"creation_id": created.json()["id"]})
    assert media.status_code == 200, media.text
    return media.json()["id"]


async def insights(graph, media_id: str, metric: str) -> httpx.Response:
    return await graph.get(f"/{media_id}/insights", params={"metric": metric, "period": "lifetime"})


@pytest.mark.parametrize("params", [{"media_type": "STORIES", "image_url": IMAGE},
                                    {"media_type": "STORIES", "video_url": VIDEO}])
async def test_a_story_has_its_own_metrics(graph, params):
    story = await published(graph, **params)
    answer = await insights(graph, story, "views,reach,replies,shares,navigation,total_interactions")
    assert answer.status_code == 200, answer.text
    values = {m["name"]: m["values"][0]["value"] for m in answer.json()["data"]}
    assert set(values) == {"views", "reach", "replies", "shares", "navigation", "total_interactions"}
    assert all(isinstance(v, int) and v >= 0 for v in values.values())


@pytest.mark.parametrize("metric", ["likes", "comments", "saved", "views,likes,comments,shares,saved"])
async def test_a_story_asked_for_a_metric_it_has_not_is_refused_like_graph_does(graph, metric):
    story = await published(graph, media_type="STORIES", image_url=IMAGE)
    answer = await insights(graph, story, metric)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException" and error["fbtrace_id"]
    assert "for this media product type" in error["message"]
    refused = [m for m in metric.split(",") if m in {"likes", "comments", "saved"}]
    assert all(m in error["message"] for m in refused)
    assert "views" not in error["message"] and "shares" not in error["message"], "only the unsupported are named"


@pytest.mark.parametrize("params", [{"image_url": IMAGE}, {"media_type": "REELS", "video_url": VIDEO}])
async def test_feed_posts_and_reels_have_no_story_metrics(graph, params):
    media_id = await published(graph, caption="hello", **params)
    assert (await insights(graph, media_id, "views,likes,comments,shares,saved")).status_code == 200
    refused = await insights(graph, media_id, "replies")
    assert refused.status_code == 400 and "for this media product type" in refused.json()["error"]["message"]


async def test_a_metric_graph_never_heard_of_is_refused_as_unknown(graph):
    media_id = await published(graph, image_url=IMAGE, caption="hello")
    answer = await insights(graph, media_id, "impressions_of_the_future")
    assert answer.status_code == 400 and "must be one of" in answer.json()["error"]["message"]


async def test_a_storys_insights_are_gone_after_24_hours(graph, app):
    story = await published(graph, media_type="STORIES", image_url=IMAGE)
    app.state.sandbox.instagram.media[story].published_at -= 86_400 + 60
    answer = await insights(graph, story, "views,replies,shares")
    # "If insights data you are requesting does not exist or is currently unavailable, the API
    # returns an empty data set instead of 0" (IG Media Insights reference)
    assert answer.status_code == 200 and answer.json()["data"] == []
