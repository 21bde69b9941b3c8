"""Each platform's rules, per content type, on what a target would publish."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
import pytest

from contracts import ContentSubmitted, ContentType, MediaRef, Platform, PublishRequested
from services.validation import (
    Reason,
    content_problems,
    fetched_media_problems,
    publish_problems,
    rejection_for,
)

VIDEO = {"url": "https://cdn.example/clip.mp4", "mimeType": "video/mp4"}
JPEG = {"url": "https://cdn.example/photo.jpg"}
ACCOUNTS = {"tiktok": "brand.tt", "instagram": "1784", "youtube": "UCbrand"}


def event(platforms=("tiktok", "instagram", "youtube"), media=(VIDEO,), content_type="video",
          caption="Launch day", hashtags=("launch",), targets: list[dict] | None = None) -> ContentSubmitted:
    return ContentSubmitted.model_validate({
        "upstreamId": "cms-1",
        "targets": targets or [{"platform": p, "accountId": ACCOUNTS[p]} for p in platforms],
        "media": list(media), "caption": caption, "hashtags": list(hashtags),
        "contentType": content_type,
    })


def reasons(problems) -> set[tuple[str, str | None, str]]:
    return {(p.reason, p.target.split(":")[0] if p.target else None, p.field) for p in problems}


def request(platform: str, content_type: str, *media: dict, caption: str = "hi",
            hashtags: tuple[str, ...] = ()) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform(platform),
        account_id=ACCOUNTS[platform], attempt=1, content_type=ContentType(content_type), caption=caption,
        hashtags=list(hashtags), media=[MediaRef.model_validate(m) for m in media],
        scheduled_time=datetime.now(timezone.utc))


def test_an_ordinary_video_passes_everywhere() -> None:
    assert content_problems(event()) == []
    assert content_problems(event(content_type="reel")) == []


def test_unknown_facts_are_not_held_against_a_post() -> None:
    assert content_problems(event(media=({"url": "https://cdn.example/v"},))) == []


# -- captions, hashtags, mentions ----------------------------------------------------------------

def test_instagram_caption_length_counts_the_hashtags_it_is_sent_with() -> None:
    problems = content_problems(event(["instagram"], caption="x" * 2190, hashtags=("abcdefghij",)))
    assert reasons(problems) == {(Reason.CAPTION_TOO_LONG, "instagram", "caption")}
    assert content_problems(event(["instagram"], caption="x" * 2189, hashtags=("abcdefghi",))) == []


def test_instagram_allows_30_hashtags_and_20_mentions() -> None:
    tags = tuple(f"t{i}" for i in range(30))
    mentions = " ".join(f"@user{i}" for i in range(20))
    assert content_problems(event(["instagram"], caption=mentions, hashtags=tags)) == []
    problems = content_problems(event(["instagram"], caption=mentions + " @one #more", hashtags=tags))
    assert reasons(problems) == {(Reason.TOO_MANY_HASHTAGS, "instagram", "hashtags"),
                                 (Reason.TOO_MANY_MENTIONS, "instagram", "caption")}


def test_an_email_address_is_not_a_mention() -> None:
    caption = " ".join(f"mail{i}@example.com" for i in range(25))
    assert content_problems(event(["instagram"], caption=caption)) == []


def test_stories_carry_no_caption_so_its_length_does_not_matter() -> None:
    assert content_problems(event(["instagram"], content_type="story", caption="x" * 3000)) == []


def test_tiktok_counts_utf16_units() -> None:
    emoji = "\U0001F600"  # two UTF-16 units
    assert content_problems(event(["tiktok"], caption=emoji * 1100, hashtags=())) == []
    problems = content_problems(event(["tiktok"], caption=emoji * 1100 + "x", hashtags=()))
    assert reasons(problems) == {(Reason.CAPTION_TOO_LONG, "tiktok", "caption")}


def test_tiktok_photo_description_allows_4000() -> None:
    photo = {"url": "https://cdn.example/p.jpg"}
    assert content_problems(event(["tiktok"], media=(photo,), content_type="image", caption="x" * 3990)) == []
    problems = content_problems(event(["tiktok"], media=(photo,), content_type="image", caption="x" * 4001))
    assert reasons(problems) == {(Reason.CAPTION_TOO_LONG, "tiktok", "caption")}


def test_a_target_s_own_text_is_checked_and_named() -> None:
    problems = content_problems(event(targets=[
        {"platform": "tiktok", "accountId": "a"},
        {"platform": "instagram", "accountId": "b", "caption": "y" * 2300},
    ]))
    [problem] = problems
    assert (problem.reason, problem.field, problem.target) == (Reason.CAPTION_TOO_LONG, "targets.1.caption",
                                                               "instagram:b")


def test_youtube_title_description_and_tags() -> None:
    assert content_problems(event(["youtube"], caption="T" * 100 + "\nbody")) == []
    long_title = content_problems(event(["youtube"], caption="T" * 101 + "\nbody"))
    assert reasons(long_title) == {(Reason.TITLE_TOO_LONG, "youtube", "caption")}
    # angle brackets are dropped by the client, not a reason to refuse
    assert content_problems(event(["youtube"], caption="<" + "T" * 100 + ">")) == []
    long_body = content_problems(event(["youtube"], caption="title\n" + "é" * 2500))
    assert reasons(long_body) == {(Reason.DESCRIPTION_TOO_LONG, "youtube", "caption")}
    tags = tuple(f"tag{i:03d}" for i in range(71))  # 71 x 6 + 70 commas = 496
    assert content_problems(event(["youtube"], hashtags=tags)) == []
    too_many = content_problems(event(["youtube"], hashtags=tags + ("abcd",)))
    assert reasons(too_many) == {(Reason.TAGS_TOO_LONG, "youtube", "hashtags")}


# -- media --------------------------------------------------------------------------------------

def test_youtube_takes_no_images() -> None:
    problems = content_problems(event(["youtube"], media=(JPEG,), content_type="image"))
    assert reasons(problems) == {(Reason.UNSUPPORTED_CONTENT_TYPE, "youtube", "contentType")}


def test_media_of_the_wrong_kind_is_invalid_media() -> None:
    problems = content_problems(event(media=(JPEG,), content_type="reel"))
    assert {(r, t) for r, t, _ in reasons(problems)} == {
        (Reason.INVALID_MEDIA, "tiktok"), (Reason.INVALID_MEDIA, "instagram"), (Reason.INVALID_MEDIA, "youtube")}


@pytest.mark.parametrize("platform, content_type, media, reason, field", [
    ("tiktok", "video", {**VIDEO, "mimeType": "video/x-matroska"}, Reason.INVALID_MEDIA, "media.0.mimeType"),
    ("tiktok", "video", {**VIDEO, "sizeBytes": 5 * 1024 ** 3}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("tiktok", "video", {**VIDEO, "durationSec": 2}, Reason.DURATION, "media.0.durationSec"),
    ("tiktok", "video", {**VIDEO, "durationSec": 601}, Reason.DURATION, "media.0.durationSec"),
    ("tiktok", "video", {**VIDEO, "width": 320, "height": 640}, Reason.RESOLUTION, "media.0.width"),
    ("tiktok", "image", {"url": "https://c/p.png"}, Reason.INVALID_MEDIA, "media.0.mimeType"),
    ("tiktok", "image", {**JPEG, "sizeBytes": 21_000_000}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("tiktok", "image", {**JPEG, "width": 2000, "height": 1440}, Reason.RESOLUTION, "media.0.width"),
    ("tiktok", "image", {"url": "file:///srv/p.jpg"}, Reason.INVALID_MEDIA, "media.0.url"),
    ("instagram", "image", {"url": "https://c/p.webp"}, Reason.INVALID_MEDIA, "media.0.mimeType"),
    ("instagram", "image", {**JPEG, "sizeBytes": 9 * 1024 ** 2}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("instagram", "image", {**JPEG, "width": 1000, "height": 1300}, Reason.ASPECT_RATIO, "media.0.width"),
    ("instagram", "image", {**JPEG, "width": 2000, "height": 1000}, Reason.ASPECT_RATIO, "media.0.width"),
    ("instagram", "reel", {**VIDEO, "durationSec": 901}, Reason.DURATION, "media.0.durationSec"),
    ("instagram", "reel", {**VIDEO, "sizeBytes": 301_000_000}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("instagram", "reel", {**VIDEO, "width": 2160, "height": 3840}, Reason.RESOLUTION, "media.0.width"),
    ("instagram", "reel", {**VIDEO, "mimeType": "video/webm"}, Reason.INVALID_MEDIA, "media.0.mimeType"),
    ("instagram", "video", {"url": "file:///srv/v.mp4"}, Reason.INVALID_MEDIA, "media.0.url"),
    ("instagram", "story", {**VIDEO, "durationSec": 61}, Reason.DURATION, "media.0.durationSec"),
    ("instagram", "story", {**VIDEO, "sizeBytes": 101_000_000}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("instagram", "story", {**VIDEO, "width": 2000, "height": 100}, Reason.ASPECT_RATIO, "media.0.width"),
    ("instagram", "story", {**JPEG, "sizeBytes": 9 * 1024 ** 2}, Reason.MEDIA_TOO_LARGE, "media.0.sizeBytes"),
    ("youtube", "reel", {**VIDEO, "durationSec": 181}, Reason.DURATION, "media.0.durationSec"),
    ("youtube", "reel", {**VIDEO, "width": 1920, "height": 1080}, Reason.ASPECT_RATIO, "media.0.width"),
    ("youtube", "video", {**VIDEO, "mimeType": "image/gif"}, Reason.INVALID_MEDIA, "media.0.mimeType"),
])
def test_media_rules(platform, content_type, media, reason, field) -> None:
    problems = content_problems(event([platform], media=(media,), content_type=content_type))
    assert [(p.reason, p.field) for p in problems] == [(reason, field)], problems
    assert problems[0].target == f"{platform}:{ACCOUNTS[platform]}"


@pytest.mark.parametrize("platform, content_type, media", [
    ("tiktok", "video", {**VIDEO, "sizeBytes": 4 * 1024 ** 3, "durationSec": 600, "width": 1080, "height": 1920}),
    ("tiktok", "image", {**JPEG, "sizeBytes": 20_000_000, "width": 1080, "height": 1920}),
    ("instagram", "image", {**JPEG, "sizeBytes": 8 * 1024 ** 2, "width": 1080, "height": 1350}),
    ("instagram", "image", {**JPEG, "width": 1910, "height": 1000}),
    ("instagram", "reel", {**VIDEO, "durationSec": 900, "width": 1080, "height": 1920}),
    ("instagram", "story", {**VIDEO, "durationSec": 60, "width": 1080, "height": 1920}),
    ("youtube", "reel", {**VIDEO, "durationSec": 180, "width": 1080, "height": 1080}),
    ("youtube", "video", {**VIDEO, "durationSec": 7200, "width": 3840, "height": 2160}),
])
def test_media_at_the_limits_passes(platform, content_type, media) -> None:
    assert content_problems(event([platform], media=(media,), content_type=content_type)) == []


def test_media_counts() -> None:
    photos = tuple({"url": f"https://c/p{i}.jpg"} for i in range(36))
    assert reasons(publish_problems(request("tiktok", "image", *photos))) == {
        (Reason.MEDIA_COUNT, "tiktok", "media")}
    assert content_problems(event(["tiktok"], media=photos[:35], content_type="image")) == []
    # several images on Instagram are a carousel of 2-10, videos allowed among them
    assert content_problems(event(["instagram"], media=photos[:9] + (VIDEO,), content_type="image")) == []
    assert reasons(content_problems(event(["instagram"], media=photos[:11], content_type="image"))) == {
        (Reason.MEDIA_COUNT, "instagram", "media")}
    for content_type in ("reel", "story"):
        problems = content_problems(event(["instagram"], media=(VIDEO, VIDEO), content_type=content_type))
        assert reasons(problems) == {(Reason.MEDIA_COUNT, "instagram", "media")}
    assert reasons(content_problems(event(["youtube", "tiktok"], media=(VIDEO, VIDEO)))) == {
        (Reason.MEDIA_COUNT, "youtube", "media"), (Reason.MEDIA_COUNT, "tiktok", "media")}


def test_carousel_items_answer_to_the_image_rules() -> None:
    media = (JPEG, {"url": "https://c/p.png"})
    problems = content_problems(event(["instagram"], media=media, content_type="image"))
    assert [(p.reason, p.field) for p in problems] == [(Reason.INVALID_MEDIA, "media.1.mimeType")]


# -- rejection and the publisher's side ----------------------------------------------------------

def test_rejection_names_every_problem() -> None:
    problems = content_problems(event(media=({**VIDEO, "durationSec": 1000},), caption="T" * 3000))
    error = rejection_for(problems)
    assert error.reason == problems[0].reason
    assert {d["target"] for d in error.details} == {"tiktok:brand.tt", "instagram:1784", "youtube:UCbrand"}
    assert all(set(d) == {"field", "type", "message", "target"} for d in error.details)
    assert "tiktok:brand.tt" in error.message


def test_publish_request_is_checked_the_same_way() -> None:
    assert publish_problems(request("instagram", "reel", VIDEO, caption="fine")) == []
    [problem] = publish_problems(request("instagram", "reel", {**VIDEO, "durationSec": 2}))
    assert (problem.reason, problem.field) == (Reason.DURATION, "media.0.durationSec")


def test_what_the_publisher_learns_fetching_media_is_checked() -> None:
    publish = request("tiktok", "video", {"url": "https://c/v"})
    assert fetched_media_problems(publish, 0, size_bytes=10_000, content_type="video/mp4") == []
    [big] = fetched_media_problems(publish, 0, size_bytes=5 * 1024 ** 3, content_type="video/mp4")
    assert big.reason == Reason.MEDIA_TOO_LARGE
    [wrong] = fetched_media_problems(publish, 0, size_bytes=None, content_type="text/html; charset=utf-8")
    assert wrong.reason == Reason.INVALID_MEDIA
    # a host that does not say what it serves tells nothing
    assert fetched_media_problems(publish, 0, size_bytes=None, content_type="application/octet-stream") == []
