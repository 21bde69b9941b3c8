"""Instagram Graph API client: containers (image, reel, story, carousel) → FINISHED → media_publish → permalink.

The container is the de-duplication handle (platforms.md §2.7): it publishes once. It is
journalled as soon as it exists; a later call resumes it. When media_publish got no answer, the
container's `status_code` tells what happened: PUBLISHED (the media id is recovered from the
account's media), FINISHED (publish again, same container), EXPIRED/ERROR (a new one).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import orjson

from contracts import (
    ContentType,
    EngagementFigures,
    ErrorClass,
    ObservedState,
    Platform,
    PublishRequested,
    RemoteHandle,
)

from services.quotas import PublishingLimit
from services.runtime import retry_after_seconds

from ..limits import EndpointLimits
from ._base import (
    Accepted,
    PlatformError,
    Published,
    RetryRules,
    StatusReport,
    bearer,
    caption_text,
    classified,
    engagement_refusals,
    count,
    json_body,
    repeatable,
    require_kind,
    send,
    unexpected_response,
    with_retries,
)
from ._client import PlatformClientBase
from ._journal import ACCEPTED, CREATED, Checkpoint, Journal, MemoryJournal, resume_point
from ._media import MediaPolicy, check_kind, check_url, is_remote, is_video

# Instagram Login, the setup `autopost accounts connect` uses (platforms.md §2.1); Page tokens of
# Facebook Login for Business go to graph.facebook.com instead (INSTAGRAM_API_BASE)
DEFAULT_BASE_URL = "https://graph.instagram.com"
DEFAULT_API_VERSION = "v25.0"
HANDLE_KIND = "instagram.media"
CONTAINER_HANDLE_KIND = "instagram.container"
CAPTION_LIMIT = 2200
CAROUSEL_SIZE = range(2, 11)
LIMIT_RETRY_SECONDS = 3600.0  # the publishing limit is a rolling 24 h; look again in an hour
DEFAULT_PUBLISHING_LIMIT = 50  # when the reply leaves config.quota_total out (platforms.md §2.5)

log = logging.getLogger("autopost.publisher.instagram")

# platforms.md §2.4: the subcode says most; "new container" cases retry (a retry makes one)
_SUBCODE_CLASSES = {
    2207001: ErrorClass.RETRYABLE, 2207003: ErrorClass.RETRYABLE, 2207006: ErrorClass.RETRYABLE,
    2207008: ErrorClass.RETRYABLE, 2207020: ErrorClass.RETRYABLE, 2207027: ErrorClass.RETRYABLE,
    2207032: ErrorClass.RETRYABLE, 2207053: ErrorClass.RETRYABLE,
    2207042: ErrorClass.QUOTA,
}
# media_publish refusals after which only a new container publishes (platforms.md §2.4): media
# not found, container expired, unknown video upload error
_NEW_CONTAINER = {2207006, 2207020, 2207053}
# Graph's permission errors (10, 200-299): a token without the insights permission, or media
# with too few viewers for insights; 190 and 102 are the token itself
_PERMISSION_CODES = {10, *range(200, 300)}
_CODE_CLASSES = {
    -2: ErrorClass.RETRYABLE, -1: ErrorClass.RETRYABLE, 1: ErrorClass.RETRYABLE, 2: ErrorClass.RETRYABLE,
    4: ErrorClass.RATE_LIMITED, 17: ErrorClass.RATE_LIMITED, 32: ErrorClass.RATE_LIMITED,
    341: ErrorClass.RATE_LIMITED, 613: ErrorClass.RATE_LIMITED, 80002: ErrorClass.RATE_LIMITED,
    9: ErrorClass.QUOTA, 368: ErrorClass.QUOTA,
    102: ErrorClass.AUTH, 104: ErrorClass.AUTH, 190: ErrorClass.AUTH,
    **{code: ErrorClass.AUTH for code in _PERMISSION_CODES},
}
_SUBCODE_IN_STATUS = re.compile(r"\b(2207\d{3})\b")
# Media insights by media product type (Meta's IG Media Insights reference): Graph refuses the
# whole call, code 100, when one metric is not given for the media's type, and a story has no
# likes, comments or saves. A type this list does not know is asked what a feed post is.
_INSIGHTS = {
    "FEED": "views,likes,comments,shares,saved",
    "REELS": "views,likes,comments,shares,saved",
    "STORY": "views,replies,shares",
}
STORY_INSIGHTS_SECONDS = 24 * 3600.0  # a story's insights are only given while it is live


def _lifetime_value(metric: dict[str, Any]) -> Any:
    values = metric.get("values") or [{}]
    return values[0].get("value") if isinstance(values[0], dict) else None


def classify(response: httpx.Response, body: Any) -> PlatformError:
    """A Graph API error reply, classified by code and subcode (platforms.md §2.4)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "code" not in error:
        return unexpected_response(response, "instagram")
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    label = f"{code}/{subcode}" if subcode is not None else str(code)
    message = " ".join(str(error[k]) for k in ("message", "error_user_msg") if error.get(k))
    error_class = _SUBCODE_CLASSES.get(subcode) if subcode is not None else None
    if error_class is None and (subcode is None or subcode not in range(2207000, 2208000)):
        error_class = _CODE_CLASSES.get(code)  # IG subcodes absent from the table are permanent
    if error_class is None:
        transient = error.get("is_transient") or response.status_code >= 500
        error_class = ErrorClass.RETRYABLE if transient else ErrorClass.PERMANENT
    retry_after = usage_wait(response) or retry_after_seconds(response)
    if error_class is ErrorClass.RATE_LIMITED and retry_after is None:
        retry_after = 60.0
    return PlatformError(error_class, label, message or label, retry_after)


def _id(body: dict[str, Any]) -> str:
    if not body.get("id"):
        raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", "instagram: reply without an id")
    return str(body["id"])


def _permission_refused(label: str) -> bool:
    return _int(label.split("/")[0]) in _PERMISSION_CODES


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def usage(response: httpx.Response) -> tuple[float, float] | None:
    """(highest usage %, minutes to regain access) from `X-Business-Use-Case-Usage` (§2.5)."""
    raw = response.headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        entries = [entry for group in orjson.loads(raw).values() for entry in group]
        percent = max((float(e.get(k) or 0) for e in entries
                       for k in ("call_count", "total_cputime", "total_time")), default=0.0)
        minutes = max((float(e.get("estimated_time_to_regain_access") or 0) for e in entries), default=0.0)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    return percent, minutes


def usage_wait(response: httpx.Response) -> float | None:
    """Seconds until access comes back, from the usage header (given in minutes)."""
    seen = usage(response)
    return seen[1] * 60 if seen and seen[1] else None


def _caption(request: PublishRequested) -> str:
    return caption_text(request.caption, request.hashtags)[:CAPTION_LIMIT]


class InstagramClient(PlatformClientBase):
    platform = Platform.INSTAGRAM

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 api_version: str = DEFAULT_API_VERSION, poll_interval: float = 1.0,
                 poll_max_interval: float = 10.0, poll_timeout: float = 30.0, recheck_after: float = 60.0,
                 media_policy: MediaPolicy | None = None, limits: EndpointLimits | None = None,
                 retry: RetryRules | None = None, read_publishing_limit: bool = True):
        super().__init__(http, base_url, media_policy=media_policy, limits=limits, retry=retry)
        self.api = f"{self.base_url}/{api_version}"
        self.poll_interval, self.poll_max_interval = poll_interval, max(poll_interval, poll_max_interval)
        self.poll_timeout = poll_timeout
        # a container not FINISHED within poll_timeout is looked at again this much later, in
        # another attempt (platforms.md §2.3: poll once per minute)
        self.recheck_after = recheck_after
        # False when the caller has just read it (the publishers' preflight feeds it to the ledger)
        self.read_publishing_limit = read_publishing_limit

    async def publish(self, request: PublishRequested, token: str,
                      journal: Journal | None = None) -> Accepted | Published:
        journal = journal or MemoryJournal()
        account = request.account_id
        with classified(token):
            checkpoint = await resume_point(journal, request)
            if checkpoint is not None and checkpoint.handle.kind == HANDLE_KIND:
                return await self._live(account, checkpoint.handle, token)  # published already
            specs = self._specs(request)
            container, status = await self._stored_container(account, checkpoint, token, journal)
            if status == "PUBLISHED":  # media_publish went through before; its answer never got stored
                media_id, published_at = await self._recover_media(account, container, token)
            else:
                # before creating or publishing anything: a post beyond the limit is deferred
                if self.read_publishing_limit:
                    await self._check_publishing_limit(account, token)
                if container is None or not container.id:
                    container = await self._new_container(container, specs, request, token, journal)
                try:
                    media_id, published_at = await self._publish(account, container, token)
                except PlatformError as error:
                    if _subcode(error) in _NEW_CONTAINER:  # §2.4: this one will not publish; the next try makes one
                        await journal.abandon(f"container refused: {error.code}")
                        error.handle = None
                    raise
            # the product type and the publish time tell the engagement read which insights
            # there are, and (a story's) until when: the queue collects a story's last figures
            # before they are gone
            product = _product_type(specs[-1])
            handle = RemoteHandle(kind=HANDLE_KIND, id=media_id, extra={
                "containerId": container.id, "igUserId": account,
                "productType": product, "publishedAt": published_at},
                figures_until=datetime.fromtimestamp(published_at + STORY_INSIGHTS_SECONDS, timezone.utc)
                if product == "STORY" else None)
            await journal.save(ACCEPTED, handle)
        return await self._live(account, handle, token)

    async def _live(self, account: str, handle: RemoteHandle, token: str) -> Accepted | Published:
        """A published media is live at once: reading its permalink here spares the queue and
        the poller a status round trip. Without one (no answer, none given) the poller asks."""
        try:
            with classified(token):
                permalink = await self._permalink(account, handle.id, token)
        except PlatformError as error:
            log.info("permalink of %s not read (%s): the poller will ask", handle.id, error.code)
            return Accepted(handle)
        return Published(handle, permalink) if permalink else Accepted(handle)

    async def _permalink(self, account: str, media_id: str, token: str) -> str | None:
        media = await self._get(account, f"/{media_id}", token, fields="permalink,media_product_type")
        permalink = media.get("permalink")
        return str(permalink) if permalink else None

    async def check_status(self, handle: RemoteHandle, token: str,
                           account_id: str | None = None) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        account = account_id or str(handle.extra.get("igUserId") or "")
        with classified(token):
            try:
                permalink = await with_retries(self.retry, lambda: self._permalink(account, handle.id, token))
            except PlatformError as error:
                if error.error_class is not ErrorClass.PERMANENT:
                    raise
                # media_publish gave this media id: the post went out, whatever its node says now
                # (removed since, or not readable with this grant)
                return StatusReport(ObservedState.PUBLISHED, detail=f"published; permalink unreadable: {error.code}")
            if not permalink:
                return StatusReport(ObservedState.PUBLISHED, detail="published; no permalink given")
            return StatusReport(ObservedState.PUBLISHED, url=permalink)

    async def fetch_engagement(self, handle: RemoteHandle, token: str, account_id: str,
                               url: str | None = None) -> EngagementFigures:
        """`GET /{media-id}/insights` with the metrics of the media's product type,
        `GET /{ig-user-id}?fields=followers_count`. A story's insights last 24 hours: a read
        after that fails for good, asking nothing."""
        require_kind(handle, HANDLE_KIND)
        account = handle.extra.get("igUserId")
        if not account:
            raise PlatformError(ErrorClass.PERMANENT, "unknown_handle", "the media handle has no igUserId")
        with classified(token), engagement_refusals("instagram", _permission_refused):
            product, published_at = await self._product_and_published_at(account_id, handle, token)
            if product == "STORY" and published_at is not None and not _live_story(published_at):
                raise _story_insights_gone(published_at)
            insights = await self._get(account_id, f"/{handle.id}/insights", token,
                                       metric=_INSIGHTS.get(product, _INSIGHTS["FEED"]), period="lifetime")
            values = {m.get("name"): _lifetime_value(m) for m in insights.get("data") or [] if isinstance(m, dict)}
            if product == "STORY" and all(v is None for v in values.values()):
                # Graph's empty data set means unavailable, not zero engagement: for good once
                # the story is (or may be) past its 24 hours, for now while it is live
                if not _live_story(published_at):
                    raise _story_insights_gone(published_at)
                raise PlatformError(ErrorClass.RETRYABLE, "insights_not_ready",
                                    f"instagram gave no insights for story {handle.id} yet")
            profile = await self._get(account_id, f"/{account}", token, fields="followers_count")
        return _figures(product, values, count(profile.get("followers_count")))

    async def _product_and_published_at(self, account: str, handle: RemoteHandle,
                                        token: str) -> tuple[str, float | None]:
        """The media's product type (FEED, REELS, STORY) and publish time: kept in the handle,
        or, for a handle stored before they were, read from the media (platforms.md §2.2)."""
        if product := handle.extra.get("productType"):
            return str(product), _float(handle.extra.get("publishedAt"))
        media = await self._get(account, f"/{handle.id}", token, fields="media_product_type,timestamp")
        published = _graph_timestamp(media.get("timestamp"))
        return str(media.get("media_product_type") or "FEED"), published or None

    # -- what to create ---------------------------------------------------------------------------------

    def _specs(self, request: PublishRequested) -> list[dict[str, str]]:
        """The containers to create, children first; the last one is published."""
        if not all(is_remote(m) for m in request.media):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_source",
                                "Instagram downloads media itself: it needs an http(s) URL")
        for media in request.media:
            check_url(str(media.url), self.media_policy)
        if len(request.media) == 1:
            return [self._single(request)]
        if request.content_type in (ContentType.STORY, ContentType.REEL):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_count",
                                f"an Instagram {request.content_type.value} takes one media")
        if len(request.media) not in CAROUSEL_SIZE:
            raise PlatformError(ErrorClass.PERMANENT, "100/2207028", "a carousel takes 2 to 10 media")
        children = []
        for media in request.media:  # carousel videos are VIDEO items, never reels
            if is_video(media, request.content_type):
                children.append({"media_type": "VIDEO", "video_url": str(media.url), "is_carousel_item": "true"})
            else:
                children.append({"image_url": str(media.url), "is_carousel_item": "true"})
        return [*children, {"media_type": "CAROUSEL", "caption": _caption(request)}]

    @staticmethod
    def _single(request: PublishRequested) -> dict[str, str]:
        url, video = str(request.media[0].url), check_kind(request, "instagram")
        params = {"video_url" if video else "image_url": url}
        if request.content_type is ContentType.STORY:
            params["media_type"] = "STORIES"  # stories take no caption
        else:
            if video:
                params["media_type"] = "REELS"  # single feed videos publish as reels since 2023
            params["caption"] = _caption(request)
        return params

    # -- containers --------------------------------------------------------------------------

    async def _stored_container(self, account: str, checkpoint: Checkpoint | None, token: str,
                                journal: Journal) -> tuple[RemoteHandle | None, str | None]:
        """The journalled container and its status when it can still be published (or already
        was); carousel children made so far come back with an empty id."""
        stored = checkpoint.handle if checkpoint is not None else None
        if stored is None:
            return None, None
        require_kind(stored, CONTAINER_HANDLE_KIND)
        if not stored.id:
            return stored, None
        status = await self._still_good(account, stored, token, journal)
        return (stored, status) if status is not None else (None, None)

    async def _new_container(self, stored: RemoteHandle | None, specs: list[dict[str, str]],
                             request: PublishRequested, token: str, journal: Journal) -> RemoteHandle:
        """Create the containers not made yet (children first), each journalled; wait until FINISHED."""
        account = request.account_id
        children = list(stored.extra.get("children", [])) if stored is not None else []
        handle = RemoteHandle(kind=CONTAINER_HANDLE_KIND, id="", extra={
            "igUserId": account, "children": children, "caption": specs[-1].get("caption", ""),
            "story": specs[-1].get("media_type") == "STORIES",
            "createdAt": time.time() if stored is None else stored.extra.get("createdAt", time.time())})
        for spec in specs[len(children):-1]:  # carousel children not made yet
            children.append(await self._create(account, spec, token))
            await journal.save(CREATED, handle)
        for child in children:
            await self._wait_finished(account, child, token, handle, journal)
        parent = dict(specs[-1])
        if children:
            parent["children"] = ",".join(children)
        handle = handle.model_copy(update={"id": await self._create(account, parent, token)})
        await journal.save(CREATED, handle)
        # an image is published as soon as it is made (§2.3: create → publish), so its status is
        # not read first: one request less a post; a refusal as not ready (2207027) still waits
        # for it. A video and a carousel are processed first.
        if "image_url" not in parent:
            await self._wait_finished(account, handle.id, token, handle, journal)
        return handle

    async def _still_good(self, account: str, stored: RemoteHandle, token: str, journal: Journal) -> str | None:
        """The stored container's status if it can still be published (or already was)."""
        try:
            status, detail = await self._container_status(account, stored.id, token)
        except PlatformError as error:
            if not _gone(error):
                raise
            await journal.abandon("container no longer exists")  # 24/2207008: make a new one
            return None
        if status in ("FINISHED", "PUBLISHED"):
            return status
        if status == "IN_PROGRESS":
            await self._wait_finished(account, stored.id, token, stored, journal)
            return "FINISHED"
        await journal.abandon(f"container {status}")
        if status == "ERROR":
            error = self._container_failed(status, detail)
            if error.error_class is not ErrorClass.RETRYABLE:
                raise error
        return None  # EXPIRED, or an ERROR that a new container may not repeat

    async def _create(self, account: str, params: dict[str, str], token: str) -> str:
        # safe to repeat: an unpublished container is never seen, and expires in 24 h
        created = await with_retries(self.retry, lambda: self._post(account, f"/{account}/media", token, params))
        return _id(created)

    async def _wait_finished(self, account: str, container_id: str, token: str, handle: RemoteHandle,
                             journal: Journal) -> None:
        """Poll until FINISHED, further apart each time, for at most `poll_timeout`."""
        deadline = time.monotonic() + self.poll_timeout
        interval = self.poll_interval
        while True:
            status, detail = await self._container_status(account, container_id, token)
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                await journal.abandon(f"container {container_id} {status}")
                raise self._container_failed(status, detail)
            if time.monotonic() + interval > deadline:
                # the publisher's slot (and its batch's results) is not held for a long reel:
                # the queue comes back, spending no attempt, and the next try resumes this container
                raise PlatformError(
                    ErrorClass.RETRYABLE, "container_not_ready",
                    f"container {container_id} not FINISHED after {self.poll_timeout:.0f}s",
                    self.recheck_after, handle=handle, pending=True)
            await self.retry.sleep(interval)
            interval = min(self.poll_max_interval, interval * 2)

    async def _status_unless_gone(self, account: str, container: RemoteHandle, token: str) -> tuple[str, str]:
        """The container's status between publish tries; one that is gone (expired, deleted)
        fails this attempt retryably: the next one finds it gone and makes a new container."""
        try:
            return await self._container_status(account, container.id, token)
        except PlatformError as error:
            if _gone(error):
                raise PlatformError(ErrorClass.RETRYABLE, "container_gone",
                                    f"container {container.id} no longer exists", handle=container) from None
            raise

    async def _container_status(self, account: str, container_id: str, token: str) -> tuple[str, str]:
        container = await with_retries(self.retry, lambda: self._get(
            account, f"/{container_id}", token, fields="status_code,status"))
        return str(container.get("status_code") or ""), str(container.get("status") or "")

    @staticmethod
    def _container_failed(status: str, detail: str) -> PlatformError:
        if status == "EXPIRED":  # a new container will do
            return PlatformError(ErrorClass.RETRYABLE, "container_expired", detail or "container expired")
        match = _SUBCODE_IN_STATUS.search(detail)
        subcode = int(match.group(1)) if match else None
        error_class = _SUBCODE_CLASSES.get(subcode, ErrorClass.PERMANENT) if subcode else ErrorClass.PERMANENT
        return PlatformError(error_class, f"ERROR/{subcode}" if subcode else "ERROR",
                             detail or "container processing failed")

    # -- publishing --------------------------------------------------------------------------

    async def publishing_limit(self, account: str, token: str) -> PublishingLimit | None:
        """The account's rolling-24 h publishing limit as Instagram counts it; None when it cannot
        be read, so an unreadable limit never blocks publishing (the ledger's count still
        applies). A call like any other: within the account's cap, its usage header noted."""
        try:
            return await self._read_publishing_limit(account, token)
        except PlatformError as error:
            log.info("content_publishing_limit of %s unreadable: %s", account, error.code)
            return None

    async def _check_publishing_limit(self, account: str, token: str) -> None:
        """Read the rolling-24 h publishing limit first: a post beyond it is deferred, not sent."""
        limit = await self._read_publishing_limit(account, token)
        if limit.used >= limit.total:
            raise PlatformError(ErrorClass.QUOTA, "content_publishing_limit",
                                f"{limit.used} of {limit.total} posts used in the last 24 hours", LIMIT_RETRY_SECONDS)

    async def _read_publishing_limit(self, account: str, token: str) -> PublishingLimit:
        reply = await with_retries(self.retry, lambda: self._get(
            account, f"/{account}/content_publishing_limit", token, fields="quota_usage,config"))
        entry = (reply.get("data") or [{}])[0]
        config = entry.get("config") or {}
        return PublishingLimit(used=_int(entry.get("quota_usage")) or 0,
                               total=_int(config.get("quota_total")) or DEFAULT_PUBLISHING_LIMIT,
                               window_seconds=_int(config.get("quota_duration")) or 86400)

    async def _publish(self, account: str, container: RemoteHandle, token: str) -> tuple[str, float]:
        """media_publish the container: the media id and when it went out. Unanswered or
        refused as not ready: look at the container and publish it again only while it is
        FINISHED (it publishes once)."""
        deadline = time.monotonic() + self.poll_timeout
        tries = 0
        while True:
            tries += 1
            status, detail = (await self._status_unless_gone(account, container, token)) if tries > 1 else ("", "")
            if status == "PUBLISHED":
                return await self._recover_media(account, container, token)
            if status in ("ERROR", "EXPIRED"):  # it will never publish: the next attempt makes a new one
                error = self._container_failed(status, detail)
                error.handle = container
                raise error
            try:
                published = await self._post(account, f"/{account}/media_publish", token,
                                             {"creation_id": container.id})
                return _id(published), time.time()
            except PlatformError as error:
                not_ready = error.code.endswith("/2207027")
                if not_ready and time.monotonic() < deadline:
                    await self.retry.sleep(self.poll_interval)
                    continue
                if tries >= self.retry.attempts or not (repeatable(error, self.retry) or error.maybe_processed):
                    error.handle = container
                    raise
                await self.retry.sleep(error.retry_after if error.retry_after is not None
                                       else self.retry.delay(tries))

    async def _recover_media(self, account: str, container: RemoteHandle, token: str) -> tuple[str, float]:
        """The container was published but its media id never reached us: find the media by
        its caption among the account's newest media (§2.7); with it, when it went out."""
        caption = container.extra.get("caption") or ""
        stories = container.extra.get("story", not caption)  # a handle stored before "story" was kept
        edge = "stories" if stories else "media"
        listing = await with_retries(self.retry, lambda: self._get(
            account, f"/{account}/{edge}", token, fields="id,timestamp,caption"))
        since = float(container.extra.get("createdAt") or 0) - 60
        for media in listing.get("data") or []:
            published_at = _graph_timestamp(media.get("timestamp"))
            if published_at < since:
                continue
            if stories or (media.get("caption") or "") == caption:  # no caption: Graph gives none
                return _id(media), published_at or time.time()
        raise PlatformError(ErrorClass.RETRYABLE, "published_media_unknown",
                            f"container {container.id} is published but its media is not listed yet",
                            handle=container)

    # -- plumbing ----------------------------------------------------------------------------

    async def _get(self, account: str, path: str, token: str, **params: str) -> dict[str, Any]:
        return await self._call(account, "GET", path, token, params=params)

    async def _post(self, account: str, path: str, token: str, form: dict[str, str]) -> dict[str, Any]:
        # form body rather than query string: captions and URLs stay out of access logs
        return await self._call(account, "POST", path, token, data=form)

    async def _call(self, account: str, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        if paused := self.limits.paused_for(account):
            raise PlatformError(ErrorClass.RATE_LIMITED, "usage_limit",
                                "the account's Business Use Case usage reached 100%", paused)
        endpoint = path.rsplit("/", 1)[-1] if path.count("/") > 1 else "node"
        async with self.limits.slot(account, endpoint):
            response = await send(self.http, method, self.api + path, headers=bearer(token), **kwargs)
        self._note_usage(account, response)
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            raise classify(response, body)
        return body

    def _note_usage(self, account: str, response: httpx.Response) -> None:
        """Stop calling for this account when its usage reaches 100 % (§2.5)."""
        seen = usage(response)
        if seen is not None and seen[0] >= 100:
            self.limits.pause(account, seen[1] * 60 if seen[1] else 60.0)


def _subcode(error: PlatformError) -> int | None:
    """The Graph subcode of a classified error (its code is "code/subcode")."""
    _, _, subcode = error.code.partition("/")
    return _int(subcode) if subcode else None


def _gone(error: PlatformError) -> bool:
    """Graph's code 100 on a container's node: it no longer exists."""
    return error.code.partition("/")[0] == "100"  # not 1000-odd codes, nor 10 (permissions)


def _graph_timestamp(value: Any) -> float:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _product_type(spec: dict[str, str]) -> str:
    """The media_product_type of what the container publishes."""
    return {"STORIES": "STORY", "REELS": "REELS"}.get(spec.get("media_type", ""), "FEED")


def _live_story(published_at: float | None) -> bool:
    """Whether a story's insights are still given: known to be under 24 hours old."""
    return published_at is not None and time.time() - published_at < STORY_INSIGHTS_SECONDS


def _story_insights_gone(published_at: float | None) -> PlatformError:
    """A story past its 24 hours (or of unknown age, given nothing): Graph keeps no insights of
    it, now or later."""
    if published_at is None:
        age = "this story's age is unknown and Graph gave none"
    else:
        age = f"this story is {(time.time() - published_at) / 3600:.0f} h old"
    return PlatformError(ErrorClass.PERMANENT, "engagement_not_available",
                         f"instagram gives a story's insights for 24 hours only; {age}")


def _figures(product: str, values: dict[Any, Any], audience: int | None) -> EngagementFigures:
    if product == "STORY":
        # A story has no likes, comments or saves in Graph. views: times it was seen; comments:
        # its direct replies, a story's only conversation (Meta counts none from Europe and
        # Japan); shares: shares; likes and saves stay unknown, never 0
        return EngagementFigures(views=count(values.get("views")), comments=count(values.get("replies")),
                                 shares=count(values.get("shares")), audience_size=audience)
    return EngagementFigures(
        views=count(values.get("views")), likes=count(values.get("likes")),
        comments=count(values.get("comments")), shares=count(values.get("shares")),
        saves=count(values.get("saved")), audience_size=audience)

