"""Instagram Graph API client: container → wait until FINISHED → media_publish (image, reel, story)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import orjson

from contracts import ContentType, ErrorClass, ObservedState, Platform, PublishRequested, RemoteHandle

from ._base import (
    Accepted,
    PlatformError,
    StatusReport,
    bearer,
    caption_text,
    classified,
    json_body,
    require_kind,
    retry_after_seconds,
    unexpected_response,
)
from ._media import check_kind, is_remote

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v25.0"
HANDLE_KIND = "instagram.media"
CONTAINER_HANDLE_KIND = "instagram.container"

# platforms.md §2.4: the subcode says most; "new container" cases retry (a retry makes one)
_SUBCODE_CLASSES = {
    2207001: ErrorClass.RETRYABLE, 2207003: ErrorClass.RETRYABLE, 2207006: ErrorClass.RETRYABLE,
    2207008: ErrorClass.RETRYABLE, 2207020: ErrorClass.RETRYABLE, 2207027: ErrorClass.RETRYABLE,
    2207032: ErrorClass.RETRYABLE, 2207053: ErrorClass.RETRYABLE,
    2207042: ErrorClass.QUOTA,
}
_CODE_CLASSES = {
    -2: ErrorClass.RETRYABLE, -1: ErrorClass.RETRYABLE, 1: ErrorClass.RETRYABLE, 2: ErrorClass.RETRYABLE,
    4: ErrorClass.RATE_LIMITED, 17: ErrorClass.RATE_LIMITED, 32: ErrorClass.RATE_LIMITED,
    341: ErrorClass.RATE_LIMITED, 613: ErrorClass.RATE_LIMITED, 80002: ErrorClass.RATE_LIMITED,
    9: ErrorClass.QUOTA, 368: ErrorClass.QUOTA,
    10: ErrorClass.AUTH, 102: ErrorClass.AUTH, 104: ErrorClass.AUTH, 190: ErrorClass.AUTH,
    **{code: ErrorClass.AUTH for code in range(200, 300)},
}
_SUBCODE_IN_STATUS = re.compile(r"\b(2207\d{3})\b")


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
    retry_after = _usage_wait(response) or retry_after_seconds(response)
    if error_class is ErrorClass.RATE_LIMITED and retry_after is None:
        retry_after = 60.0
    return PlatformError(error_class, label, message or label, retry_after)


def _id(body: dict[str, Any]) -> str:
    if not body.get("id"):
        raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", "instagram: reply without an id")
    return str(body["id"])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _usage_wait(response: httpx.Response) -> float | None:
    """Seconds until access comes back, from `X-Business-Use-Case-Usage` (given in minutes)."""
    raw = response.headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = orjson.loads(raw)
        minutes = [float(entry.get("estimated_time_to_regain_access") or 0)
                   for entries in usage.values() for entry in entries]
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    return max(minutes, default=0.0) * 60 or None


class InstagramClient:
    platform = Platform.INSTAGRAM

    def __init__(self, http: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL, *,
                 api_version: str = DEFAULT_API_VERSION, poll_interval: float = 0.2,
                 poll_timeout: float = 30.0):
        self.http = http
        self.api = f"{base_url.rstrip('/')}/{api_version}"
        self.poll_interval, self.poll_timeout = poll_interval, poll_timeout

    async def publish(self, request: PublishRequested, token: str) -> Accepted:
        account = request.account_id
        with classified(token):
            container_id = await self._create_container(request, token)
            media_id = await self._publish_when_ready(account, container_id, token)
            return Accepted(RemoteHandle(kind=HANDLE_KIND, id=media_id,
                                         extra={"containerId": container_id, "igUserId": account}))

    async def check_status(self, handle: RemoteHandle, token: str) -> StatusReport:
        require_kind(handle, HANDLE_KIND)
        with classified(token):
            media = await self._get(f"/{handle.id}", token, fields="permalink,media_product_type")
            permalink = media.get("permalink")
            if not permalink:
                return StatusReport(ObservedState.PUBLISHED, detail="published; no permalink given")
            return StatusReport(ObservedState.PUBLISHED, url=str(permalink))

    # -- flow --------------------------------------------------------------------------------

    async def _create_container(self, request: PublishRequested, token: str) -> str:
        media = request.media[0]  # carousels (several media) are not built yet
        if not is_remote(media):
            raise PlatformError(ErrorClass.PERMANENT, "unsupported_media_source",
                                "Instagram downloads media itself: it needs an http(s) URL")
        url, video = str(media.url), check_kind(request, "instagram")
        params = {"video_url" if video else "image_url": url}
        if request.content_type is ContentType.STORY:
            params["media_type"] = "STORIES"  # stories take no caption
        elif video:
            params["media_type"] = "REELS"  # single feed videos publish as reels since 2023
        if request.content_type is not ContentType.STORY:
            params["caption"] = caption_text(request.caption, request.hashtags)
        created = await self._post(f"/{request.account_id}/media", token, params)
        return _id(created)

    async def _publish_when_ready(self, account: str, container_id: str, token: str) -> str:
        """Poll the container until FINISHED (bounded), then media_publish it."""
        deadline = time.monotonic() + self.poll_timeout
        while True:
            container = await self._get(f"/{container_id}", token, fields="status_code,status")
            status = container.get("status_code")
            if status == "FINISHED":
                try:
                    published = await self._post(f"/{account}/media_publish", token,
                                                 {"creation_id": container_id})
                    return _id(published)
                except PlatformError as error:
                    if not error.code.endswith("/2207027"):  # not ready after all: keep waiting
                        raise
            elif status in ("ERROR", "EXPIRED", "PUBLISHED"):
                raise self._container_failed(status, str(container.get("status") or ""))
            if time.monotonic() >= deadline:
                raise PlatformError(
                    ErrorClass.RETRYABLE, "container_not_ready",
                    f"container {container_id} not FINISHED after {self.poll_timeout:.0f}s",
                    handle=RemoteHandle(kind=CONTAINER_HANDLE_KIND, id=container_id,
                                        extra={"igUserId": account}))
            await asyncio.sleep(self.poll_interval)

    @staticmethod
    def _container_failed(status: str, detail: str) -> PlatformError:
        if status == "EXPIRED":  # a new container will do
            return PlatformError(ErrorClass.RETRYABLE, "container_expired", detail or "container expired")
        if status == "PUBLISHED":
            return PlatformError(ErrorClass.PERMANENT, "container_published",
                                 "the container was already published")
        match = _SUBCODE_IN_STATUS.search(detail)
        subcode = int(match.group(1)) if match else None
        error_class = _SUBCODE_CLASSES.get(subcode, ErrorClass.PERMANENT) if subcode else ErrorClass.PERMANENT
        return PlatformError(error_class, f"ERROR/{subcode}" if subcode else "ERROR",
                             detail or "container processing failed")

    # -- plumbing ----------------------------------------------------------------------------

    async def _get(self, path: str, token: str, **params: str) -> dict[str, Any]:
        response = await self.http.get(self.api + path, params=params, headers=bearer(token))
        return self._ok(response)

    async def _post(self, path: str, token: str, form: dict[str, str]) -> dict[str, Any]:
        # form body rather than query string: captions and URLs stay out of access logs
        response = await self.http.post(self.api + path, data=form, headers=bearer(token))
        return self._ok(response)

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            raise classify(response, body)
        return body
