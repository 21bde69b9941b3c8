"""Fake TikTok Content Posting API (platforms.md §1): Direct Post video and photo, inbox upload,
chunked upload, the per-token minute limits (20/6/30) and the creator's daily cap."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

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
from ._store import Faults, PublishedLog, SandboxSettings, Window, now, numeric_id

PUBLIC_OPTIONS = ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
PRIVATE_OPTIONS = ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]

# "5–64 MB" with the MB base unstated: accept chunk sizes valid under either reading.
MIN_CHUNK = 5_000_000
MAX_CHUNK = 64 * 1024 * 1024
MAX_LAST_CHUNK = 128 * 1024 * 1024
MAX_CHUNKS = 1000
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
# per user token, sliding minute (§1.2)
MINUTE_LIMITS = {"creator_info": 20, "video_init": 6, "inbox_init": 6, "content_init": 6, "status_fetch": 30}
DAY = 24 * 3600


@dataclass
class Creator:
    username: str
    private: bool

    @property
    def privacy_options(self) -> list[str]:
        return PRIVATE_OPTIONS if self.private else PUBLIC_OPTIONS

    def info(self) -> dict[str, Any]:
        return {
            "creator_avatar_url": f"https://p16-sign.tiktokcdn.com/sandbox/{self.username}.jpeg",
            "creator_username": self.username,
            "creator_nickname": self.username,
            "privacy_level_options": self.privacy_options,
            "comment_disabled": False,
            "duet_disabled": self.private,
            "stitch_disabled": False,
            "max_video_post_duration_sec": 600,
        }


@dataclass
class TikTokPublish:
    publish_id: str
    account_id: str
    username: str
    media: str  # "video" | "photo"
    source: str  # PULL_FROM_URL | FILE_UPLOAD
    direct: bool  # DIRECT_POST, not MEDIA_UPLOAD (inbox)
    privacy: str | None
    caption: str
    post_id: str | None  # assigned up front, revealed at PUBLISH_COMPLETE
    media_ref: str = ""  # what was posted, for recognising the same post twice
    fail_reason: str | None = None  # set: processing ends FAILED with this reason
    # FILE_UPLOAD plan and progress
    video_size: int = 0
    chunk_size: int = 0
    total_chunks: int = 0
    received: int = 0
    # when the platform has all the bytes (init for pulls, last chunk for uploads)
    processing_from: float | None = None
    upload_expires: float = 0.0

    @property
    def url(self) -> str | None:
        if not self.post_id:
            return None
        return f"https://www.tiktok.com/@{self.username}/{self.media}/{self.post_id}"


@dataclass
class TikTokStore:
    publishes: dict[str, TikTokPublish] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # upload_id -> publish_id
    private_accounts: set[str] = field(default_factory=set)
    faults: Faults = field(default_factory=Faults)
    calls: Window = field(default_factory=lambda: Window(60.0))  # (account, endpoint)
    posts: Window = field(default_factory=lambda: Window(DAY))  # account: direct posts in 24 h

    def creator(self, account_id: str) -> Creator:
        username = re.sub(r"[^a-z0-9_.]", "_", account_id.lower())[:24] or "creator"
        return Creator(username, account_id in self.private_accounts)

    def reset(self) -> None:
        self.publishes.clear()
        self.uploads.clear()
        self.calls.clear()
        self.posts.clear()

    def uploading_bytes(self) -> int:
        return sum(p.received for p in self.publishes.values()
                   if p.source == "FILE_UPLOAD" and p.processing_from is None)


def _envelope(data: dict[str, Any], code: str = "ok", message: str = "", status: int = 200) -> Response:
    log_id = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()
    return json_response({"data": data, "error": {"code": code, "message": message, "log_id": log_id}},
                         status)


def _error(status: int, code: str, message: str) -> Response:
    return _envelope({}, code, message, status)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TikTokApi:
    def __init__(self, store: TikTokStore, log: PublishedLog, settings: SandboxSettings):
        self.store, self.log, self.settings = store, log, settings

    def routes(self) -> list[Route]:
        return [
            Route("/v2/post/publish/creator_info/query/", self.creator_info, methods=["POST"]),
            Route("/v2/post/publish/video/init/", self.video_init, methods=["POST"]),
            Route("/v2/post/publish/inbox/video/init/", self.inbox_init, methods=["POST"]),
            Route("/v2/post/publish/content/init/", self.content_init, methods=["POST"]),
            Route("/v2/post/publish/status/fetch/", self.status_fetch, methods=["POST"]),
            Route("/upload/video/", self.upload_chunk, methods=["PUT"]),
        ]

    # -- endpoints ---------------------------------------------------------------------------

    async def creator_info(self, request: Request) -> Response:
        account, problem = await self._enter("creator_info", request)
        if problem:
            return problem
        return _envelope(self.store.creator(account).info())

    async def video_init(self, request: Request) -> Response:
        return await self._video_init(request, direct=True)

    async def inbox_init(self, request: Request) -> Response:
        return await self._video_init(request, direct=False)

    async def _video_init(self, request: Request, direct: bool) -> Response:
        account, problem = await self._enter("video_init" if direct else "inbox_init", request)
        if problem:
            return problem
        body = await read_json(request)
        if body is None:
            return _error(400, "invalid_params", "request body must be a JSON object")
        creator = self.store.creator(account)
        post_info, source_info = body.get("post_info") or {}, body.get("source_info") or {}
        privacy = None
        if direct:
            if problem := _check_post_info(post_info, creator, title_limit=2200):
                return problem
            privacy, problem = self._privacy(creator, post_info["privacy_level"])
            if problem:
                return problem
        source = source_info.get("source")
        publish = TikTokPublish(
            publish_id="", account_id=account, username=creator.username, media="video",
            source=str(source), direct=direct, privacy=privacy,
            caption=post_info.get("title") or "", post_id=None,
            fail_reason=_failure(request, "internal"),
        )
        data: dict[str, Any] = {}
        if source == "PULL_FROM_URL":
            if not _is_http_url(source_info.get("video_url")):
                return _error(400, "invalid_param", "source_info.video_url must be an http(s) URL")
            if problem := self._unverified(source_info["video_url"]):
                return problem
            publish.publish_id = self._new_publish_id("v_pub_url~v2-1.")
            publish.media_ref = str(source_info["video_url"])
        elif source == "FILE_UPLOAD":
            if problem := _plan_upload(publish, source_info):
                return problem
            publish.publish_id = self._new_publish_id("v_pub_file~v2-1.")
            publish.media_ref = f"upload:{publish.video_size}"
            publish.upload_expires = now() + self.settings.tiktok_upload_url_seconds
            upload_id = secrets.token_urlsafe(16)
            self.store.uploads[upload_id] = publish.publish_id
            data["upload_url"] = (f"{public_base(request, self.settings)}/tiktok/upload/video/"
                                  f"?upload_id={upload_id}&upload_token={secrets.token_urlsafe(16)}")
        else:
            return _error(400, "invalid_param", "source_info.source must be FILE_UPLOAD or PULL_FROM_URL")
        if direct and (problem := self._count_post(account)):
            return problem
        self._accept(publish)
        data["publish_id"] = publish.publish_id
        return _envelope(data)

    async def content_init(self, request: Request) -> Response:
        account, problem = await self._enter("content_init", request)
        if problem:
            return problem
        body = await read_json(request)
        if body is None:
            return _error(400, "invalid_params", "request body must be a JSON object")
        if body.get("media_type") != "PHOTO":
            return _error(400, "invalid_param", "media_type must be PHOTO")
        mode = body.get("post_mode")
        if mode not in {"DIRECT_POST", "MEDIA_UPLOAD"}:
            return _error(400, "invalid_param", "post_mode must be DIRECT_POST or MEDIA_UPLOAD")
        creator = self.store.creator(account)
        post_info, source_info = body.get("post_info") or {}, body.get("source_info") or {}
        privacy = post_info.get("privacy_level")
        if mode == "DIRECT_POST":
            if problem := _check_post_info(post_info, creator, title_limit=90):
                return problem
            privacy, problem = self._privacy(creator, privacy)
            if problem:
                return problem
        if _utf16_len(str(post_info.get("description") or "")) > 4000:
            return _error(400, "invalid_param", "post_info.description is longer than 4000")
        images = source_info.get("photo_images")
        if source_info.get("source") != "PULL_FROM_URL":
            return _error(400, "invalid_param", "source_info.source must be PULL_FROM_URL")
        if not isinstance(images, list) or not 1 <= len(images) <= 35 or not all(map(_is_http_url, images)):
            return _error(400, "invalid_param", "source_info.photo_images must be 1-35 http(s) URLs")
        for image in images:
            if problem := self._unverified(image):
                return problem
        cover = source_info.get("photo_cover_index", 0)
        if not isinstance(cover, int) or not 0 <= cover < len(images):
            return _error(400, "invalid_param", "source_info.photo_cover_index is out of range")
        publish = TikTokPublish(
            publish_id=self._new_publish_id("p_pub_url~v2."), account_id=account,
            username=creator.username, media="photo", source="PULL_FROM_URL",
            direct=mode == "DIRECT_POST", privacy=privacy,
            caption=str(post_info.get("description") or post_info.get("title") or ""), post_id=None,
            media_ref=" ".join(map(str, images)), fail_reason=_failure(request, "photo_pull_failed"),
        )
        if publish.direct and (problem := self._count_post(account)):
            return problem
        self._accept(publish)
        return _envelope({"publish_id": publish.publish_id})

    async def status_fetch(self, request: Request) -> Response:
        account, problem = await self._enter("status_fetch", request)
        if problem:
            return problem
        body = await read_json(request) or {}
        publish = self.store.publishes.get(str(body.get("publish_id")))
        if publish is None or publish.account_id != account:
            return _error(400, "invalid_params", "publish_id not found")
        return _envelope(self._status(publish))

    async def upload_chunk(self, request: Request) -> Response:
        upload_id = request.query_params.get("upload_id", "")
        publish = self.store.publishes.get(self.store.uploads.get(upload_id) or "")
        # the upload URL is the credential: no token on these requests
        if fault := await self.store.faults.before("tiktok.upload", request,
                                                   publish.account_id if publish else None):
            return fault
        if getattr(request.state, "session_expired", False):
            self.store.uploads.pop(upload_id, None)
            publish = None
        if publish is None or now() > publish.upload_expires:
            return _error(404, "invalid_file_upload", "upload_url is unknown or expired")
        if request.headers.get("content-type", "").split(";")[0].strip() not in VIDEO_TYPES:
            return _error(400, "invalid_file_upload", "Content-Type must be video/mp4, video/quicktime or video/webm")
        parsed = parse_content_range(request.headers.get("content-range", ""))
        if parsed is None or parsed[0] is None or parsed[2] != publish.video_size:
            return _error(400, "invalid_file_upload",
                          f"Content-Range must be bytes first-last/{publish.video_size}")
        first, last = parsed[0], parsed[1]
        size = await count_body(request)
        if last - first + 1 != size:
            return _error(400, "invalid_file_upload", "body length does not match Content-Range")
        final_first = (publish.total_chunks - 1) * publish.chunk_size
        if last < publish.received:  # the same chunk again (client retry): already have it
            return Response(status_code=201 if last == publish.video_size - 1 else 206)
        if first != publish.received:
            return _error(400, "invalid_file_upload",
                          f"chunks must be sequential; expected first byte {publish.received}")
        expected = publish.video_size - first if first == final_first else publish.chunk_size
        if size != expected:
            return _error(400, "invalid_file_upload", f"chunk at {first} must be {expected} bytes")
        if getattr(request.state, "lost_chunk", False):
            # lost on the way in: acknowledged like any other chunk but not kept (the last one,
            # whose 201 would start processing, fails visibly instead)
            if last + 1 == publish.video_size:
                return _error(500, "internal_error", "the chunk was lost; send it again")
            return Response(status_code=206)
        publish.received = last + 1
        if publish.received < publish.video_size:
            return Response(status_code=206)
        self._start_processing(publish)
        return Response(status_code=201)

    # -- limits ------------------------------------------------------------------------------

    async def _enter(self, endpoint: str, request: Request) -> tuple[str, Response | None]:
        """The caller's account, after faults, the token check and the minute limit."""
        account = _account(request)
        if fault := await self.store.faults.before(f"tiktok.{endpoint}", request, account):
            return account or "", fault
        if account is None:
            return "", _unauthorized()
        if self.settings.rate_limits and not self.store.calls.admit((account, endpoint), MINUTE_LIMITS[endpoint]):
            return account, _error(429, "rate_limit_exceeded",
                                   f"{endpoint} allows {MINUTE_LIMITS[endpoint]} requests per minute per user")
        return account, None

    def _count_post(self, account: str) -> Response | None:
        """The creator's daily cap on Direct Posts, shared by every client (§1.7)."""
        if self.settings.daily_quotas and not self.store.posts.admit(account, self.settings.tiktok_daily_posts):
            return _error(403, "spam_risk_too_many_posts",
                          "The creator has posted too many times in the last 24 hours.")
        return None

    def _unverified(self, url: str) -> Response | None:
        """PULL_FROM_URL takes media only from the app's verified domains (platforms.md §1.3)."""
        verified = self.settings.tiktok_verified_url_prefixes
        if verified is None or str(url).startswith(verified):
            return None
        return _error(403, "url_ownership_unverified", f"the domain or URL prefix of {url} is not verified")

    def _privacy(self, creator: Creator, privacy: str) -> tuple[str, Response | None]:
        if not self.settings.tiktok_unaudited:
            return privacy, None
        if not creator.private:
            return privacy, _error(403, "unaudited_client_can_only_post_to_private_accounts",
                                   "Unaudited clients can only post to private accounts.")
        return "SELF_ONLY", None  # content from unaudited clients is forced private

    # -- state -------------------------------------------------------------------------------

    def _new_publish_id(self, prefix: str) -> str:
        return numeric_id(prefix, 19, self.store.publishes)

    def _accept(self, publish: TikTokPublish) -> None:
        # post ids stay empty for SELF_ONLY posts, as on TikTok
        if publish.direct and publish.privacy != "SELF_ONLY":
            publish.post_id = numeric_id("7", 18, {})
        self.store.publishes[publish.publish_id] = publish
        if publish.source == "PULL_FROM_URL":
            self._start_processing(publish)

    def _start_processing(self, publish: TikTokPublish) -> None:
        publish.processing_from = now()
        if publish.direct and not publish.fail_reason:
            self.log.add("tiktok", publish.account_id, publish.publish_id, publish.url,
                         publish.caption, publish.processing_from, publish.privacy, publish.media_ref)

    def _status(self, publish: TikTokPublish) -> dict[str, Any]:
        data: dict[str, Any] = {"fail_reason": "", "publicaly_available_post_id": []}
        if publish.source == "FILE_UPLOAD":
            data["uploaded_bytes"] = publish.received
        else:
            data["downloaded_bytes"] = 0
        started = publish.processing_from
        if started is None or now() < started + self.settings.processing_seconds:
            data["status"] = "PROCESSING_DOWNLOAD" if publish.source == "PULL_FROM_URL" else "PROCESSING_UPLOAD"
        elif publish.fail_reason:
            data["status"] = "FAILED"
            data["fail_reason"] = publish.fail_reason
        elif not publish.direct:
            data["status"] = "SEND_TO_USER_INBOX"
        else:
            data["status"] = "PUBLISH_COMPLETE"
            moderated = now() >= started + self.settings.processing_seconds + self.settings.tiktok_moderation_seconds
            data["publicaly_available_post_id"] = [publish.post_id] if publish.post_id and moderated else []
        return data


def _account(request: Request) -> str | None:
    token = bearer_token(request)
    return account_for(token) if token else None


def _failure(request: Request, default: str) -> str | None:
    """The fail_reason a `processing_failure` fault asked for."""
    marked = getattr(request.state, "processing_failure", None)
    return None if not marked else (marked if isinstance(marked, str) else default)


def fault_response(kind: str, rule: Any) -> Response:
    """A fault in TikTok's envelope and codes (§1.6)."""
    if kind == "rate_limit":
        response = _error(429, "rate_limit_exceeded", "Too many requests; slow down.")
        response.headers["Retry-After"] = f"{rule.wait_seconds:g}"
        return response
    if kind == "server_error":
        return _error(500, "internal_error", "Something went wrong. Please try again later.")
    if kind == "auth_expired":
        return _error(401, "access_token_invalid", "The access token is invalid or not found in the request.")
    if kind == "quota":
        return _error(403, rule.reason or "spam_risk_too_many_posts",
                      "The creator has posted too many times in the last 24 hours.")
    raise ValueError(kind)


def _unauthorized() -> Response:
    return _error(401, "access_token_invalid",
                  "The access token is invalid or not found in the request.")


def _is_http_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _check_post_info(post_info: dict[str, Any], creator: Creator, title_limit: int) -> Response | None:
    privacy = post_info.get("privacy_level")
    if not privacy:
        return _error(400, "invalid_param", "post_info.privacy_level is required")
    if privacy not in creator.privacy_options:
        return _error(403, "privacy_level_option_mismatch",
                      f"privacy_level {privacy} is not one of the creator's options")
    if _utf16_len(str(post_info.get("title") or "")) > title_limit:
        return _error(400, "invalid_param", f"post_info.title is longer than {title_limit}")
    return None


def _plan_upload(publish: TikTokPublish, source_info: dict[str, Any]) -> Response | None:
    """Check the FILE_UPLOAD chunk plan (§1.3) and store it on the publish."""
    size, chunk, count = (source_info.get(k) for k in ("video_size", "chunk_size", "total_chunk_count"))
    if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
        return _error(400, "invalid_param", "video_size, chunk_size and total_chunk_count are required")
    if chunk == size:  # one chunk: small files, or any file up to the chunk maximum
        valid = count == 1 and size <= MAX_CHUNK
    else:
        last = size - (count - 1) * chunk
        valid = (MIN_CHUNK <= chunk <= MAX_CHUNK and chunk < size and count == size // chunk
                 and count <= MAX_CHUNKS and last <= MAX_LAST_CHUNK)
    if not valid:
        return _error(400, "invalid_file_upload",
                      "chunk_size must be 5-64 MB (or the whole file) and total_chunk_count "
                      "floor(video_size / chunk_size)")
    publish.video_size, publish.chunk_size, publish.total_chunks = size, chunk, count
    return None
