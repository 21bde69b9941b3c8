"""Each platform's published limits, as data (../shared/platforms.md §1.8, §2.6, §3.8).

Where the reference gives a size in "MB" without a base, the smaller reading is used, so a
file that passes here is never refused for its size.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class MediaRule:
    """What one media item must be; None = the platform sets no limit there."""

    name: str  # for messages: "TikTok video", "Instagram story image", ...
    kind: str  # "video" | "image"
    mime_types: frozenset[str]  # accepted MIME types; "video/*" accepts any video
    max_bytes: int | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    min_aspect: float | None = None  # width / height
    max_aspect: float | None = None
    min_side: int | None = None  # px, either side
    max_side: int | None = None
    max_width: int | None = None
    max_short_side: int | None = None  # "≤ 1080p": the shorter side
    remote_only: bool = False  # the platform downloads it itself: an http(s) URL is needed

    def accepts_mime(self, mime: str) -> bool:
        return mime in self.mime_types or f"{mime.split('/')[0]}/*" in self.mime_types


MP4_MOV = frozenset({"video/mp4", "video/quicktime"})

# -- TikTok (§1.8, §1.2) ----------------------------------------------------------------------
TIKTOK_VIDEO = MediaRule(
    "TikTok video", "video", frozenset({"video/mp4", "video/quicktime", "video/webm"}),
    max_bytes=4 * GIB, min_seconds=3, max_seconds=600, min_side=360, max_side=4096)
# JPEG/WebP only, ≤ 20 MB, ≤ 1080p, pulled from a URL (content/init takes PULL_FROM_URL only)
TIKTOK_PHOTO = MediaRule(
    "TikTok photo", "image", frozenset({"image/jpeg", "image/webp"}),
    max_bytes=20 * MB, max_short_side=1080, remote_only=True)
TIKTOK_MAX_PHOTOS = 35
TIKTOK_VIDEO_CAPTION_UTF16 = 2200  # post_info.title of a video
TIKTOK_PHOTO_CAPTION_UTF16 = 4000  # post_info.description of a photo post

# -- Instagram (§2.6): Meta downloads every media item from its URL ----------------------------
INSTAGRAM_IMAGE = MediaRule(
    "Instagram image", "image", frozenset({"image/jpeg"}),
    max_bytes=8 * MIB, min_aspect=4 / 5, max_aspect=1.91, remote_only=True)
INSTAGRAM_REEL = MediaRule(
    "Instagram reel", "video", MP4_MOV, max_bytes=300 * MB, min_seconds=3, max_seconds=15 * 60,
    min_aspect=0.01, max_aspect=10, max_width=1920, remote_only=True)
INSTAGRAM_STORY_IMAGE = MediaRule(
    "Instagram story image", "image", frozenset({"image/jpeg"}), max_bytes=8 * MIB, remote_only=True)
INSTAGRAM_STORY_VIDEO = MediaRule(
    "Instagram story video", "video", MP4_MOV, max_bytes=100 * MB, min_seconds=3, max_seconds=60,
    min_aspect=0.1, max_aspect=10, remote_only=True)
# carousel video children: the reference gives no own figures; the reel format and size apply
INSTAGRAM_CAROUSEL_VIDEO = MediaRule(
    "Instagram carousel video", "video", MP4_MOV, max_bytes=300 * MB, max_width=1920, remote_only=True)
INSTAGRAM_CAROUSEL_ITEMS = (2, 10)
INSTAGRAM_CAPTION_CHARS = 2200
INSTAGRAM_MAX_HASHTAGS = 30
INSTAGRAM_MAX_MENTIONS = 20

# -- YouTube (§3.8) ----------------------------------------------------------------------------
YOUTUBE_VIDEO = MediaRule(
    "YouTube video", "video", frozenset({"video/*", "application/octet-stream"}), max_bytes=256 * GIB)
# Shorts: no API flag; square or vertical and ≤ 3 min make a video a Short
YOUTUBE_SHORT = MediaRule(
    "YouTube Short", "video", frozenset({"video/*", "application/octet-stream"}), max_bytes=256 * GIB,
    max_seconds=180, max_aspect=1.0)
YOUTUBE_TITLE_CHARS = 100
YOUTUBE_DESCRIPTION_BYTES = 5000
YOUTUBE_TAGS_CHARS = 500
