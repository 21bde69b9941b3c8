"""TikTok Content Posting API client: Direct Post of videos (pull or chunked upload) and photos."""

from __future__ import annotations

from typing import Any

import httpx

from contracts import ErrorClass, ObservedState, Platform, PublishRequested, RemoteHandle

from ._base import (
    Accepted,
    PlatformError,
    StatusReport,
    bearer,
    caption_text,
    classified,
    first_line,
    json_body,
    require_kind,
    retry_after_seconds,
    unexpected_response,
)
from ._media import check_kind, fill, is_remote, open_media
from ._rules import check_fetched

DEFAULT_BASE_URL = "https://open.tiktokapis.com"
HANDLE_KIND = "tiktok.publish_id"
# Chunks must be 5–64 MB with the MB base unstated: stay valid under either reading.
MIN_CHUNK, MAX_CHUNK = 5 * 1024 * 1024, 64_000_000
DEFAULT_CHUNK = 10_000_000

_RATE_LIMITED = {"rate_limit_exceeded"}
_RETRYABLE = {"internal_error"}
_QUOTA = {"spam_risk_too_many_posts", "spam_risk_too_many_pending_share", "reached_active_user_cap"}
_AUTH = {"access_token_invalid", "scope_not_authorized", "scope_permission_missed"}
# fail_reason of a FAILED publish; anything else is a media or policy problem (permanent)
_FAIL_CLASSES = {
    "internal": ErrorClass.RETRYABLE,
    "video_pull_failed": ErrorClass.RETRYABLE,
    "photo_pull_failed": ErrorClass.RETRYABLE,
    "spam_risk_too_many_posts": ErrorClass.QUOTA,
    "auth_removed": ErrorClass.AUTH,
}


def classify(response: httpx.Response, body: Any) -> PlatformError:
    """A TikTok error reply, classified by `error.code` (platforms.md §1.6)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error.get("code"):
        return unexpected_response(response, "tiktok")
    code, message = str(error["code"]), str(error.get("message") or error["code"])
    if code in _RATE_LIMITED:
        # a sliding one-minute window: wait at least that long
        return PlatformError(ErrorClass.RATE_LIMITED, code, message,
                             max(retry_after_seconds(response) or 0.0, 60.0))
    if code in _RETRYABLE or response.status_code >= 500:
        return PlatformError(ErrorClass.RETRYABLE, code, message, retry_after_seconds(response))
    if code in _QUOTA:
        return PlatformError(ErrorClass.QUOTA, code, message, retry_after_seconds(response))
    if code in _AUTH:
        return PlatformError(ErrorClass.AUTH, code, message)
    return PlatformError(ErrorClass.PERMANENT, code, message)


def pick_privacy(options: list[str]) -> str:
    return "PUBLIC_TO_EVERYONE" if "PUBLIC_TO_EVERYONE" in options else "SELF_ONLY"


def chunk_plan(size: int, chunk_size: int) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) for a FILE_UPLOAD; the last chunk absorbs the remainder."""
    if size <= chunk_size:
        return size, 1
    return chunk_size, size // chunk_size


def post_url(username: str, media: str, post_id: str) -> str:
    return f"https://www.tiktok.com/@{username}/{media}/{post_id}"


def _required(data: dict[str, Any], key: str) -> str:
    if not data.get(key):
        raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", f"tiktok: reply without {key}")
    return str(data[key])


def _utf16_prefix(text: str, limit: int) -> str:
    encoded = text.encode("utf-16-le")
    return text if len(encoded) <= 2 * limit else encoded[: 2 * limit].decode("utf-16-le", "ignore")


class TikTokClient:
    platform = Platform.TIKTOK

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 chunk_size: int = DEFAULT_CHUNK, media_http: httpx.AsyncClient | None = None):
        if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes")
        self.http, self.base_url = http, base_url.rstrip("/")
        self.chunk_size = chunk_size
        self.media_http = media_http or http

    async def publish(self, request: PublishRequested, token: str) -> Accepted:
        with classified(token):
            creator = await self._call("/v2/post/publish/creator_info/query/", token, {})
            privacy = pick_privacy(creator.get("privacy_level_options") or [])
            if check_kind(request, "tiktok"):
                publish_id = await self._post_video(request, token, creator, privacy)
                media = "video"
            else:
                publish_id = await self._post_photos(request, token, creator, privacy)
                media = "photo"
            return Accepted(self._handle(publish_id, creator, media))

    async def check_status(self, handle: RemoteHandle, token: str) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            data = await self._call("/v2/post/publish/status/fetch/", token, {"publish_id": handle.id})
            status = data.get("status")
            if status == "PUBLISH_COMPLETE":
                post_ids = data.get("publicaly_available_post_id") or []  # sic, TikTok's spelling
                if not post_ids:  # e.g. SELF_ONLY posts never get a public id
                    return StatusReport(ObservedState.PUBLISHED, detail="published without a public post id")
                username = handle.extra.get("username") or await self._username(token)
                media = handle.extra.get("mediaType", "video")
                return StatusReport(ObservedState.PUBLISHED, url=post_url(username, media, str(post_ids[0])))
            if status == "FAILED":
                reason = str(data.get("fail_reason") or "unknown")
                error = PlatformError(_FAIL_CLASSES.get(reason, ErrorClass.PERMANENT), reason,
                                      f"TikTok failed the post: {reason}")
                return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail=reason)
            return StatusReport(ObservedState.PROCESSING, detail=str(status))

    # -- flows -------------------------------------------------------------------------------

    async def _post_video(self, request: PublishRequested, token: str, creator: dict[str, Any],
                          privacy: str) -> str:
        media = request.media[0]
        limit = creator.get("max_video_post_duration_sec")
        if media.duration_sec and limit and media.duration_sec > limit:
            raise PlatformError(ErrorClass.PERMANENT, "duration_check_failed",
                                f"video is {media.duration_sec:.0f}s, the creator may post up to {limit}s")
        post_info = {
            "privacy_level": privacy,
            "title": caption_text(request.caption, request.hashtags),
            "disable_comment": bool(creator.get("comment_disabled")),
            "disable_duet": bool(creator.get("duet_disabled")),
            "disable_stitch": bool(creator.get("stitch_disabled")),
        }
        init = "/v2/post/publish/video/init/"
        if is_remote(media):
            source = {"source": "PULL_FROM_URL", "video_url": str(media.url)}
            data = await self._call(init, token, {"post_info": post_info, "source_info": source})
            return _required(data, "publish_id")
        async with open_media(self.media_http, media) as stream:
            assert stream.size is not None  # local files always have one
            check_fetched(request, 0, stream)
            chunk_size, count = chunk_plan(stream.size, self.chunk_size)
            source = {"source": "FILE_UPLOAD", "video_size": stream.size,
                      "chunk_size": chunk_size, "total_chunk_count": count}
            data = await self._call(init, token, {"post_info": post_info, "source_info": source})
            publish_id = _required(data, "publish_id")
            try:
                await self._upload(_required(data, "upload_url"), stream.size, chunk_size, count,
                                   stream.content_type, stream.chunks)
            except PlatformError as error:
                # the publish id exists now: hand it back so nobody re-inits blindly
                error.handle = self._handle(publish_id, creator, "video")
                raise
            return publish_id

    async def _post_photos(self, request: PublishRequested, token: str, creator: dict[str, Any],
                           privacy: str) -> str:
        if not all(is_remote(m) for m in request.media):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_source",
                                "TikTok photo posts pull from http(s) URLs only")
        text = caption_text(request.caption, request.hashtags)
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {
                "title": _utf16_prefix(first_line(text), 90),
                "description": text,
                "privacy_level": privacy,
                "disable_comment": bool(creator.get("comment_disabled")),
                "auto_add_music": True,
            },
            "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
                            "photo_images": [str(m.url) for m in request.media]},
        }
        data = await self._call("/v2/post/publish/content/init/", token, body)
        return _required(data, "publish_id")

    async def _upload(self, upload_url: str, size: int, chunk_size: int, count: int,
                      content_type: str, chunks) -> None:
        """PUT the chunks strictly in order: 206 after each, 201 after the last."""
        buffer = bytearray()
        for index in range(count):
            first = index * chunk_size
            length = size - first if index == count - 1 else chunk_size
            await fill(chunks, buffer, length)
            if len(buffer) < length:
                raise PlatformError(ErrorClass.PERMANENT, "media_changed", "the file shrank while uploading")
            headers = {"Content-Type": content_type,
                       "Content-Range": f"bytes {first}-{first + length - 1}/{size}"}
            response = await self.http.put(upload_url, content=bytes(buffer[:length]), headers=headers)
            del buffer[:length]
            if response.status_code not in (201, 206):
                raise classify(response, json_body(response))

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one endpoint; the `data` object on success (`error.code == "ok"`)."""
        response = await self.http.post(self.base_url + path, json=body, headers=bearer(token))
        payload = json_body(response)
        error = payload.get("error") if isinstance(payload, dict) else None
        if response.status_code != 200 or not isinstance(error, dict) or error.get("code") != "ok":
            raise classify(response, payload)  # TikTok may report errors inside HTTP 200
        return payload.get("data") or {}

    async def _username(self, token: str) -> str:
        creator = await self._call("/v2/post/publish/creator_info/query/", token, {})
        return str(creator.get("creator_username") or "")

    @staticmethod
    def _handle(publish_id: str, creator: dict[str, Any], media: str) -> RemoteHandle:
        return RemoteHandle(kind=HANDLE_KIND, id=publish_id,
                            extra={"username": creator.get("creator_username"), "mediaType": media})
