"""YouTube Data API v3 client: resumable videos.insert in 256 KiB-aligned chunks, videos.list.

The upload session URI is journalled before the first byte (platforms.md §3.9). An interrupted
chunk (a drop, 500/502/503/504, a short rate limit) is followed by `PUT bytes */total`: the
server's `Range` says where to go on, or the reply is the finished video. A later call resumes
the stored session the same way; a session that expired is first looked for among the
channel's recent uploads, so an upload that did complete is not made twice.

An upload holds its chunk in memory (8 MiB, and its copy on the way out), so a client uploads
only `uploads_at_once` videos at once; the others wait for a place before they open their
media, start a session or take a cap slot, so waiting holds nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

import httpx

from contracts import (
    ContentType,
    EngagementFigures,
    ErrorClass,
    ObservedState,
    Platform,
    PublishRequested,
    RemoteHandle,
    normalise_hashtags,
)

from services.quotas import next_reset
from services.runtime import PlatformSettings, retry_after_seconds

from ..limits import EndpointLimits
from ._base import (
    Accepted,
    PlatformError,
    RetryRules,
    StatusReport,
    bearer,
    classified,
    count,
    first_line,
    json_body,
    release_response,
    repeatable,
    require_kind,
    send,
    unexpected_response,
    with_retries,
)
from ._client import PlatformClientBase, upload_places
from ._journal import ACCEPTED, CREATED, Checkpoint, Journal, MemoryJournal, resume_point
from ._media import MediaPolicy, MediaStream, check_kind, fill, head_bytes, open_media
from ._rules import check_fetched

DEFAULT_BASE_URL = "https://www.googleapis.com"
HANDLE_KIND = "youtube.video"
SESSION_HANDLE_KIND = "youtube.session"
CHUNK_ALIGNMENT = 256 * 1024
DEFAULT_CHUNK = 8 * 1024 * 1024
# uploads one client sends at once: each holds its unconfirmed chunk and a read piece (9 MiB),
# the chunk's copy being sent (8 MiB) and what the socket has not taken of it yet (up to 8 MiB);
# 4 of them stay well inside a publisher's 256 MiB (deploy/manifests.py)
UPLOADS_AT_ONCE = PlatformSettings.youtube_uploads_at_once  # one default: the setting's
MAX_VIDEO_BYTES = 256 * 1024 ** 3
# native scheduling (publishAt) only when the slot is at least this far ahead: the upload and
# processing must be done well before YouTube makes the video public
DEFAULT_SCHEDULE_LEAD = 900.0

_QUOTA_REASONS = {"quotaExceeded", "uploadLimitExceeded", "dailyLimitExceeded"}
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_RETRY_REASONS = {"backendError", "internalError"}
_AUTH_REASONS = {"authError", "unauthorized", "insufficientPermissions", "youtubeSignupRequired"}
_RETRY_STATUSES = {500, 502, 503, 504}
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
    """quotaExceeded lasts until the daily reset, midnight Pacific time (in UTC: a day around a
    DST change is 23 or 25 hours long)."""
    now = datetime.now(timezone.utc)
    return (next_reset(now) - now).total_seconds()


def video_metadata(request: PublishRequested, privacy_status: str, category_id: str,
                   publish_at: datetime | None = None) -> dict[str, Any]:
    """snippet + status within YouTube's limits: title ≤ 100 chars, description ≤ 5000 bytes, no < >.

    privacyStatus is always explicit: what an omitted one means has changed over time (§3.7).
    With `publish_at` the video is uploaded private and YouTube makes it public then (§3.4).
    """
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
    status: dict[str, Any] = {"privacyStatus": privacy_status, "selfDeclaredMadeForKids": False}
    if publish_at is not None:
        status["privacyStatus"] = "private"
        status["publishAt"] = publish_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "snippet": {"title": title, "description": description, "tags": tags, "categoryId": category_id},
        "status": status,
    }


def _no_angles(text: str) -> str:
    return text.replace("<", "").replace(">", "")


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


class YouTubeClient(PlatformClientBase):
    platform = Platform.YOUTUBE

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 chunk_size: int = DEFAULT_CHUNK, privacy_status: str = "public",
                 category_id: str = "22", media_http: httpx.AsyncClient | None = None,
                 media_policy: MediaPolicy | None = None, limits: EndpointLimits | None = None,
                 retry: RetryRules | None = None, schedule_lead: float | None = DEFAULT_SCHEDULE_LEAD,
                 interruptions: int = 5, uploads_at_once: int = UPLOADS_AT_ONCE,
                 clock: Callable[[], datetime] | None = None):
        if chunk_size <= 0 or chunk_size % CHUNK_ALIGNMENT:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_ALIGNMENT}")
        super().__init__(http, base_url, media_policy=media_policy, limits=limits, retry=retry)
        self.chunk_size, self.privacy_status, self.category_id = chunk_size, privacy_status, category_id
        self.media_http = media_http or http
        self.schedule_lead = schedule_lead  # None: never schedule natively
        self.interruptions = interruptions  # resumes within one call before giving up
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._uploads = upload_places(uploads_at_once)  # places for an upload's buffer

    async def publish(self, request: PublishRequested, token: str,
                      journal: Journal | None = None) -> Accepted:
        if request.content_type is ContentType.IMAGE or not check_kind(request, "youtube"):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_content_type",
                                "YouTube takes videos, not images")
        journal = journal or MemoryJournal()
        with classified(token):
            checkpoint = await resume_point(journal, request)
            if checkpoint is not None:
                resumed = await self._resume(checkpoint, request, token, journal)
                if resumed is not None:
                    return resumed
            metadata = video_metadata(request, self.privacy_status, self.category_id, self._publish_at(request))
            # a place for the upload's buffer before anything else: waiting for it holds no media
            # stream, session or cap slot; it is given back however the upload ends
            async with self._uploads:
                # open the media first: a missing file should not leave an empty session behind
                async with self._open(request) as stream:
                    if stream.size == 0:
                        raise PlatformError(ErrorClass.PERMANENT, "emptyFile", "the media file is empty")
                    check_fetched(request, 0, stream)
                    # safe to repeat: a session that never gets its bytes makes no video
                    session_uri = await with_retries(self.retry, lambda: self._start_session(
                        request.account_id, metadata, stream, token))
                    session = RemoteHandle(kind=SESSION_HANDLE_KIND, id=_short(session_uri), extra={
                        "sessionUri": session_uri, "total": stream.size, "startedAt": self.clock().timestamp(),
                        "title": metadata["snippet"]["title"], "description": metadata["snippet"]["description"]})
                    await journal.save(CREATED, session)
                    video = await self._upload(session, stream, token, offset=0)
            return await self._finish(video, journal)

    async def check_status(self, handle: RemoteHandle, token: str,
                           account_id: str | None = None) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            item = await self._video(account_id or "", handle.id, token)
        if item is None:  # not listed (yet, or deleted): let the poller's deadline decide
            return StatusReport(ObservedState.PROCESSING, detail="video not listed")
        return _report(handle.id, item, self.clock())

    # -- resuming ----------------------------------------------------------------------------

    async def _resume(self, checkpoint: Checkpoint, request: PublishRequested, token: str,
                      journal: Journal) -> Accepted | None:
        """Carry on with the stored video or session, or None when a new upload is safe."""
        handle = checkpoint.handle
        if handle.kind == HANDLE_KIND:
            item = await self._video(request.account_id, handle.id, token)
            upload_status = ((item or {}).get("status") or {}).get("uploadStatus")
            if upload_status in ("failed", "rejected", "deleted"):
                await journal.abandon(f"video {upload_status}")
                return None  # never public: a new upload is safe
            return Accepted(handle)
        require_kind(handle, SESSION_HANDLE_KIND)
        state = await with_retries(self.retry, lambda: self._held(handle))
        if state is None:  # the session expired: did its upload complete before that?
            found = await self._find_upload(request.account_id, handle, token)
            if found is None:
                await journal.abandon("upload session expired")
                return None
            return await self._finish({"id": found}, journal)
        done, held, video = state
        if not done:
            async with self._uploads, self._open(request, offset=held) as stream:
                video = await self._upload(handle, stream, token, offset=held)
        return await self._finish(video, journal)

    async def _finish(self, video: dict[str, Any], journal: Journal) -> Accepted:
        if not video.get("id"):
            raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", "youtube: upload reply without an id")
        handle = RemoteHandle(kind=HANDLE_KIND, id=str(video["id"]))
        await journal.save(ACCEPTED, handle)
        return Accepted(handle)

    async def _find_upload(self, account: str, session: RemoteHandle, token: str) -> str | None:
        """A video from this session among the channel's recent uploads (title, description, time)."""
        channels = await with_retries(self.retry, lambda: self._get(
            account, "channels", token, part="contentDetails", mine="true"))
        items = channels.get("items") or [{}]
        uploads = ((items[0].get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads")
        if not uploads:
            return None
        listing = await with_retries(self.retry, lambda: self._get(
            account, "playlistItems", token, part="snippet", playlistId=str(uploads), maxResults="50"))
        since = float(session.extra.get("startedAt") or 0) - 60
        for item in listing.get("items") or []:
            snippet = item.get("snippet") or {}
            if (snippet.get("title") == session.extra.get("title")
                    and snippet.get("description") == session.extra.get("description")
                    and _timestamp(snippet.get("publishedAt")) >= since):
                return (snippet.get("resourceId") or {}).get("videoId")
        return None

    def _publish_at(self, request: PublishRequested) -> datetime | None:
        if self.schedule_lead is None:
            return None
        ahead = (request.scheduled_time - self.clock()).total_seconds()
        return request.scheduled_time if ahead >= self.schedule_lead else None

    async def fetch_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                               url: str | None = None) -> EngagementFigures:
        """`videos.list part=statistics` for the video, `channels.list part=statistics mine=true`
        for the subscribers (hidden subscriber counts give no audience size)."""
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            videos = (await self._get(account_id, "videos", token, part="statistics", id=handle.id)).get("items") or []
            if not videos:  # before channels.list: no unit spent on a read that gives nothing
                raise PlatformError(ErrorClass.RETRYABLE, "video_not_listed", f"video {handle.id} not listed")
            channels = (await self._get(account_id, "channels", token, part="statistics", mine="true")).get("items") or []
        stats = videos[0].get("statistics") or {}
        channel = (channels[0].get("statistics") or {}) if channels else {}
        audience = None if channel.get("hiddenSubscriberCount") else count(channel.get("subscriberCount"))
        return EngagementFigures(
            views=count(stats.get("viewCount")), likes=count(stats.get("likeCount")),
            comments=count(stats.get("commentCount")), audience_size=audience)

    # -- upload ------------------------------------------------------------------------------

    def _open(self, request: PublishRequested, offset: int = 0):
        return open_media(self.media_http, request.media[0], self.media_policy, offset=offset,
                          max_bytes=MAX_VIDEO_BYTES)

    async def _start_session(self, account: str, metadata: dict[str, Any], stream: MediaStream,
                             token: str) -> str:
        headers = {**bearer(token), "X-Upload-Content-Type": stream.content_type}
        if stream.size is not None:
            headers["X-Upload-Content-Length"] = str(stream.size)
        async with self.limits.slot(account, "videos_insert"):
            response = await send(self.http, "POST", f"{self.base_url}/upload/youtube/v3/videos",
                                  params={"uploadType": "resumable", "part": "snippet,status"},
                                  json=metadata, headers=headers)
        location = response.headers.get("location")
        if response.status_code != 200 or not location:
            raise classify(response, json_body(response))
        return urljoin(str(response.url), location)

    async def _upload(self, session: RemoteHandle, stream: MediaStream, token: str,
                      offset: int) -> dict[str, Any]:
        """PUT aligned chunks from `offset`, following the server's `Range`; the video at the end.

        Only the chunk not yet confirmed is held in memory, so a partial acceptance or an
        interruption is resumed from it without reading the media again; its copy being sent
        lives only as long as its request.
        """
        pending = bytearray()  # bytes from `offset` on, not yet confirmed by the server
        interruptions = 0
        while True:
            # one byte past a chunk tells whether this chunk is the last
            more = await fill(stream.chunks, pending, self.chunk_size + 1)
            if not pending:
                raise PlatformError(ErrorClass.RETRYABLE if offset else ErrorClass.PERMANENT,
                                    "emptyFile" if not offset else "uploadOutOfSync",
                                    "the media file is empty" if not offset else "no bytes left to send")
            length = self.chunk_size if more else len(pending)
            end = offset + length
            total = str(end) if not more else (str(stream.size) if stream.size is not None else "*")
            try:
                done, confirmed, video = await self._put_chunk(
                    session, head_bytes(pending, length), offset, end, total, stream.content_type)
            except PlatformError as error:
                interruptions += 1
                if interruptions > self.interruptions or not _interrupted(error, self.retry):
                    raise
                await self.retry.sleep(error.retry_after if error.retry_after is not None
                                       else self.retry.delay(interruptions))
                state = await with_retries(self.retry, lambda: self._held(session, total))
                if state is None:
                    raise PlatformError(ErrorClass.RETRYABLE, "sessionExpired",
                                        "the upload session expired; a new one is needed")
                done, confirmed, video = state
            if done:
                return video
            if not offset <= confirmed <= end or (not more and confirmed == end):
                raise PlatformError(ErrorClass.RETRYABLE, "uploadOutOfSync",
                                    f"server holds {confirmed} bytes, client sent up to {end}")
            del pending[: confirmed - offset]  # a chunk may be accepted only in part
            offset = confirmed

    async def _put_chunk(self, session: RemoteHandle, body: bytes, first: int, end: int, total: str,
                         content_type: str) -> tuple[bool, int, dict[str, Any]]:
        headers = {"Content-Type": content_type, "Content-Range": f"bytes {first}-{end - 1}/{total}"}
        response = await send(self.http, "PUT", str(session.extra["sessionUri"]), content=body, headers=headers)
        try:
            return _upload_reply(response)
        finally:
            release_response(response)  # the chunk goes when this returns, not at the next GC

    async def _held(self, session: RemoteHandle, total: str | None = None) -> tuple[bool, int, dict[str, Any]] | None:
        """`PUT bytes */total`: (done, bytes the server holds, the video when done); None when
        the session is gone (404)."""
        if total is None:
            total = str(session.extra["total"]) if session.extra.get("total") is not None else "*"
        response = await send(self.http, "PUT", str(session.extra["sessionUri"]),
                              headers={"Content-Length": "0", "Content-Range": f"bytes */{total}"})
        if response.status_code == 404:
            return None
        return _upload_reply(response)

    # -- reading -----------------------------------------------------------------------------

    async def _video(self, account: str, video_id: str, token: str) -> dict[str, Any] | None:
        body = await with_retries(self.retry, lambda: self._get(
            account, "videos", token, part="status,processingDetails", id=video_id))
        items = body.get("items") or []
        return items[0] if items else None

    async def _get(self, account: str, resource: str, token: str, **params: str) -> dict[str, Any]:
        async with self.limits.slot(account, f"{resource}_list"):
            response = await send(self.http, "GET", f"{self.base_url}/youtube/v3/{resource}",
                                  params=params, headers=bearer(token))
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise classify(response, body)
        return body


def _upload_reply(response: httpx.Response) -> tuple[bool, int, dict[str, Any]]:
    if response.status_code in (200, 201):
        video = json_body(response)
        return True, 0, video if isinstance(video, dict) else {}
    if response.status_code == 308:
        return False, _confirmed(response), {}
    if response.status_code == 404:
        raise PlatformError(ErrorClass.RETRYABLE, "sessionExpired",
                            "the upload session expired; a new one is needed")
    raise classify(response, json_body(response))


def _interrupted(error: PlatformError, rules: RetryRules) -> bool:
    """An upload interruption to resume from the server's Range (§3.2 step 3)."""
    return error.code != "sessionExpired" and repeatable(error, rules)


def _short(session_uri: str) -> str:
    """A loggable name for a session; the URI itself is a credential."""
    return hashlib.sha256(session_uri.encode()).hexdigest()[:16]


def _timestamp(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _confirmed(response: httpx.Response) -> int:
    """Bytes the server holds, from a 308's `Range: bytes=0-n` (none = nothing yet)."""
    match = _RANGE.match(response.headers.get("range", "").strip())
    return int(match.group(1)) + 1 if match else 0


def _report(video_id: str, item: dict[str, Any], now: datetime) -> StatusReport:
    status = item.get("status") or {}
    processing = item.get("processingDetails") or {}
    upload_status = status.get("uploadStatus")
    # first: a video rejected after processing (a duplicate, a claim) still says "succeeded"
    if upload_status in ("failed", "rejected", "deleted"):
        reason = status.get("failureReason") or status.get("rejectionReason") or upload_status
        error_class = ErrorClass.RETRYABLE if reason == "uploadAborted" else ErrorClass.PERMANENT
        error = PlatformError(error_class, str(reason), f"YouTube {upload_status} the video: {reason}")
        return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail=str(upload_status))
    if upload_status == "processed" or processing.get("processingStatus") == "succeeded":
        publish_at = status.get("publishAt")
        if publish_at and status.get("privacyStatus") == "private" and _timestamp(publish_at) > now.timestamp():
            return StatusReport(ObservedState.PROCESSING, detail=f"scheduled: public at {publish_at}")
        return StatusReport(ObservedState.PUBLISHED, url=watch_url(video_id),
                            detail=f"privacy: {status.get('privacyStatus')}")
    if processing.get("processingStatus") in ("failed", "terminated"):
        reason = processing.get("processingFailureReason") or processing["processingStatus"]
        error = PlatformError(ErrorClass.PERMANENT, str(reason), f"YouTube processing failed: {reason}")
        return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail="processing failed")
    progress = processing.get("processingProgress") or {}
    detail = f"{upload_status or 'processing'}"
    if progress.get("partsTotal"):
        detail += f" {progress.get('partsProcessed', 0)}/{progress['partsTotal']}"
    return StatusReport(ObservedState.PROCESSING, detail=detail)
