"""An upstream id names one post with one set of targets: the same event again gets the same
plan and books nothing more; the id reused for other targets, or other content, is refused and
books nothing."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from contracts import ContentSubmitted, Platform, post_id_for, target_id_for
from services.planner.domain import DEFAULT_LIMITS, PlanningContext, PlanningRejected, PostedContent, plan_content

UTC = timezone.utc
NOW = datetime(2025, 1, 15, 13, 0, 0, tzinfo=UTC)
TIKTOK, YOUTUBE, INSTAGRAM = ("tiktok", "brand.tt"), ("youtube", "brand-yt"), ("instagram", "brand.ig")


def event(targets: list[tuple[str, str]], upstream_id: str = "cms-42", **overrides: Any) -> ContentSubmitted:
    payload: dict[str, Any] = {
        "upstreamId": upstream_id,
        "contentType": "video",
        "media": [{"url": "https://cdn.example.com/clip.mp4"}],
        "caption": "Launch day",
        "targets": [{"platform": p, "accountId": a} for p, a in targets],
        "schedule": {"mode": "optimal"},
        "audienceData": {"timezone": "America/New_York", "activityHours": [9, 12, 19], "peakDays": ["mon", "wed"]},
    }
    payload.update(overrides)
    return ContentSubmitted.model_validate(payload)


def context() -> PlanningContext:
    return PlanningContext(limits=DEFAULT_LIMITS)  # spacing and daily caps count


def key(target: tuple[str, str]) -> tuple[Platform, str]:
    return Platform(target[0]), target[1]


def target_id(target: tuple[str, str], upstream_id: str = "cms-42"):
    return target_id_for(post_id_for(upstream_id), Platform(target[0]), target[1])


def refused(e: ContentSubmitted, ctx: PlanningContext) -> PlanningRejected:
    planned, calendars = dict(ctx.planned), copy.deepcopy(ctx.calendars)
    with pytest.raises(PlanningRejected) as caught:
        plan_content(e, NOW, ctx)
    assert (ctx.planned, ctx.calendars) == (planned, calendars), "a refused event books nothing"
    return caught.value


def test_the_same_event_again_gets_the_same_plan_and_books_nothing_more() -> None:
    ctx = context()
    first = plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)
    calendars = copy.deepcopy(ctx.calendars)

    again = plan_content(event([TIKTOK, YOUTUBE]), NOW + timedelta(minutes=5), ctx)

    assert [t.scheduled_time for t in again.targets] == [t.scheduled_time for t in first.targets]
    assert again.message_id == first.message_id and again.targets == first.targets
    assert ctx.calendars == calendars, "no second booking"


def test_the_same_targets_in_another_order_are_the_same_post() -> None:
    ctx = context()
    first = plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)

    again = plan_content(event([YOUTUBE, TIKTOK]), NOW, ctx)

    assert {t.target_id: t.scheduled_time for t in again.targets} == {
        t.target_id: t.scheduled_time for t in first.targets}


def test_an_added_target_is_refused_and_not_booked() -> None:
    """The defect: the YouTube target was booked (counted against its cap and spacing) and
    sent in post.planned, which the queue ignores for a post it already stored."""
    ctx = context()
    plan_content(event([TIKTOK]), NOW, ctx)

    rejection = refused(event([TIKTOK, YOUTUBE]), ctx)

    assert rejection.reason == "upstream_id_reused"
    assert [(d["type"], d["target"], d["field"]) for d in rejection.details] == [
        ("target_added", "youtube:brand-yt", "targets")]
    assert "'cms-42'" in rejection.message and "adds youtube:brand-yt" in rejection.message
    assert "new upstreamId" in rejection.message and "autopost cancel cms-42" in rejection.message
    assert target_id(YOUTUBE) not in ctx.planned and key(YOUTUBE) not in ctx.calendars
    assert ctx.posts == {post_id_for("cms-42"): {key(TIKTOK)}}, "the post keeps its targets"


def test_a_dropped_target_is_refused_since_the_post_would_still_go_there() -> None:
    ctx = context()
    plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)

    rejection = refused(event([TIKTOK]), ctx)

    assert rejection.reason == "upstream_id_reused"
    assert [(d["type"], d["target"]) for d in rejection.details] == [("target_removed", "youtube:brand-yt")]
    assert "drops youtube:brand-yt" in rejection.message


def test_other_targets_altogether_are_refused_naming_both_sides() -> None:
    ctx = context()
    plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)

    rejection = refused(event([INSTAGRAM, TIKTOK]), ctx)

    assert [(d["type"], d["target"]) for d in rejection.details] == [
        ("target_added", "instagram:brand.ig"), ("target_removed", "youtube:brand-yt")]
    assert "adds instagram:brand.ig and drops youtube:brand-yt" in rejection.message
    assert key(INSTAGRAM) not in ctx.calendars


def test_a_post_planned_in_an_earlier_batch_is_known_by_its_targets() -> None:
    """The handler's context, read from the store: the post's slots and its accounts."""
    earlier = context()
    first = plan_content(event([TIKTOK, YOUTUBE]), NOW, earlier)
    stored = PlanningContext(
        limits=DEFAULT_LIMITS, calendars=copy.deepcopy(earlier.calendars), planned=dict(earlier.planned),
        posts={post_id_for("cms-42"): frozenset({key(TIKTOK), key(YOUTUBE)})},
    )

    assert plan_content(event([TIKTOK, YOUTUBE]), NOW, stored).targets == first.targets
    # only the TikTok target's slot is among those read: the post's accounts still say YouTube
    rejection = refused(event([TIKTOK]), stored)
    assert [(d["type"], d["target"]) for d in rejection.details] == [("target_removed", "youtube:brand-yt")]
    # a post with none of the event's accounts is refused too, though none of its slots match
    rejection = refused(event([INSTAGRAM]), stored)
    assert {d["type"] for d in rejection.details} == {"target_added", "target_removed"}


def test_a_context_with_slots_but_no_posts_still_refuses_an_added_target() -> None:
    earlier = context()
    plan_content(event([TIKTOK]), NOW, earlier)
    ctx = PlanningContext(limits=DEFAULT_LIMITS, calendars=earlier.calendars, planned=earlier.planned)

    assert refused(event([TIKTOK, YOUTUBE]), ctx).reason == "upstream_id_reused"


def test_a_reused_id_is_refused_as_reused_even_once_its_window_closed() -> None:
    closed = {"mode": "optimal", "notAfter": (NOW + timedelta(days=1)).isoformat()}
    ctx = context()
    plan_content(event([TIKTOK], schedule=closed), NOW, ctx)
    later = NOW + timedelta(days=2)

    assert plan_content(event([TIKTOK], schedule=closed), later, ctx).targets[0].target_id == target_id(TIKTOK)
    with pytest.raises(PlanningRejected) as caught:
        plan_content(event([TIKTOK, YOUTUBE], schedule=closed), later, ctx)
    assert caught.value.reason == "upstream_id_reused"


def test_a_refused_reuse_leaves_room_for_the_accounts_next_post() -> None:
    """The added target is not booked: YouTube's next post gets the slot it would have had."""
    ctx, fresh = context(), context()
    plan_content(event([TIKTOK]), NOW, ctx)
    refused(event([TIKTOK, YOUTUBE]), ctx)

    other = plan_content(event([YOUTUBE], upstream_id="cms-43"), NOW, ctx)

    assert other.targets == plan_content(event([YOUTUBE], upstream_id="cms-43"), NOW, fresh).targets


def test_the_same_targets_with_other_content_are_refused_and_book_nothing() -> None:
    """The defect: the edit was planned and sent, and the queue silently kept the post it
    stored first: upstream never learnt its edit would not go out."""
    ctx = context()
    first = plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)

    rejection = refused(event([TIKTOK, YOUTUBE], caption="Launch day, edited",
                              media=[{"url": "https://cdn.example.com/other.mp4"}]), ctx)

    assert rejection.reason == "upstream_id_reused"
    assert [(d["field"], d["type"], d.get("target")) for d in rejection.details] == [
        ("media", "content_changed", None), ("caption", "content_changed", None),
        ("targets", "content_changed", "tiktok:brand.tt"), ("targets", "content_changed", "youtube:brand-yt")]
    assert "'cms-42' is already planned with other content" in rejection.message
    assert "new upstreamId" in rejection.message and "autopost cancel cms-42" in rejection.message
    assert ctx.contents[first.post_id].content == first.content, "the post keeps its content"


def test_one_targets_own_text_changed_is_refused_naming_it() -> None:
    ctx = context()
    plan_content(event([TIKTOK, YOUTUBE]), NOW, ctx)
    retagged = ContentSubmitted.model_validate({**event([TIKTOK, YOUTUBE]).to_wire(), "targets": [
        {"platform": "tiktok", "accountId": "brand.tt"},
        {"platform": "youtube", "accountId": "brand-yt", "hashtags": ["shorts"]}]})

    rejection = refused(retagged, ctx)

    assert [(d["field"], d["target"]) for d in rejection.details] == [("targets", "youtube:brand-yt")]
    assert "the hashtags for youtube:brand-yt" in rejection.message


def test_the_same_content_redelivered_with_a_recomputed_window_is_the_same_plan() -> None:
    """At-least-once: a producer that sends again may recompute what only places the post."""
    ctx = context()
    first = plan_content(event([TIKTOK]), NOW, ctx)
    later = {"mode": "optimal", "notBefore": (NOW + timedelta(hours=1)).isoformat()}

    again = plan_content(event([TIKTOK], schedule=later, hashtags=[]), NOW + timedelta(hours=1), ctx)

    assert again == first.model_copy(update={"planned_at": again.planned_at})


def test_a_post_planned_in_an_earlier_batch_is_known_by_its_content() -> None:
    """The handler's context, read from the store: what the queue (or the planner's unconfirmed
    record) keeps of the post."""
    earlier = context()
    first = plan_content(event([TIKTOK]), NOW, earlier)
    stored = PlanningContext(limits=DEFAULT_LIMITS, planned=dict(earlier.planned),
                             posts={first.post_id: frozenset({key(TIKTOK)})},
                             contents={first.post_id: PostedContent.of(first)})

    assert plan_content(event([TIKTOK]), NOW, stored).targets == first.targets
    assert refused(event([TIKTOK], contentType="reel"), stored).details[0]["field"] == "contentType"
