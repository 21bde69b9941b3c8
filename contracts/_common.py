"""Shapes shared by several messages."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import AnyUrl, Field, field_validator

from ._base import WireModel


class Platform(str, Enum):
    TIKTOK = "tiktok"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"


class ContentType(str, Enum):
    VIDEO = "video"
    IMAGE = "image"
    STORY = "story"
    REEL = "reel"


AccountId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Hashtag = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^#?[^\s#]+$")]


class MediaRef(WireModel):
    """Where the media lives, and what the submitter knows of it (checked by the publishers)."""

    url: AnyUrl
    mime_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = Field(default=None, ge=0)
    duration_sec: float | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)

    @field_validator("url")
    @classmethod
    def _http_or_file(cls, url: AnyUrl) -> AnyUrl:
        if url.scheme not in {"http", "https", "file"}:
            raise ValueError("media url must be http(s) or file")
        return url


def normalise_hashtags(tags: list[str]) -> list[str]:
    """`#tag` form, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault("#" + tag.lstrip("#"), None)
    return list(seen)
