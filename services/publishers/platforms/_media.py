"""Reading a post's media: what kind it is, and its bytes as a stream (http(s) or file://)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from contracts import ContentType, ErrorClass, MediaRef, PublishRequested

from ._base import PlatformError

READ_SIZE = 1024 * 1024
VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".m4v": "video/mp4", ".mkv": "video/x-matroska"}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
               ".webp": "image/webp", ".gif": "image/gif"}


def mime_type(media: MediaRef) -> str:
    """The declared type, else one guessed from the extension."""
    if media.mime_type:
        return media.mime_type.split(";")[0].strip().lower()
    suffix = PurePosixPath(unquote(urlsplit(str(media.url)).path)).suffix.lower()
    return VIDEO_TYPES.get(suffix) or IMAGE_TYPES.get(suffix) or "application/octet-stream"


def is_video(media: MediaRef, content_type: ContentType) -> bool:
    """Video or image: the media's type when known, else what the content type implies."""
    kind = mime_type(media).split("/")[0]
    if kind in ("video", "image"):
        return kind == "video"
    return content_type in (ContentType.VIDEO, ContentType.REEL)


def check_kind(request: PublishRequested, platform: str) -> bool:
    """Whether the first media is a video; a permanent error when it contradicts the content type."""
    video = is_video(request.media[0], request.content_type)
    wants = {ContentType.VIDEO: True, ContentType.REEL: True, ContentType.IMAGE: False}.get(
        request.content_type, video)
    if video != wants:
        raise PlatformError(ErrorClass.PERMANENT, "media_type_mismatch",
                            f"{platform}: {request.content_type.value} content needs "
                            f"{'a video' if wants else 'an image'}")
    return video


def is_remote(media: MediaRef) -> bool:
    return media.url.scheme in {"http", "https"}


def local_path(media: MediaRef) -> Path:
    parts = urlsplit(str(media.url))
    return Path(url2pathname(unquote(parts.path)))


@dataclass
class MediaStream:
    size: int | None  # None when the host does not say
    content_type: str
    chunks: AsyncIterator[bytes]


@asynccontextmanager
async def open_media(http: httpx.AsyncClient, media: MediaRef,
                     read_size: int = READ_SIZE) -> AsyncIterator[MediaStream]:
    """The media's bytes as a stream, never whole in memory; failures are PlatformErrors."""
    if is_remote(media):
        async with http.stream("GET", str(media.url)) as response:
            if response.status_code != 200:
                await response.aread()
                error_class = ErrorClass.RETRYABLE if response.status_code >= 500 else ErrorClass.PERMANENT
                raise PlatformError(error_class, "media_unavailable",
                                    f"media host answered {response.status_code}")
            length = response.headers.get("content-length")
            yield MediaStream(int(length) if length and length.isdigit() else media.size_bytes,
                              mime_type(media), response.aiter_bytes(read_size))
        return
    path = local_path(media)
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise PlatformError(ErrorClass.PERMANENT, "media_unavailable",
                            f"cannot read local media: {exc.strerror}") from None
    try:
        size = os.fstat(handle.fileno()).st_size
        yield MediaStream(size, mime_type(media), _read_file(handle, read_size))
    finally:
        handle.close()


async def _read_file(handle, read_size: int) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(handle.read, read_size):
        yield piece


async def fill(chunks: AsyncIterator[bytes], buffer: bytearray, size: int) -> bool:
    """Read into `buffer` until it holds at least `size` bytes; False if the stream ends first."""
    while len(buffer) < size:
        try:
            buffer += await anext(chunks)
        except StopAsyncIteration:
            return False
    return True
