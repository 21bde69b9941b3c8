"""Fake YouTube Data API v3 (platforms.md §3): resumable videos.insert, videos.list, the uploads
playlist (channels.list + playlistItems.list), and the project's daily quota buckets."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._http import (
    account_for,
    bearer_token,
    count_body,
    json_response,
    parse_content_range,
    public_base,
    read_json,
)
from ._store import Faults, PublishedLog, SandboxSettings, iso_utc, now

CHUNK_ALIGNMENT = 256 * 1024
PRIVACY_STATUSES = {"public", "private", "unlisted"}
PACIFIC = ZoneInfo("America/Los_Angeles")


@dataclass
class UploadSession:
    upload_id: str
    account_id: str
    snippet: dict[str, Any]
    status: dict[str, Any]
    total: int | None  # X-Upload-Content-Length, or learnt from the first Content-Range with one
    received: int = 0
    video_id: str | None = None
    fail_reason: str | None = None  # set: the video fails in processing with this failureReason


@dataclass
class Video:
    id: str
    account_id: str
    snippet: dict[str, Any]
    status: dict[str, Any]
    uploaded_at: float
    size: int = 0
    fail_reason: str | None = None


@dataclass
class YouTubeStore:
    sessions: dict[str, UploadSession] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    # the project's quota for the current Pacific day: (day, units used, inserts used)
    quota_day: str = ""
    units_used: int = 0
    inserts_used: int = 0

    def reset(self) -> None:
        self.sessions.clear()
        self.videos.clear()
        self.quota_day, self.units_used, self.inserts_used = "", 0, 0

    def uploading_bytes(self) -> int:
        return sum(s.received for s in self.sessions.values() if s.video_id is None)

    def charge(self, settings: SandboxSettings, *, units: int = 0, inserts: int = 0) -> bool:
        """Spend quota; False when the bucket is empty (every call costs, even refused ones)."""
        day = datetime.now(PACIFIC).date().isoformat()
        if day != self.quota_day:
            self.quota_day, self.units_used, self.inserts_used = day, 0, 0
        self.units_used += units
        self.inserts_used += inserts
        if not settings.daily_quotas:
            return True
        if inserts:  # videos.insert has its own bucket since 2026-06-01 (§3.6)
            return self.inserts_used <= settings.youtube_daily_inserts
        return self.units_used <= settings.youtube_daily_units


def google_error(status: int, reason: str, message: str, domain: str = "youtube.video") -> Response:
    return json_response({"error": {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
    }}, status)


def _channel_id(account_id: str) -> str:
    return "UC" + hashlib.sha256(account_id.encode()).hexdigest()[:22]


class YouTubeApi:
    def __init__(self, store: YouTubeStore, log: PublishedLog, settings: SandboxSettings,
                 statistics: Callable[[Video], dict[str, str]] | None = None,
                 channel_statistics: Callable[[str], dict[str, Any]] | None = None):
        self.store, self.log, self.settings = store, log, settings
        # part=statistics of videos.list and channels.list (see _engagement.py)
        self.statistics, self.channel_statistics = statistics, channel_statistics

    def routes(self) -> list[Route]:
        return [
            Route("/upload/youtube/v3/videos", self.start_upload, methods=["POST"]),
            Route("/upload/youtube/v3/videos", self.upload_chunk, methods=["PUT"]),
            Route("/youtube/v3/videos", self.list_videos, methods=["GET"]),
            Route("/youtube/v3/channels", self.list_channels, methods=["GET"]),
            Route("/youtube/v3/playlistItems", self.list_playlist_items, methods=["GET"]),
        ]

    # -- endpoints ---------------------------------------------------------------------------

    async def start_upload(self, request: Request) -> Response:
        token = bearer_token(request)
        if fault := await self.store.faults.before("youtube.insert", request, account_for(token) if token else None):
            return fault
        if not token:
            return _unauthorized()
        if not self.store.charge(self.settings, inserts=1):
            return _quota_exceeded()
        if request.query_params.get("uploadType") != "resumable":
            return google_error(400, "badRequest", "The sandbox only fakes uploadType=resumable", "global")
        if not request.query_params.get("part"):
            return google_error(400, "required", "Required parameter: part", "global")
        body = await read_json(request)
        if body is None:
            return google_error(400, "parseError", "Parse Error", "global")
        snippet, status = body.get("snippet") or {}, body.get("status") or {}
        if problem := _check_metadata(snippet, status):
            return problem
        declared = request.headers.get("x-upload-content-length")
        session = UploadSession(
            upload_id=secrets.token_urlsafe(24), account_id=account_for(token), snippet=snippet,
            status=status, total=int(declared) if declared and declared.isdigit() else None,
            fail_reason=_failure(request),
        )
        self.store.sessions[session.upload_id] = session
        location = (f"{public_base(request, self.settings)}/youtube/upload/youtube/v3/videos"
                    f"?uploadType=resumable&part={request.query_params['part']}&upload_id={session.upload_id}")
        return Response(status_code=200, headers={"Location": location})

    async def upload_chunk(self, request: Request) -> Response:
        # the session URI itself is the credential, as on Google: no Authorization needed
        upload_id = request.query_params.get("upload_id", "")
        session = self.store.sessions.get(upload_id)
        if fault := await self.store.faults.before("youtube.upload", request,
                                                   session.account_id if session else None):
            return fault
        if getattr(request.state, "session_expired", False):
            self.store.sessions.pop(upload_id, None)
            session = None
        if session is None:
            return google_error(404, "notFound", "Upload session not found or expired", "global")
        header = request.headers.get("content-range")
        size = await count_body(request)
        if header is None:  # the whole file in one request
            first, last, total = (0, size - 1, size) if size else (None, None, 0)
        elif (parsed := parse_content_range(header)) is None:
            return google_error(400, "badRequest", "Invalid Content-Range header", "global")
        else:
            first, last, total = parsed
        if session.total is not None and total is not None and total != session.total:
            return google_error(400, "badRequest", f"Upload size is {session.total}, not {total}", "global")
        session.total = total if total is not None else session.total
        if session.video_id:  # already complete: any PUT, status query included, returns the video
            return json_response(self._resource(self.store.videos[session.video_id], set()), 200)
        if first is None:  # `bytes */total`: how far did we get?
            return self._incomplete(session)
        if last - first + 1 != size:
            return google_error(400, "badRequest", "Body length does not match Content-Range", "global")
        if first > session.received:
            return google_error(400, "badRequest",
                                f"Chunk starts at {first}, but {session.received} bytes were received", "global")
        final = session.total is not None and last + 1 == session.total
        if not final and size % CHUNK_ALIGNMENT:
            return google_error(400, "badRequest",
                                "Invalid request. The number of bytes uploaded is required to be a "
                                f"multiple of {CHUNK_ALIGNMENT}, except for the final request. "
                                f"The received request contained {size} bytes.", "global")
        if getattr(request.state, "lost_chunk", False):
            # the connection broke part-way: the server keeps what arrived, in whole 256 KiB
            # units, and says so in `Range` (a chunk may be accepted in part, §3.2)
            kept = (size // 2) // CHUNK_ALIGNMENT * CHUNK_ALIGNMENT
            session.received = max(session.received, first + kept)
            return self._incomplete(session)
        session.received = max(session.received, last + 1)
        if not final:
            return self._incomplete(session)
        video = self._create_video(session)
        return json_response(self._resource(video, {"snippet", "status"}, just_uploaded=True), 201)

    async def list_videos(self, request: Request) -> Response:
        token, problem = await self._enter("list", request)
        if problem:
            return problem
        parts = {p.strip() for p in request.query_params.get("part", "").split(",") if p.strip()}
        if not parts:
            return google_error(400, "required", "Required parameter: part", "global")
        caller = account_for(token)
        items = []
        for video_id in request.query_params.get("id", "").split(","):
            video = self.store.videos.get(video_id.strip())
            if video is not None:
                # processingDetails are owner-only
                visible = parts if video.account_id == caller else parts - {"processingDetails"}
                items.append(self._resource(video, visible))
        return json_response({
            "kind": "youtube#videoListResponse",
            "etag": secrets.token_urlsafe(12),
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        })

    async def list_channels(self, request: Request) -> Response:
        token, problem = await self._enter("channels", request)
        if problem:
            return problem
        if request.query_params.get("mine") != "true":
            return google_error(400, "missingParameter", "The sandbox lists only mine=true", "youtube.parameter")
        account = account_for(token)
        channel = _channel_id(account)
        item: dict[str, Any] = {"kind": "youtube#channel", "id": channel,
                                "contentDetails": {"relatedPlaylists": {"uploads": "UU" + channel[2:]}}}
        parts = {p.strip() for p in request.query_params.get("part", "").split(",")}
        if "statistics" in parts and self.channel_statistics is not None:
            item["statistics"] = self.channel_statistics(account)
        return json_response({"kind": "youtube#channelListResponse", "items": [item],
                              "pageInfo": {"totalResults": 1, "resultsPerPage": 1}})

    async def list_playlist_items(self, request: Request) -> Response:
        token, problem = await self._enter("playlist_items", request)
        if problem:
            return problem
        playlist = request.query_params.get("playlistId", "")
        uploads = [v for v in self.store.videos.values() if "UU" + _channel_id(v.account_id)[2:] == playlist]
        uploads.sort(key=lambda v: v.uploaded_at, reverse=True)  # newest first
        limit = int(request.query_params.get("maxResults", "5") or 5)
        return json_response({"kind": "youtube#playlistItemListResponse", "items": [{
            "kind": "youtube#playlistItem",
            "snippet": {"publishedAt": v.snippet["publishedAt"], "title": v.snippet["title"],
                        "description": v.snippet["description"], "playlistId": playlist,
                        "resourceId": {"kind": "youtube#video", "videoId": v.id}},
        } for v in uploads[:limit]]})

    async def _enter(self, operation: str, request: Request) -> tuple[str, Response | None]:
        """The caller's token, after faults, the token check and one quota unit."""
        token = bearer_token(request)
        if fault := await self.store.faults.before(f"youtube.{operation}", request,
                                                   account_for(token) if token else None):
            return "", fault
        if not token:
            return "", _unauthorized()
        if not self.store.charge(self.settings, units=1):
            return token, _quota_exceeded()
        return token, None

    # -- state -------------------------------------------------------------------------------

    def _incomplete(self, session: UploadSession) -> Response:
        headers = {"Range": f"bytes=0-{session.received - 1}"} if session.received else {}
        return Response(status_code=308, headers=headers)

    def _create_video(self, session: UploadSession) -> Video:
        video_id = secrets.token_urlsafe(8)[:11]
        while video_id in self.store.videos:
            video_id = secrets.token_urlsafe(8)[:11]
        uploaded_at = now()
        snippet = {
            "publishedAt": iso_utc(uploaded_at),
            "channelId": _channel_id(session.account_id),
            "title": session.snippet.get("title", ""),
            "description": session.snippet.get("description", ""),
            "tags": session.snippet.get("tags", []),
            "categoryId": str(session.snippet.get("categoryId", "22")),
            "channelTitle": session.account_id,
            "liveBroadcastContent": "none",
        }
        status = {
            "privacyStatus": session.status["privacyStatus"],
            "license": session.status.get("license", "youtube"),
            "embeddable": session.status.get("embeddable", True),
            "publicStatsViewable": session.status.get("publicStatsViewable", True),
            "madeForKids": bool(session.status.get("selfDeclaredMadeForKids", False)),
        }
        if session.status.get("publishAt"):
            status["publishAt"] = session.status["publishAt"]
        video = Video(video_id, session.account_id, snippet, status, uploaded_at,
                      size=session.received, fail_reason=session.fail_reason)
        self.store.videos[video_id] = video
        session.video_id = video_id
        if not video.fail_reason:  # a video that fails in processing is never shown
            self.log.add("youtube", video.account_id, video_id, f"https://www.youtube.com/watch?v={video_id}",
                         snippet["description"] or snippet["title"], uploaded_at, status["privacyStatus"],
                         f"{snippet['title']}\n{video.size}")
        return video

    def _resource(self, video: Video, parts: set[str], just_uploaded: bool = False) -> dict[str, Any]:
        # the upload reply always says "uploaded"; processing is seen through videos.list
        processed = not just_uploaded and now() >= video.uploaded_at + self.settings.processing_seconds
        resource: dict[str, Any] = {"kind": "youtube#video", "etag": secrets.token_urlsafe(12), "id": video.id}
        if "snippet" in parts:
            resource["snippet"] = video.snippet
        if "status" in parts:
            resource["status"] = self._status(video, processed)
        if "processingDetails" in parts:
            resource["processingDetails"] = self._processing(video, processed)
        if "statistics" in parts and self.statistics is not None:
            resource["statistics"] = self.statistics(video)
        return resource

    @staticmethod
    def _status(video: Video, processed: bool) -> dict[str, Any]:
        status = dict(video.status)
        if processed and video.fail_reason:
            return {"uploadStatus": "failed", "failureReason": video.fail_reason, **status}
        # YouTube makes a scheduled video public at publishAt (§3.4)
        if status.get("publishAt") and status.get("privacyStatus") == "private" and _in_past(status["publishAt"]):
            status["privacyStatus"] = "public"
            del status["publishAt"]
        return {"uploadStatus": "processed" if processed else "uploaded", **status}

    def _processing(self, video: Video, processed: bool) -> dict[str, Any]:
        if processed and video.fail_reason:
            return {"processingStatus": "failed", "processingFailureReason": "transcodeFailed"}
        if processed:
            return {"processingStatus": "succeeded", "fileDetailsAvailability": "available",
                    "processingIssuesAvailability": "available", "thumbnailsAvailability": "available"}
        duration = self.settings.processing_seconds
        left = max(0.0, video.uploaded_at + duration - now())
        done = int(1000 * (1 - left / duration)) if duration else 1000
        return {"processingStatus": "processing",
                "processingProgress": {"partsTotal": 1000, "partsProcessed": done,
                                       "timeLeftMs": int(left * 1000)}}


def _failure(request: Request) -> str | None:
    """The failureReason a `processing_failure` fault asked for."""
    marked = getattr(request.state, "processing_failure", None)
    return None if not marked else (marked if isinstance(marked, str) else "uploadAborted")


def _quota_exceeded() -> Response:
    return google_error(403, "quotaExceeded",
                        "The request cannot be completed because you have exceeded your quota.", "youtube.quota")


def fault_response(kind: str, rule: Any) -> Response:
    """A fault in Google's envelope, branched on `errors[].reason` (§3.5)."""
    if kind == "rate_limit":
        response = google_error(429, "rateLimitExceeded", "The request rate is too high.", "usageLimits")
        response.headers["Retry-After"] = f"{rule.wait_seconds:g}"
        return response
    if kind == "server_error":
        return google_error(503, "backendError", "Backend Error", "global")
    if kind == "auth_expired":
        return json_response({"error": {
            "code": 401, "message": "Request had invalid authentication credentials.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}, 401)
    if kind == "quota":
        return google_error(403, rule.reason or "quotaExceeded",
                            "The request cannot be completed because you have exceeded your quota.",
                            "youtube.quota")
    raise ValueError(kind)


def _unauthorized() -> Response:
    return json_response({"error": {
        "code": 401,
        "message": "Request is missing required authentication credential. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential.",
        "errors": [{"message": "Login Required.", "domain": "global", "reason": "required",
                    "location": "Authorization", "locationType": "header"}],
        "status": "UNAUTHENTICATED",
    }}, 401)


def _check_metadata(snippet: dict[str, Any], status: dict[str, Any]) -> Response | None:
    """The videos.insert checks of platforms.md §3.5 and §3.8."""
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 100 or set("<>") & set(title):
        return google_error(400, "invalidTitle", "The request metadata specifies an invalid video title.")
    description = snippet.get("description", "")
    if (not isinstance(description, str) or len(description.encode()) > 5000
            or set("<>") & set(description)):
        return google_error(400, "invalidDescription",
                            "The request metadata specifies an invalid video description.")
    tags = snippet.get("tags", [])
    if not isinstance(tags, list) or _tags_length(tags) > 500:
        return google_error(400, "invalidTags", "The request metadata specifies invalid video keywords.")
    privacy = status.get("privacyStatus")
    if privacy not in PRIVACY_STATUSES:
        return google_error(400, "invalidVideoMetadata",
                            "The request metadata is invalid: status.privacyStatus is required "
                            "(public, private or unlisted).")
    if publish_at := status.get("publishAt"):
        if privacy != "private" or not _in_future(publish_at):
            return google_error(400, "invalidPublishAt",
                                "The request metadata specifies an invalid scheduled publishing time.")
    return None


def _tags_length(tags: list[Any]) -> int:
    # separating commas count; a tag with a space counts with its quotes
    lengths = [len(str(t)) + (2 if " " in str(t) else 0) for t in tags]
    return sum(lengths) + max(0, len(lengths) - 1)


def _in_past(value: Any) -> bool:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.timestamp() <= now()


def _in_future(value: Any) -> bool:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.tzinfo is not None and moment.timestamp() > now()
