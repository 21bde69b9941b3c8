"""YouTube Data API v3 client: resumable videos.insert in 256 KiB-aligned chunks, videos.list."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from contracts import (
    ContentType,
    ErrorClass,
    ObservedState,
    Platform,
    PublishRequested,
    RemoteHandle,
    normalise_hashtags,
)

from ._base import (
    Accepted,
    PlatformError,
    StatusReport,
    bearer,
    classified,
    first_line,
    json_body,
    require_kind,
    retry_after_seconds,
    unexpected_response,
)
from ._media import MediaStream, check_kind, fill, open_media
from ._rules import check_fetched

DEFAULT_BASE_URL = "https://www.googleapis.com"
HANDLE_KIND = "youtube.video"
SESSION_HANDLE_KIND = "youtube.session"
CHUNK_ALIGNMENT = 256 * 1024
DEFAULT_CHUNK = 8 * 1024 * 1024

_QUOTA_REASONS = {"quotaExceeded", "uploadLimitExceeded", "dailyLimitExceeded"}
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_RETRY_REASONS = {"backendError", "internalError"}
_AUTH_REASONS = {"authError", "unauthorized", "insufficientPermissions", "youtubeSignupRequired"}
_RETRY_STATUSES = {500, 502, 503, 504}
_PACIFIC = ZoneInfo("America/Los_Angeles")
_RANGE = re.compile(r"^bytes=0-(\d+)$")


def classify(response: httpx.Response, body: Any) -> PlatformError:
    """A Google API error reply, classified by `errors[].reason` (platforms.md §3.5)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if response.status_code in _RETRY_STATUSES:
            return PlatformError(ErrorClass.RETRYABLE, f"http_{response.status_code}",
                                 "youtube: server error", retry_after_seconds(response))
        return unexpected_response(response, "youtube")
    errors = error.get("errors") or [{}]
    reason = str(errors[0].get("reason") or f"http_{response.status_code}")
    message = str(error.get("message") or reason)
    status = response.status_code
    if reason in _QUOTA_REASONS:
        wait = _until_pacific_midnight() if reason != "uploadLimitExceeded" else 24 * 3600.0
        return PlatformError(ErrorClass.QUOTA, reason, message, wait)
    if reason in _RATE_REASONS or status == 429:
        return PlatformError(ErrorClass.RATE_LIMITED, reason, message, retry_after_seconds(response) or 60.0)
    if reason in _RETRY_REASONS or status in _RETRY_STATUSES:
        return PlatformError(ErrorClass.RETRYABLE, reason, message, retry_after_seconds(response))
    if reason in _AUTH_REASONS or status == 401:
        return PlatformError(ErrorClass.AUTH, reason, message)
    return PlatformError(ErrorClass.PERMANENT, reason, message)


def _until_pacific_midnight() -> float:
    """quotaExceeded lasts until the daily reset, midnight Pacific time."""
    now = datetime.now(_PACIFIC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), _PACIFIC)
    return (midnight - now).total_seconds()


def video_metadata(request: PublishRequested, privacy_status: str, category_id: str) -> dict[str, Any]:
    """snippet + status within YouTube's limits: title ≤ 100 chars, description ≤ 5000 bytes, no < >."""
    hashtags = normalise_hashtags(request.hashtags)
    caption = _no_angles(request.caption.strip())
    title = first_line(caption)[:100].strip() or (" ".join(hashtags)[:100].strip() or "Untitled")
    description = "\n\n".join(part for part in (caption, " ".join(hashtags)) if part)
    description = _no_angles(description).encode()[:5000].decode("utf-8", "ignore")
    tags, used = [], 0
    for tag in (_no_angles(h.lstrip("#")).replace(",", "") for h in hashtags):
        cost = len(tag) + (1 if tags else 0)  # separating commas count toward the 500
        if tag and used + cost <= 500:
            tags.append(tag)
            used += cost
    return {
        "snippet": {"title": title, "description": description, "tags": tags, "categoryId": category_id},
        # always explicit: what an omitted privacyStatus means has changed over time (§3.7)
        "status": {"privacyStatus": privacy_status, "selfDeclaredMadeForKids": False},
    }


def _no_angles(text: str) -> str:
    return text.replace("<", "").replace(">", "")


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


class YouTubeClient:
    platform = Platform.YOUTUBE

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 chunk_size: int = DEFAULT_CHUNK, privacy_status: str = "public",
                 category_id: str = "22", media_http: httpx.AsyncClient | None = None):
        if chunk_size <= 0 or chunk_size % CHUNK_ALIGNMENT:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_ALIGNMENT}")
        self.http, self.base_url = http, base_url.rstrip("/")
        self.chunk_size, self.privacy_status, self.category_id = chunk_size, privacy_status, category_id
        self.media_http = media_http or http

    async def publish(self, request: PublishRequested, token: str) -> Accepted:
        if request.content_type is ContentType.IMAGE or not check_kind(request, "youtube"):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_content_type",
                                "YouTube takes videos, not images")
        metadata = video_metadata(request, self.privacy_status, self.category_id)
        with classified(token):
            # open the media first: a missing file should not leave an empty session behind
            async with open_media(self.media_http, request.media[0]) as stream:
                if stream.size == 0:
                    raise PlatformError(ErrorClass.PERMANENT, "emptyFile", "the media file is empty")
                check_fetched(request, 0, stream)
                session_uri = await self._start_session(metadata, stream, token)
                try:
                    video = await self._upload(session_uri, stream, token)
                except PlatformError as error:
                    error.handle = RemoteHandle(kind=SESSION_HANDLE_KIND, id=session_uri,
                                                extra={"sessionUri": session_uri})
                    raise
        if not video.get("id"):
            raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", "youtube: upload reply without an id")
        return Accepted(RemoteHandle(kind=HANDLE_KIND, id=str(video["id"]), extra={"sessionUri": session_uri}))

    async def check_status(self, handle: RemoteHandle, token: str) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            response = await self.http.get(
                f"{self.base_url}/youtube/v3/videos",
                params={"part": "status,processingDetails", "id": handle.id}, headers=bearer(token))
            body = json_body(response)
            if response.status_code != 200 or not isinstance(body, dict):
                raise classify(response, body)
        items = body.get("items") or []
        if not items:  # not listed (yet, or deleted): let the poller's deadline decide
            return StatusReport(ObservedState.PROCESSING, detail="video not listed")
        return _report(handle.id, items[0])

    # -- upload ------------------------------------------------------------------------------

    async def _start_session(self, metadata: dict[str, Any], stream: MediaStream, token: str) -> str:
        headers = {**bearer(token), "X-Upload-Content-Type": stream.content_type}
        if stream.size is not None:
            headers["X-Upload-Content-Length"] = str(stream.size)
        response = await self.http.post(
            f"{self.base_url}/upload/youtube/v3/videos",
            params={"uploadType": "resumable", "part": "snippet,status"},
            json=metadata, headers=headers)
        location = response.headers.get("location")
        if response.status_code != 200 or not location:
            raise classify(response, json_body(response))
        return urljoin(str(response.url), location)

    async def _upload(self, session_uri: str, stream: MediaStream, token: str) -> dict[str, Any]:
        """PUT aligned chunks, following the server's `Range`; the video resource at the end."""
        offset, pending = 0, bytearray()  # pending = bytes from `offset` not yet confirmed
        while True:
            # one byte past a chunk tells whether this chunk is the last
            more = await fill(stream.chunks, pending, self.chunk_size + 1)
            if not pending:
                raise PlatformError(ErrorClass.PERMANENT, "emptyFile", "the media file is empty")
            body = bytes(pending[: self.chunk_size]) if more else bytes(pending)
            end = offset + len(body)
            total = str(end) if not more else (str(stream.size) if stream.size is not None else "*")
            headers = {**bearer(token), "Content-Type": stream.content_type,
                       "Content-Range": f"bytes {offset}-{end - 1}/{total}"}
            response = await self.http.put(session_uri, content=body, headers=headers)
            if response.status_code in (200, 201):
                video = json_body(response)
                return video if isinstance(video, dict) else {}
            if response.status_code == 404:
                raise PlatformError(ErrorClass.RETRYABLE, "sessionExpired",
                                    "the upload session expired; a new one is needed")
            if response.status_code != 308:
                raise classify(response, json_body(response))
            confirmed = _confirmed(response)
            if not offset <= confirmed <= end or (not more and confirmed == end):
                raise PlatformError(ErrorClass.RETRYABLE, "uploadOutOfSync",
                                    f"server holds {confirmed} bytes, client sent up to {end}")
            del pending[: confirmed - offset]  # a chunk may be accepted only in part
            offset = confirmed


def _confirmed(response: httpx.Response) -> int:
    """Bytes the server holds, from a 308's `Range: bytes=0-n` (none = nothing yet)."""
    match = _RANGE.match(response.headers.get("range", "").strip())
    return int(match.group(1)) + 1 if match else 0


def _report(video_id: str, item: dict[str, Any]) -> StatusReport:
    status = item.get("status") or {}
    processing = item.get("processingDetails") or {}
    upload_status = status.get("uploadStatus")
    if upload_status == "processed" or processing.get("processingStatus") == "succeeded":
        return StatusReport(ObservedState.PUBLISHED, url=watch_url(video_id),
                            detail=f"privacy: {status.get('privacyStatus')}")
    if upload_status in ("failed", "rejected", "deleted"):
        reason = status.get("failureReason") or status.get("rejectionReason") or upload_status
        error_class = ErrorClass.RETRYABLE if reason == "uploadAborted" else ErrorClass.PERMANENT
        error = PlatformError(error_class, str(reason), f"YouTube {upload_status} the video: {reason}")
        return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail=str(upload_status))
    if processing.get("processingStatus") in ("failed", "terminated"):
        reason = processing.get("processingFailureReason") or processing["processingStatus"]
        error = PlatformError(ErrorClass.PERMANENT, str(reason), f"YouTube processing failed: {reason}")
        return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail="processing failed")
    progress = processing.get("processingProgress") or {}
    detail = f"{upload_status or 'processing'}"
    if progress.get("partsTotal"):
        detail += f" {progress.get('partsProcessed', 0)}/{progress['partsTotal']}"
    return StatusReport(ObservedState.PROCESSING, detail=detail)
