"""The text a platform will be sent, and how each platform counts it."""

from __future__ import annotations

import re

from contracts import normalise_hashtags

_HASHTAG = re.compile(r"(?<![\w&#])#[^\s#]+")
_MENTION = re.compile(r"(?<![\w.@])@[A-Za-z0-9._]+")


def posted_caption(caption: str, hashtags: list[str]) -> str:
    """Caption, then the hashtags as `#tag` (what TikTok and Instagram are sent)."""
    tags = " ".join(normalise_hashtags(hashtags))
    return " ".join(part for part in (caption.strip(), tags) if part)


def utf16_units(text: str) -> int:
    """TikTok counts text in UTF-16 code units: an emoji outside the BMP is two."""
    return len(text.encode("utf-16-le")) // 2


def hashtag_count(text: str) -> int:
    return len(_HASHTAG.findall(text))


def mention_count(text: str) -> int:
    return len(_MENTION.findall(text))


def _without_angles(text: str) -> str:
    # the YouTube client drops < and > (the API refuses them), so they are not a reason to reject
    return text.replace("<", "").replace(">", "")


def youtube_title(caption: str) -> str:
    """The caption's first non-empty line: what the YouTube client sends as the title."""
    text = _without_angles(caption.strip())
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def youtube_description(caption: str, hashtags: list[str]) -> str:
    parts = (_without_angles(caption.strip()), " ".join(normalise_hashtags(hashtags)))
    return "\n\n".join(part for part in parts if part)


def youtube_tags_length(hashtags: list[str]) -> int:
    """Characters the tags take: commas between them count, a tag with a space counts quoted."""
    tags = [_without_angles(tag.lstrip("#")).replace(",", "") for tag in normalise_hashtags(hashtags)]
    tags = [tag for tag in tags if tag]
    return sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(0, len(tags) - 1)
