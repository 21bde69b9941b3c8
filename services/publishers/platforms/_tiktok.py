"""TikTok Content Posting API client: Direct Post of videos (pull or chunked upload) and photos.

Every post starts with creator_info (platforms.md §1.2) and uses a privacy level from its
options. The publish id is journalled before any byte is sent (§1.9). A pull or photo init that
got no answer may have posted and cannot be looked up: it is failed as `needs_review` rather
than sent again (only an intent whose own save raised is known here never to have been sent).
One that got its answer is handed on even when the answer's save raises (see `_accept`).
A chunked upload that never got its answer is harmless (no bytes, no post), so that one is
simply made again.

A chunked upload holds its chunk in memory (10 MB, the last up to twice that, and its copy on
the way out), so a client uploads only `uploads_at_once` videos at once; the others wait for a
place before they open their media or send their init, so waiting holds nothing (see
UPLOADS_AT_ONCE).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import httpx

from contracts import (
    FOUND_HANDLE_KIND,
    NEEDS_REVIEW,
    EngagementFigures,
    ErrorClass,
    ObservedState,
    Platform,
    PublishRequested,
    RemoteHandle,
)

from services.runtime import PlatformSettings, retry_after_seconds

from ..limits import EndpointLimits, HandedOver
from ._base import (
    Accepted,
    PlatformError,
    RetryRules,
    StatusReport,
    bearer,
    caption_text,
    classified,
    engagement_refusals,
    count,
    first_line,
    json_body,
    release_response,
    require_kind,
    send,
    unexpected_response,
    with_retries,
)
from ._client import PlatformClientBase, upload_places
from ._journal import ACCEPTED, CREATED, INTENT, Checkpoint, Journal, MemoryJournal, resume_point
from ._media import MediaPolicy, MediaStream, check_kind, check_url, fill, head_bytes, is_remote, open_media
from ._rules import check_fetched

log = logging.getLogger("autopost.publisher.tiktok")

DEFAULT_BASE_URL = "https://open.tiktokapis.com"
HANDLE_KIND = "tiktok.publish_id"
# Chunks must be 5–64 MB with the MB base unstated: stay valid under either reading.
MIN_CHUNK, MAX_CHUNK = 5 * 1024 * 1024, 64_000_000
DEFAULT_CHUNK = 10_000_000
MAX_VIDEO_BYTES = 4_000_000_000
MAX_PHOTOS = 35
UPLOAD_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
# most visible first; an unaudited client may only post SELF_ONLY (§1.7)
PRIVACY_PREFERENCE = ("PUBLIC_TO_EVERYONE", "FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
_RESYNCS = 3
# Pull inits between a durable intent and their answer, at once. One caught there by a crash goes
# to review, as an init that may have posted, though most were never sent: they were waiting for
# a connection behind the rest of a batch. Few at once keeps those few. A place is waited for
# after the cap's slot (waiting for the cap must not hold a place others could use), so a long
# wait would bring two of one account's inits closer than the cap spaces them: only a backlog of
# one account meets the cap, the planner spaces an account's posts hours apart, and the places
# are free in a backlog of one account. More places suit a platform slower to answer.
PULL_INITS_AT_ONCE = PlatformSettings.tiktok_pull_inits_at_once  # one default: the setting's
# FILE_UPLOADs one client sends at once. Each holds the chunk it reads (up to a read piece more)
# while it makes the chunk's copy to send, then that copy, which the socket may not have taken
# yet: measured with tracemalloc (as test_tiktok_upload_bound.py does) 23 MB for a
# 10 MB chunk and 41 MB for the last one, which absorbs the remainder (up to 20 MB), so with
# what the socket holds up to 33 and 61 MB. 2 of them and a publisher's own 85 MB stay well
# inside its 256 MiB (deploy/manifests.py), both at their last chunk (207 MB); 3 would reach it.
# A place is taken before the media is opened: waiting then holds no media stream (a remote
# host drops one left idle, and each takes one of the media client's connections) and no init
# (a publish made while waiting would spend its account's init cap and creator cap, and its
# upload URL would expire an hour on). Beyond its buffer a place holds only the short steps
# before it: the open, the intent's save, and the init within its cap (one per ten seconds an
# account; the planner spaces an account's posts hours apart).
UPLOADS_AT_ONCE = PlatformSettings.tiktok_uploads_at_once  # one default: the setting's
# Targets remembered in memory, at most (the latest kept): intents whose save raised, to tell them
# from inits that may have left (see _resume), and publish ids whose ACCEPTED save raised, so
# that a retry here follows them (see _accept)
_REMEMBERED = 10_000

_RATE_LIMITED = {"rate_limit_exceeded"}
_RETRYABLE = {"internal_error"}
_QUOTA = {"spam_risk_too_many_posts", "spam_risk_too_many_pending_share", "reached_active_user_cap"}
_SCOPE_REFUSED = {"scope_not_authorized", "scope_permission_missed"}
_AUTH = {"access_token_invalid", *_SCOPE_REFUSED}
# fail_reason of a FAILED publish; anything else is a media or policy problem (permanent)
_FAIL_CLASSES = {
    "internal": ErrorClass.RETRYABLE,
    "video_pull_failed": ErrorClass.RETRYABLE,
    "photo_pull_failed": ErrorClass.RETRYABLE,
    "spam_risk_too_many_posts": ErrorClass.QUOTA,
    "spam_risk_too_many_pending_share": ErrorClass.QUOTA,
    "auth_removed": ErrorClass.AUTH,
}


def classify(response: httpx.Response, body: Any) -> PlatformError:
    """A TikTok error reply, classified by `error.code` (platforms.md §1.6)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error.get("code"):
        return unexpected_response(response, "tiktok")
    code, message = str(error["code"]), str(error.get("message") or error["code"])
    if code in _RATE_LIMITED:
        # a sliding one-minute window: the server's wait if it gives one, else the window
        return PlatformError(ErrorClass.RATE_LIMITED, code, message, retry_after_seconds(response) or 60.0)
    if code in _RETRYABLE or response.status_code >= 500:
        return PlatformError(ErrorClass.RETRYABLE, code, message, retry_after_seconds(response))
    if code in _QUOTA:
        return PlatformError(ErrorClass.QUOTA, code, message, retry_after_seconds(response))
    if code in _AUTH:
        return PlatformError(ErrorClass.AUTH, code, message)
    return PlatformError(ErrorClass.PERMANENT, code, message)


def pick_privacy(options: list[str], *, unaudited: bool = False) -> str:
    """The most visible level the creator offers; SELF_ONLY for unaudited clients."""
    if unaudited:
        if "SELF_ONLY" not in options:
            raise PlatformError(ErrorClass.PERMANENT, "privacy_level_option_mismatch",
                                "an unaudited client may post SELF_ONLY only, which the creator does not offer")
        return "SELF_ONLY"
    for level in PRIVACY_PREFERENCE:
        if level in options:
            return level
    if options:
        return str(options[0])
    raise PlatformError(ErrorClass.PERMANENT, "privacy_level_option_mismatch",
                        "creator_info offered no privacy level")


def chunk_plan(size: int, chunk_size: int) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) for a FILE_UPLOAD; the last chunk absorbs the remainder."""
    if size <= chunk_size:
        return size, 1
    return chunk_size, size // chunk_size


def post_url(username: str, media: str, post_id: str) -> str:
    return f"https://www.tiktok.com/@{username}/{media}/{post_id}"


_VIDEO_FIELDS = "id,like_count,comment_count,share_count,view_count"
_PUBLIC_ID = re.compile(r"/(?:video|photo)/(\d+)/?$")


# a public post passes moderation (usually < 1 min, sometimes hours) before its public id
# appears (platforms.md §1.5): followed that long, then taken as published without an address
# (waiting longer would risk the queue's processing budget, 6 h for TikTok, failing a live post
# as processing_timeout); its engagement read then asks status/fetch for the id (see
# `read_engagement`), and the queue keeps the URL that read finds
MODERATION_WAIT_SECONDS = 3600.0


def _in_moderation(handle: RemoteHandle, now: float) -> bool:
    """A public post published without its public id yet, recently enough that it may come.
    Only posts to everyone get a public id; a handle from before these were kept is published."""
    accepted_at = handle.extra.get("acceptedAt")
    if handle.extra.get("privacy") != "PUBLIC_TO_EVERYONE" or not isinstance(accepted_at, (int, float)):
        return False
    return now - accepted_at < MODERATION_WAIT_SECONDS


def _public_id(status: dict[str, Any]) -> str | None:
    """The public post id a status/fetch answer gives, once moderation let it out."""
    post_ids = status.get("publicaly_available_post_id") or []  # sic, TikTok's spelling
    return str(post_ids[0]) if post_ids else None


def public_post_id(url: str | None) -> str | None:
    """The public post id at the end of a post URL (see `post_url`)."""
    match = _PUBLIC_ID.search(url or "")
    return match.group(1) if match else None


def _required(data: dict[str, Any], key: str) -> str:
    if not data.get(key):
        raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", f"tiktok: reply without {key}",
                            maybe_processed=True)  # an answer that said ok: it may have been done
    return str(data[key])


def _utf16_prefix(text: str, limit: int) -> str:
    encoded = text.encode("utf-16-le")
    return text if len(encoded) <= 2 * limit else encoded[: 2 * limit].decode("utf-16-le", "ignore")


# what the poller needs: the post's URL parts, and whether a missing public id is still to come;
# and the intent a pull answers, by which a re-drive's handle is matched to the journal's intent
_WIRED = ("username", "mediaType", "privacy", "intent")


def _wire(handle: RemoteHandle, **more: Any) -> RemoteHandle:
    """What the queue and poller get: no upload URL (it is a credential) and no upload plan."""
    return RemoteHandle(kind=HANDLE_KIND, id=handle.id,
                        extra={**{k: handle.extra[k] for k in _WIRED if k in handle.extra}, **more})


class _OutOfStep(Exception):
    """The upload server refused a chunk: maybe it holds other bytes than the client thinks."""

    def __init__(self, error: PlatformError, first: int = 0):
        super().__init__(error.message)
        self.error, self.first = error, first


class TikTokClient(PlatformClientBase):
    platform = Platform.TIKTOK

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 chunk_size: int = DEFAULT_CHUNK, media_http: httpx.AsyncClient | None = None,
                 media_policy: MediaPolicy | None = None, limits: EndpointLimits | None = None,
                 retry: RetryRules | None = None, pull_prefixes: tuple[str, ...] | None = None,
                 unaudited: bool = False, pull_inits_at_once: int = PULL_INITS_AT_ONCE,
                 uploads_at_once: int = UPLOADS_AT_ONCE, clock: Callable[[], float] = time.time):
        if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be between {MIN_CHUNK} and {MAX_CHUNK} bytes")
        super().__init__(http, base_url, media_policy=media_policy, limits=limits, retry=retry)
        self.chunk_size = chunk_size
        self.media_http = media_http or http
        # URL prefixes verified in the developer portal: None pulls every remote URL; others are
        # streamed through this client and uploaded in chunks
        self.pull_prefixes = pull_prefixes
        self.unaudited = unaudited
        self.clock = clock  # unix time: a handle's acceptedAt is read by another process
        self._pull_inits = asyncio.Semaphore(pull_inits_at_once)
        self._uploads = upload_places(uploads_at_once)  # places for a chunked upload's buffer
        self._unsent: OrderedDict[uuid.UUID, str] = OrderedDict()  # target → its unsent intent
        # target → a publish id TikTok gave whose ACCEPTED save raised (the journal lags)
        self._answered: OrderedDict[uuid.UUID, RemoteHandle] = OrderedDict()

    async def publish(self, request: PublishRequested, token: str,
                      journal: Journal | None = None) -> Accepted:
        journal = journal or MemoryJournal()
        with classified(token):
            checkpoint = await resume_point(journal, request)
            if checkpoint is not None:
                resumed = await self._resume(checkpoint, request, token, journal)
                if resumed is not None:
                    return resumed
            video = check_kind(request, "tiktok")
            creator = await self._creator_info(request.account_id, token)
            privacy = pick_privacy(list(creator.get("privacy_level_options") or []), unaudited=self.unaudited)
            if video:
                return await self._post_video(request, token, journal, creator, privacy)
            return await self._post_photos(request, token, journal, creator, privacy)

    async def check_status(self, handle: RemoteHandle, token: str,
                           account_id: str | None = None) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            data = await self._status(account_id or "", token, handle.id)
            status = data.get("status")
            if status == "PUBLISH_COMPLETE":
                post_id = _public_id(data)
                if post_id is None and _in_moderation(handle, self.clock()):
                    return StatusReport(ObservedState.PROCESSING, detail="in moderation: no public id yet")
                if post_id is None:  # e.g. SELF_ONLY posts never get a public id; or a long moderation
                    return StatusReport(ObservedState.PUBLISHED, detail="published without a public post id")
                url = await self._url(handle, post_id, account_id or "", token)
                return StatusReport(ObservedState.PUBLISHED, url=url)
            if status == "SEND_TO_USER_INBOX":  # the creator finishes it in the app
                return StatusReport(ObservedState.PUBLISHED, detail="sent to the creator's inbox")
            if status == "FAILED":
                reason = str(data.get("fail_reason") or "unknown")
                error = PlatformError(_FAIL_CLASSES.get(reason, ErrorClass.PERMANENT), reason,
                                      f"TikTok failed the post: {reason}")
                return StatusReport(ObservedState.FAILED, error=error.to_contract(), detail=reason)
            return StatusReport(ObservedState.PROCESSING, detail=str(status))

    # -- resuming ----------------------------------------------------------------------------

    async def _resume(self, checkpoint: Checkpoint, request: PublishRequested, token: str,
                      journal: Journal) -> Accepted | None:
        """Carry on with the stored publish, or None when a new one is safe."""
        handle = checkpoint.handle
        require_kind(handle, HANDLE_KIND)
        if not handle.id:  # the init was sent; its answer never got stored
            if handle.extra.get("source") == "FILE_UPLOAD":
                await journal.abandon("init answer lost before any byte was sent")
                return None
            intent = handle.extra.get("intent")
            answer = self._answer_to(intent, request)
            if answer is not None:
                handle = answer  # TikTok answered this very intent: follow its publish id
            elif intent is not None and self._unsent.pop(request.target_id, None) == intent:
                # the save of this very intent raised (stored all the same, its answer lost with
                # a database cut): this process never sent its init
                await journal.abandon("intent stored, init never sent")
                return None
            else:
                raise self._needs_review()
        data = await self._status(request.account_id, token, handle.id)
        status = data.get("status")
        if status == "FAILED":
            await journal.abandon(f"FAILED: {data.get('fail_reason') or 'unknown'}")
            return None  # TikTok gave up on it: a new init is safe (§1.9)
        if status == "PROCESSING_UPLOAD" and handle.extra.get("source") == "FILE_UPLOAD":
            uploaded = int(data.get("uploaded_bytes") or 0)
            if uploaded < int(handle.extra["videoSize"]):
                try:
                    async with self._uploads:  # before the media is opened again, as a new upload
                        await self._upload(request, handle, token, offset=uploaded)
                except PlatformError as error:
                    if error.code != "upload_url_expired":
                        raise
                    await journal.abandon("upload URL expired before the last chunk")
                    return None  # never complete, so never posted
        return await self._accept(request, journal, handle)

    def _answer_to(self, intent: str | None, request: PublishRequested) -> RemoteHandle | None:
        """The publish id TikTok gave for the pull `intent`, if known: remembered here when its
        save raised, or the queue's handle on a re-drive (kept from the accepted result). Only
        an answer carrying this very intent's nonce stands for it: another generation's does not."""
        if intent is None:
            return None
        for known in (self._answered.get(request.target_id), request.remote_handle):
            if known is not None and known.kind == HANDLE_KIND and known.id and known.extra.get("intent") == intent:
                return known
        return None

    @staticmethod
    def _needs_review() -> PlatformError:
        return PlatformError(
            ErrorClass.PERMANENT, NEEDS_REVIEW,
            "TikTok's answer to a pull init never arrived: the post may exist, and TikTok cannot "
            "look it up. Check the account: if the post is there, `autopost found` this target "
            "with its address; if not, `autopost retry` it.")

    async def fetch_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                               url: str | None = None) -> EngagementFigures:
        """Display API: `POST /v2/video/query/` for the post's counts, `GET /v2/user/info/` for
        the followers (see `read_engagement`)."""
        figures, _ = await self.read_engagement(handle, token, account_id, url)
        return figures

    async def read_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                              url: str | None = None) -> tuple[EngagementFigures, str | None]:
        """The figures, and the post's URL when it was learnt here (None when `url` served).

        The post is found by its public id, the last part of its URL, so a post an operator
        found (its handle only that URL) is read the same way. A public post the status check
        took as published without its id (its moderation outlasted the wait) is looked up by
        status/fetch, within the account's status cap: once TikTok gives the id, the figures are
        read by it and its URL comes back for the queue to keep; until then the read fails
        RETRYABLE `in_moderation`, for the queue to try again later."""
        if handle.kind != FOUND_HANDLE_KIND:
            require_kind(handle, HANDLE_KIND)
        learnt = None
        post_id = public_post_id(url)
        if post_id is None:
            post_id, learnt = await self._public_id_after_moderation(handle, token, account_id)
        with classified(token), engagement_refusals("tiktok", _SCOPE_REFUSED.__contains__):
            data = await self._call(f"/v2/video/query/?fields={_VIDEO_FIELDS}", "video_query", account_id,
                                    token, {"filters": {"video_ids": [post_id]}})
            video = next((v for v in data.get("videos") or [] if str(v.get("id")) == post_id), None)
            if video is None:  # just published: not listed yet
                raise PlatformError(ErrorClass.RETRYABLE, "video_not_listed", f"video {post_id} not listed yet")
            user = await self._get("/v2/user/info/?fields=open_id,follower_count", "user_info", account_id, token)
        figures = EngagementFigures(
            views=count(video.get("view_count")), likes=count(video.get("like_count")),
            comments=count(video.get("comment_count")), shares=count(video.get("share_count")),
            audience_size=count((user.get("user") or {}).get("follower_count")))
        return figures, learnt

    async def _public_id_after_moderation(self, handle: RemoteHandle, token: str,
                                          account_id: str) -> tuple[str, str]:
        """(public id, URL) of a public post published without its id, asked of status/fetch.

        Only a post to everyone gets a public id (§1.5): any other (SELF_ONLY, a handle from
        before the privacy was kept, a post an operator found) has no figures, for good."""
        if (handle.kind != HANDLE_KIND or not handle.id
                or handle.extra.get("privacy") != "PUBLIC_TO_EVERYONE"):
            raise PlatformError(ErrorClass.PERMANENT, "no_public_post",
                                "the post has no public id (e.g. SELF_ONLY): TikTok gives no figures")
        with classified(token):  # outside engagement_refusals: a refused publish grant is the account's
            data = await self._status(account_id, token, handle.id)
            status = data.get("status")
            post_id = _public_id(data) if status == "PUBLISH_COMPLETE" else None
            if post_id is not None:
                return post_id, await self._url(handle, post_id, account_id, token)
        if status in ("PUBLISH_COMPLETE", "PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD"):
            raise PlatformError(ErrorClass.RETRYABLE, "in_moderation",
                                "TikTok has not given the public post's id yet (in moderation)")
        raise PlatformError(ErrorClass.PERMANENT, "no_public_post",
                            f"TikTok reports the publish {status or 'unknown'}"
                            f"{': ' + str(data['fail_reason']) if data.get('fail_reason') else ''}: no public id")

    async def _url(self, handle: RemoteHandle, post_id: str, account_id: str, token: str) -> str:
        username = handle.extra.get("username") or (
            await self._creator_info(account_id, token)).get("creator_username", "")
        return post_url(username, handle.extra.get("mediaType", "video"), post_id)

    # -- flows -------------------------------------------------------------------------------

    async def _post_video(self, request: PublishRequested, token: str, journal: Journal,
                          creator: dict[str, Any], privacy: str) -> Accepted:
        if len(request.media) > 1:
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_count", "a TikTok video post takes one video")
        media = request.media[0]
        limit = creator.get("max_video_post_duration_sec")
        if media.duration_sec and limit and media.duration_sec > limit:
            raise PlatformError(ErrorClass.PERMANENT, "duration_check_failed",
                                f"video is {media.duration_sec:.0f}s, the creator may post up to {limit}s")
        post_info = {
            "privacy_level": privacy,
            "title": _utf16_prefix(caption_text(request.caption, request.hashtags), 2200),
            "disable_comment": bool(creator.get("comment_disabled")),
            "disable_duet": bool(creator.get("duet_disabled")),
            "disable_stitch": bool(creator.get("stitch_disabled")),
        }
        base = {"username": creator.get("creator_username"), "mediaType": "video", "privacy": privacy}
        if is_remote(media) and self._pulls(str(media.url)):
            check_url(str(media.url), self.media_policy)
            source = {"source": "PULL_FROM_URL", "video_url": str(media.url)}
            try:
                return await self._init_pull("/v2/post/publish/video/init/", "video_init", request, token,
                                             journal, {"post_info": post_info, "source_info": source}, base)
            except PlatformError as error:
                if error.code != "url_ownership_unverified":
                    raise
                # refused, so nothing was made (its intent is set aside): send the bytes ourselves
                log.warning("%s is not on a verified domain; uploading it instead (set "
                            "AUTOPOST_TIKTOK_PULL_PREFIXES to the verified ones)", media.url)
        # a place for the upload's buffer before its media is opened and its init sent (see
        # UPLOADS_AT_ONCE); it is given back however the upload ends
        async with self._uploads, self._open(media) as stream:
            if stream.size is None:
                raise PlatformError(ErrorClass.PERMANENT, "media_size_unknown",
                                    "a chunked TikTok upload needs the media's size; the host did not give it")
            check_fetched(request, 0, stream)
            chunk_size, count = chunk_plan(stream.size, self.chunk_size)
            intent = RemoteHandle(kind=HANDLE_KIND, id="", extra={
                **base, "source": "FILE_UPLOAD", "videoSize": stream.size, "chunkSize": chunk_size,
                "chunkCount": count, "contentType": _upload_type(stream)})
            await journal.save(INTENT, intent)
            source = {"source": "FILE_UPLOAD", "video_size": stream.size, "chunk_size": chunk_size,
                      "total_chunk_count": count}
            # safe to repeat: a publish that never gets its bytes never posts
            data = await with_retries(self.retry, lambda: self._call(
                "/v2/post/publish/video/init/", "video_init", request.account_id, token,
                {"post_info": post_info, "source_info": source}))
            handle = RemoteHandle(kind=HANDLE_KIND, id=_required(data, "publish_id"),
                                  extra={**intent.extra, "uploadUrl": _required(data, "upload_url")})
            await journal.save(CREATED, handle)
            await self._upload(request, handle, token, stream=stream)
        return await self._accept(request, journal, handle)

    async def _post_photos(self, request: PublishRequested, token: str, journal: Journal,
                           creator: dict[str, Any], privacy: str) -> Accepted:
        if not all(is_remote(m) for m in request.media):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_source",
                                "TikTok photo posts pull from http(s) URLs only")
        if len(request.media) > MAX_PHOTOS:
            raise PlatformError(ErrorClass.PERMANENT, "invalid_param", f"a photo post takes at most {MAX_PHOTOS} photos")
        for media in request.media:
            check_url(str(media.url), self.media_policy)
        text = caption_text(request.caption, request.hashtags)
        body = {
            "media_type": "PHOTO",
            "post_mode": "DIRECT_POST",
            "post_info": {
                "title": _utf16_prefix(first_line(text), 90),
                "description": _utf16_prefix(text, 4000),
                "privacy_level": privacy,
                "disable_comment": bool(creator.get("comment_disabled")),
                "auto_add_music": True,
            },
            "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
                            "photo_images": [str(m.url) for m in request.media]},
        }
        base = {"username": creator.get("creator_username"), "mediaType": "photo", "privacy": privacy}
        return await self._init_pull("/v2/post/publish/content/init/", "content_init", request, token,
                                     journal, body, base)

    async def _init_pull(self, path: str, endpoint: str, request: PublishRequested, token: str,
                         journal: Journal, body: dict[str, Any], extra: dict[str, Any]) -> Accepted:
        """An init TikTok acts on by itself (it fetches the media): journalled before it is sent,
        once the cap lets it go and one of the few places for a journalled init is free, so that
        it is sent as soon as its intent is durable."""
        nonce = uuid.uuid4().hex  # tells this intent from any other stored for the target
        intent = RemoteHandle(kind=HANDLE_KIND, id="", extra={**extra, "source": "PULL_FROM_URL", "intent": nonce})
        refused = False  # an init of this intent went and TikTok answered that it did not take it

        async def init() -> dict[str, Any]:
            nonlocal refused
            try:
                async with self.limits.slot(request.account_id, endpoint), self._pull_inits:
                    try:
                        await journal.save(INTENT, intent)
                    except BaseException:
                        _remember(self._unsent, request.target_id, nonce)
                        raise
                    response = await send(self.http, "POST", self.base_url + path, json=body, headers=bearer(token))
                return _data(response)
            except PlatformError as error:
                refused = not error.maybe_processed
                raise

        try:
            # repeated only when TikTok answered that it did not take it (429, 5xx)
            data = await with_retries(self.retry, init, if_processed=False)
        except HandedOver:
            if refused:  # stopped before its retry: nothing was made, so the new owner may init
                await journal.abandon("init refused, then handed over")
            raise
        except PlatformError as error:
            if error.maybe_processed:  # no answer, or an unreadable 2xx: it may have been taken
                raise self._needs_review() from None
            # TikTok answered that it did not take it: nothing was made, so the next try may
            # send a new init instead of stopping for review
            await journal.abandon(f"init refused: {error.code}")
            raise
        # the nonce stays with the answer: it tells which intent this publish id settles
        handle = RemoteHandle(kind=HANDLE_KIND, id=_required(data, "publish_id"), extra=intent.extra)
        return await self._accept(request, journal, handle)

    async def _accept(self, request: PublishRequested, journal: Journal, handle: RemoteHandle) -> Accepted:
        """Journal `handle` as accepted and hand it on. TikTok has taken it, so a save that
        raises does not fail the attempt: that would leave a pull's unanswered intent, which
        only review can settle. The queue keeps the handle it is given (durably), and this
        process remembers it for a retry; the journal lags at its last stage."""
        try:
            await journal.save(ACCEPTED, handle)
        except Exception:
            _remember(self._answered, request.target_id, handle)
            log.warning("TikTok took publish %s for target %s but saving it failed: handed on, the "
                        "journal lags", handle.id, request.target_id, exc_info=True)
        except BaseException:  # cancelled or dying: the id is left here, for a review to find
            _remember(self._answered, request.target_id, handle)
            log.warning("TikTok took publish %s for target %s; cut off while saving it",
                        handle.id, request.target_id)
            raise
        else:
            self._answered.pop(request.target_id, None)
        return self._accepted(handle)

    def _accepted(self, handle: RemoteHandle) -> Accepted:
        """TikTok has it all: what the queue and poller get, with when (moderation counts from it)."""
        return Accepted(_wire(handle, acceptedAt=self.clock()))

    def _pulls(self, url: str) -> bool:
        return self.pull_prefixes is None or url.startswith(self.pull_prefixes)

    # -- upload ------------------------------------------------------------------------------

    def _open(self, media, offset: int = 0):
        return open_media(self.media_http, media, self.media_policy, offset=offset, max_bytes=MAX_VIDEO_BYTES)

    async def _upload(self, request: PublishRequested, handle: RemoteHandle, token: str, *,
                      stream: MediaStream | None = None, offset: int = 0) -> None:
        """Send the chunks from `offset` on; when the server holds other bytes than this side
        thinks, ask status/fetch how many and go on from there (the media is read again)."""
        for _ in range(_RESYNCS + 1):
            source = nullcontext(stream) if stream is not None else self._open(request.media[0], offset)
            async with source as current:
                try:
                    await self._send_chunks(handle, current, offset)
                    return
                except _OutOfStep as step:
                    data = await self._status(request.account_id, token, handle.id)
                    held = int(data.get("uploaded_bytes") or 0)
                    if held == step.first:  # in step after all: the chunk itself is bad
                        raise step.error from None
                    offset = held
            stream = None
        raise PlatformError(ErrorClass.RETRYABLE, "upload_out_of_sync",
                            "the upload server kept disagreeing about the bytes it holds", handle=_wire(handle))

    async def _send_chunks(self, handle: RemoteHandle, stream: MediaStream, offset: int) -> None:
        """PUT the chunks strictly in order: 206 after each, 201 after the last (§1.3)."""
        size, chunk_size = int(handle.extra["videoSize"]), int(handle.extra["chunkSize"])
        count = int(handle.extra["chunkCount"])
        if offset % chunk_size:
            raise PlatformError(ErrorClass.RETRYABLE, "upload_out_of_sync",
                                f"server holds {offset} bytes, not a whole number of chunks")
        buffer = bytearray()
        for index in range(offset // chunk_size, count):
            first = index * chunk_size
            length = size - first if index == count - 1 else chunk_size
            await fill(stream.chunks, buffer, length)
            if len(buffer) < length:
                raise PlatformError(ErrorClass.PERMANENT, "media_changed", "the file shrank while uploading")
            try:
                await self._send_chunk(handle, buffer, length, first, size)
            except _OutOfStep as step:
                step.first = first
                raise

    async def _send_chunk(self, handle: RemoteHandle, buffer: bytearray, length: int, first: int,
                          size: int) -> None:
        """The chunk at the head of `buffer`, taken out of it and sent: its copy lives only
        while it is sent (not beside the next chunk's, as the read goes on)."""
        body = head_bytes(buffer, length)
        del buffer[:length]
        await with_retries(self.retry, lambda: self._put_chunk(handle, body, first, size))

    async def _put_chunk(self, handle: RemoteHandle, body: bytes, first: int, size: int) -> None:
        headers = {"Content-Type": str(handle.extra.get("contentType") or "video/mp4"),
                   "Content-Range": f"bytes {first}-{first + len(body) - 1}/{size}"}
        response = await send(self.http, "PUT", str(handle.extra["uploadUrl"]), content=body, headers=headers)
        try:
            if response.status_code in (201, 206):
                return
            if response.status_code == 404:
                raise PlatformError(ErrorClass.RETRYABLE, "upload_url_expired", "the upload URL is no longer valid")
            error = classify(response, json_body(response))
            if error.code == "invalid_file_upload":
                raise _OutOfStep(error)  # a lost or doubled chunk: compare with what the server holds
            raise error
        finally:
            release_response(response)  # the chunk goes when this returns, not at the next GC

    # -- plumbing ----------------------------------------------------------------------------

    async def _creator_info(self, account: str, token: str) -> dict[str, Any]:
        return await with_retries(self.retry, lambda: self._call(
            "/v2/post/publish/creator_info/query/", "creator_info", account, token, {}))

    async def _status(self, account: str, token: str, publish_id: str) -> dict[str, Any]:
        return await with_retries(self.retry, lambda: self._call(
            "/v2/post/publish/status/fetch/", "status_fetch", account, token, {"publish_id": publish_id}))

    async def _call(self, path: str, endpoint: str, account: str, token: str,
                    body: dict[str, Any]) -> dict[str, Any]:
        """POST one endpoint within its cap; the `data` object on success (`error.code == "ok"`)."""
        async with self.limits.slot(account, endpoint):
            response = await send(self.http, "POST", self.base_url + path, json=body, headers=bearer(token))
        return _data(response)

    async def _get(self, path: str, endpoint: str, account: str, token: str) -> dict[str, Any]:
        """GET one endpoint (the Display API's user info) within its cap; its `data` on success."""
        async with self.limits.slot(account, endpoint):
            response = await send(self.http, "GET", self.base_url + path, headers=bearer(token))
        return _data(response)


def _data(response: httpx.Response) -> dict[str, Any]:
    """The `data` object of an answer whose `error.code` is "ok"; else its error, classified."""
    payload = json_body(response)
    error = payload.get("error") if isinstance(payload, dict) else None
    if response.status_code != 200 or not isinstance(error, dict) or error.get("code") != "ok":
        raise classify(response, payload)  # TikTok may report errors inside HTTP 200
    return payload.get("data") or {}

def _upload_type(stream: MediaStream) -> str:
    return stream.content_type if stream.content_type in UPLOAD_TYPES else "video/mp4"


def _remember(memory: OrderedDict[uuid.UUID, Any], target_id: uuid.UUID, value: Any) -> None:
    memory[target_id] = value
    memory.move_to_end(target_id)
    if len(memory) > _REMEMBERED:
        memory.popitem(last=False)
