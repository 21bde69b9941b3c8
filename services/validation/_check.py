"""The rules of each platform and content type, applied to what one target would publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from contracts import ContentSubmitted, ContentType, Platform, PublishRequested

from . import _limits as limits
from ._limits import MediaRule
from ._media import MediaFacts, check_item, declared_facts, normal_mime
from ._problems import Problem, Reason
from ._text import (
    hashtag_count,
    mention_count,
    posted_caption,
    utf16_units,
    youtube_description,
    youtube_tags_length,
    youtube_title,
)


@dataclass(frozen=True, slots=True)
class Draft:
    """One target's post as it would go out; the field names say where its parts came from."""

    platform: Platform
    account_id: str
    content_type: ContentType
    media: tuple[MediaFacts, ...]
    caption: str
    hashtags: list[str]
    caption_field: str = "caption"
    hashtags_field: str = "hashtags"

    @property
    def target(self) -> str:
        return f"{self.platform.value}:{self.account_id}"


def content_problems(event: ContentSubmitted) -> list[Problem]:
    """Every rule any target of the event breaks (none: the event may be queued)."""
    media = tuple(declared_facts(m) for m in event.media)
    problems: list[Problem] = []
    for index, target in enumerate(event.targets):
        own_caption, own_tags = target.caption is not None, target.hashtags is not None
        problems += draft_problems(Draft(
            target.platform, target.account_id, event.content_type, media,
            target.caption if own_caption else event.caption,
            target.hashtags if own_tags else event.hashtags,
            f"targets.{index}.caption" if own_caption else "caption",
            f"targets.{index}.hashtags" if own_tags else "hashtags",
        ))
    return problems


def publish_problems(request: PublishRequested) -> list[Problem]:
    """The same rules, on a publish request, before the publisher calls the platform."""
    return draft_problems(_draft_of(request))


def fetched_media_problems(request: PublishRequested, index: int, *, size_bytes: int | None,
                           content_type: str | None) -> list[Problem]:
    """Media item `index` as the publisher found it when fetching it (size, Content-Type)."""
    draft = _draft_of(request)
    declared = draft.media[index]
    fetched = replace(declared, mime=normal_mime(content_type) or declared.mime,
                      size_bytes=size_bytes if size_bytes is not None else declared.size_bytes)
    media = draft.media[:index] + (fetched,) + draft.media[index + 1:]
    rules, _ = _LAYOUTS[draft.platform](draft.content_type, media, draft.target)
    if index >= len(rules) or rules[index] is None:
        return []
    return check_item(rules[index], fetched, f"media.{index}", draft.target)


def draft_problems(draft: Draft) -> list[Problem]:
    rules, problems = _LAYOUTS[draft.platform](draft.content_type, draft.media, draft.target)
    for index, (rule, facts) in enumerate(zip(rules, draft.media)):
        if rule is not None:
            problems += check_item(rule, facts, f"media.{index}", draft.target)
    return problems + _TEXT_RULES[draft.platform](draft, rules)


def _draft_of(request: PublishRequested) -> Draft:
    return Draft(request.platform, request.account_id, request.content_type,
                 tuple(declared_facts(m) for m in request.media), request.caption, request.hashtags)


# -- which rule each media item answers to ------------------------------------------------------

Layout = tuple[list[MediaRule | None], list[Problem]]


def _count_problem(target: str, message: str) -> Problem:
    return Problem(Reason.MEDIA_COUNT, "media", message, target)


def _tiktok_layout(content_type: ContentType, media: tuple[MediaFacts, ...], target: str) -> Layout:
    # a story has no TikTok equivalent: it goes out as a video or photo post, by its media
    video = {ContentType.IMAGE: False, ContentType.STORY: media[0].kind != "image"}.get(content_type, True)
    if video:
        problems = [] if len(media) == 1 else [_count_problem(target, "a TikTok video post takes one video")]
        return [limits.TIKTOK_VIDEO] * len(media), problems
    problems = [] if len(media) <= limits.TIKTOK_MAX_PHOTOS else [
        _count_problem(target, f"a TikTok photo post takes up to {limits.TIKTOK_MAX_PHOTOS} photos")]
    return [limits.TIKTOK_PHOTO] * len(media), problems


def _instagram_layout(content_type: ContentType, media: tuple[MediaFacts, ...], target: str) -> Layout:
    count = len(media)
    if content_type is ContentType.STORY:
        rule = limits.INSTAGRAM_STORY_IMAGE if media[0].kind == "image" else limits.INSTAGRAM_STORY_VIDEO
        return [rule] + [None] * (count - 1), [] if count == 1 else [
            _count_problem(target, "an Instagram story takes one image or video")]
    if content_type is ContentType.REEL:
        return [limits.INSTAGRAM_REEL] + [None] * (count - 1), [] if count == 1 else [
            _count_problem(target, "an Instagram reel takes one video (reels cannot be carousel items)")]
    if count == 1:  # single feed videos publish as reels
        return [limits.INSTAGRAM_IMAGE if content_type is ContentType.IMAGE else limits.INSTAGRAM_REEL], []
    low, high = limits.INSTAGRAM_CAROUSEL_ITEMS
    problems = [] if count <= high else [_count_problem(target, f"an Instagram carousel takes {low}–{high} items")]
    default = "image" if content_type is ContentType.IMAGE else "video"
    rules: list[MediaRule | None] = [
        limits.INSTAGRAM_IMAGE if (m.kind or default) == "image" else limits.INSTAGRAM_CAROUSEL_VIDEO
        for m in media]
    return rules, problems


def _youtube_layout(content_type: ContentType, media: tuple[MediaFacts, ...], target: str) -> Layout:
    if content_type is ContentType.IMAGE:
        problem = Problem(Reason.UNSUPPORTED_CONTENT_TYPE, "contentType", "YouTube takes videos, not images",
                          target)
        return [None] * len(media), [problem]
    rule = limits.YOUTUBE_SHORT if content_type is ContentType.REEL else limits.YOUTUBE_VIDEO
    problems = [] if len(media) == 1 else [_count_problem(target, "a YouTube upload takes one video")]
    return [rule] + [None] * (len(media) - 1), problems


_LAYOUTS: dict[Platform, Callable[[ContentType, tuple[MediaFacts, ...], str], Layout]] = {
    Platform.TIKTOK: _tiktok_layout,
    Platform.INSTAGRAM: _instagram_layout,
    Platform.YOUTUBE: _youtube_layout,
}


# -- text ---------------------------------------------------------------------------------------

def _tiktok_text(draft: Draft, rules: list[MediaRule | None]) -> list[Problem]:
    photos = bool(rules) and rules[0] is limits.TIKTOK_PHOTO
    limit = limits.TIKTOK_PHOTO_CAPTION_UTF16 if photos else limits.TIKTOK_VIDEO_CAPTION_UTF16
    units = utf16_units(posted_caption(draft.caption, draft.hashtags))
    if units <= limit:
        return []
    what = "photo description" if photos else "video caption"
    return [Problem(Reason.CAPTION_TOO_LONG, draft.caption_field,
                    f"TikTok {what} with hashtags is {units} UTF-16 units, {limit} allowed", draft.target)]


def _instagram_text(draft: Draft, rules: list[MediaRule | None]) -> list[Problem]:
    if draft.content_type is ContentType.STORY:
        return []  # stories carry no caption
    text = posted_caption(draft.caption, draft.hashtags)
    problems = []
    if len(text) > limits.INSTAGRAM_CAPTION_CHARS:
        problems.append(Problem(Reason.CAPTION_TOO_LONG, draft.caption_field,
                                f"Instagram caption with hashtags is {len(text)} characters, "
                                f"{limits.INSTAGRAM_CAPTION_CHARS} allowed", draft.target))
    if (tags := hashtag_count(text)) > limits.INSTAGRAM_MAX_HASHTAGS:
        problems.append(Problem(Reason.TOO_MANY_HASHTAGS, draft.hashtags_field,
                                f"Instagram caption has {tags} hashtags, {limits.INSTAGRAM_MAX_HASHTAGS} allowed",
                                draft.target))
    if (mentions := mention_count(text)) > limits.INSTAGRAM_MAX_MENTIONS:
        problems.append(Problem(Reason.TOO_MANY_MENTIONS, draft.caption_field,
                                f"Instagram caption has {mentions} @mentions, "
                                f"{limits.INSTAGRAM_MAX_MENTIONS} allowed", draft.target))
    return problems


def _youtube_text(draft: Draft, rules: list[MediaRule | None]) -> list[Problem]:
    problems = []
    title = youtube_title(draft.caption)
    if len(title) > limits.YOUTUBE_TITLE_CHARS:
        problems.append(Problem(Reason.TITLE_TOO_LONG, draft.caption_field,
                                f"YouTube title (the caption's first line) is {len(title)} characters, "
                                f"{limits.YOUTUBE_TITLE_CHARS} allowed", draft.target))
    size = len(youtube_description(draft.caption, draft.hashtags).encode())
    if size > limits.YOUTUBE_DESCRIPTION_BYTES:
        problems.append(Problem(Reason.DESCRIPTION_TOO_LONG, draft.caption_field,
                                f"YouTube description (caption and hashtags) is {size} bytes UTF-8, "
                                f"{limits.YOUTUBE_DESCRIPTION_BYTES} allowed", draft.target))
    if (length := youtube_tags_length(draft.hashtags)) > limits.YOUTUBE_TAGS_CHARS:
        problems.append(Problem(Reason.TAGS_TOO_LONG, draft.hashtags_field,
                                f"YouTube tags take {length} characters, {limits.YOUTUBE_TAGS_CHARS} allowed",
                                draft.target))
    return problems


_TEXT_RULES: dict[Platform, Callable[[Draft, list[MediaRule | None]], list[Problem]]] = {
    Platform.TIKTOK: _tiktok_text,
    Platform.INSTAGRAM: _instagram_text,
    Platform.YOUTUBE: _youtube_text,
}
