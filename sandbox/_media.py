"""A media host for demos and tests: `/media/{name}?bytes=N` serves N deterministic bytes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_BYTES = 1024 * 1024
# one fixed block, repeated: any N bytes without building N bytes in memory
_BLOCK = hashlib.shake_256(b"autopost sandbox media").digest(64 * 1024)
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


def content_type_for(name: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


async def _bytes(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = _BLOCK[: min(len(_BLOCK), total - sent)]
        sent += len(piece)
        yield piece


async def serve_media(request: Request) -> Response:
    raw = request.query_params.get("bytes", str(DEFAULT_BYTES))
    if not raw.isdigit():
        return PlainTextResponse("bytes must be a non-negative integer", 400)
    total = int(raw)
    headers = {"Content-Length": str(total)}
    media_type = content_type_for(request.path_params["name"])
    if request.method == "HEAD":
        return Response(b"", headers=headers, media_type=media_type)
    return StreamingResponse(_bytes(total), headers=headers, media_type=media_type)


def routes() -> list[Route]:
    return [Route("/{name:path}", serve_media, methods=["GET", "HEAD"])]
