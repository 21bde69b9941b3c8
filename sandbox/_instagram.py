"""Fake Instagram Graph API content publishing (platforms.md §2): image, reel, story and carousel
containers, the rolling-24 h publishing limit (50) and container cap (400), usage headers."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._http import account_for, bearer_token, json_response, read_params
from ._store import Faults, PublishedLog, SandboxSettings, Window, now, numeric_id

CONTAINER_TTL = 24 * 3600
QUOTA_WINDOW = 24 * 3600
USAGE_WINDOW = 3600
_VERSION = re.compile(r"^v\d+\.\d+$")
_SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass
class Container:
    id: str
    account_id: str
    media_type: str  # IMAGE | VIDEO (carousel items) | REELS | STORIES | CAROUSEL
    is_video: bool
    caption: str
    created_at: float
    media_id: str | None = None
    url: str = ""
    carousel_item: bool = False
    children: list[str] = field(default_factory=list)
    error_subcode: int | None = None  # set: processing ends in ERROR with this subcode


@dataclass
class Media:
    id: str
    account_id: str
    container_id: str
    media_type: str  # IMAGE | VIDEO | CAROUSEL_ALBUM
    product_type: str  # FEED | REELS | STORY
    caption: str
    published_at: float

    @property
    def shortcode(self) -> str:
        number, code = int(self.id), ""
        while number:
            number, digit = divmod(number, 64)
            code = _SHORTCODE_ALPHABET[digit] + code
        return code

    @property
    def permalink(self) -> str:
        if self.product_type == "STORY":
            return f"https://www.instagram.com/stories/{self.account_id}/{self.id}/"
        kind = "reel" if self.product_type == "REELS" else "p"
        return f"https://www.instagram.com/{kind}/{self.shortcode}/"


@dataclass
class InstagramStore:
    containers: dict[str, Container] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)
    media_by_account: dict[str, list[str]] = field(default_factory=dict)
    published: Window = field(default_factory=lambda: Window(QUOTA_WINDOW))  # account: posts
    created: Window = field(default_factory=lambda: Window(QUOTA_WINDOW))  # account: containers
    calls: Window = field(default_factory=lambda: Window(USAGE_WINDOW))  # account: Graph calls
    faults: Faults = field(default_factory=Faults)

    def quota_usage(self, account_id: str) -> int:
        return self.published.count(account_id)

    def reset(self) -> None:
        self.containers.clear()
        self.media.clear()
        self.media_by_account.clear()
        self.published.clear()
        self.created.clear()
        self.calls.clear()


def graph_error(status: int, code: int, message: str, subcode: int | None = None,
                user_title: str | None = None, user_msg: str | None = None,
                transient: bool = False) -> Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "is_transient": transient, "fbtrace_id": secrets.token_urlsafe(9)}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_title:
        error["error_user_title"] = user_title
    if user_msg:
        error["error_user_msg"] = user_msg
    return json_response({"error": error}, status)


def _graph_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


class InstagramApi:
    def __init__(self, store: InstagramStore, log: PublishedLog, settings: SandboxSettings,
                 accounts: Callable[[str], dict[str, Any] | None] | None = None):
        self.store, self.log, self.settings = store, log, settings
        self.accounts = accounts  # fields of account nodes (see _engagement.py)

    def routes(self) -> list[Route]:
        return [
            Route("/{version}/{node_id}/media", self.media_edge, methods=["GET", "POST"]),
            Route("/{version}/{node_id}/stories", self.stories_edge, methods=["GET"]),
            Route("/{version}/{node_id}/media_publish", self.media_publish, methods=["POST"]),
            Route("/{version}/{node_id}/content_publishing_limit", self.publishing_limit,
                  methods=["GET"]),
            Route("/{version}/{node_id}", self.node, methods=["GET"]),
        ]

    # -- endpoints ---------------------------------------------------------------------------

    async def media_edge(self, request: Request) -> Response:
        params, problem = await self._enter(f"media.{request.method.lower()}", request)
        if problem:
            return problem
        account = request.path_params["node_id"]
        if request.method == "GET":
            return self._listing(request, account, params, stories=False)
        return self._usage(request, self._create_container(account, params, request))

    async def stories_edge(self, request: Request) -> Response:
        params, problem = await self._enter("stories", request)
        if problem:
            return problem
        return self._listing(request, request.path_params["node_id"], params, stories=True)

    def _listing(self, request: Request, account: str, params: dict[str, str], stories: bool) -> Response:
        ids = [i for i in self.store.media_by_account.get(account, [])
               if (self.store.media[i].product_type == "STORY") == stories][-25:][::-1]  # newest first
        fields = _fields(params, {"id"}) | {"id"}
        return self._usage(request, json_response(
            {"data": [_select(self._media_fields(self.store.media[i]), fields) for i in ids]}))

    async def media_publish(self, request: Request) -> Response:
        params, problem = await self._enter("media_publish", request)
        if problem:
            return problem
        return self._usage(request, self._media_publish(request.path_params["node_id"], params))

    def _media_publish(self, account: str, params: dict[str, str]) -> Response:
        creation_id = params.get("creation_id", "")
        if not creation_id:
            return graph_error(400, 100, "(#100) The parameter creation_id is required")
        container = self.store.containers.get(creation_id)
        if container is None or container.account_id != account:
            return graph_error(400, 24, "The media builder with the given ID does not exist or has expired",
                               2207008, "Media builder expired", "Please try to create a new container.")
        if container.carousel_item:
            return graph_error(400, 100, "(#100) A carousel item is published through its carousel")
        status = self._container_status(container)
        if status == "EXPIRED":
            return graph_error(400, -2, "The media has expired", 2207020, "Media expired",
                               "The media you are trying to access has expired. Please create a new container.")
        if status == "IN_PROGRESS":
            return graph_error(400, 9007, "Media ID is not available", 2207027, "Media not ready",
                               "The media is not ready for publishing, please wait for a moment")
        if status == "ERROR":
            return graph_error(400, -1, "The media could not be processed", container.error_subcode,
                               "Media processing failed", "Please create a new container.")
        if status == "PUBLISHED":
            # undocumented on Instagram (platforms.md §2.7); refusing keeps one post per container
            return graph_error(400, 100, "(#100) The container has already been published")
        if (self.settings.daily_quotas
                and not self.store.published.count(account) < self.settings.instagram_publish_limit):
            return graph_error(400, 9, "Application request limit reached", 2207042,
                               "Publishing limit reached",
                               "The account has reached its limit of published posts for the last 24 hours.")
        media = self._publish(container)
        return json_response({"id": media.id})

    async def publishing_limit(self, request: Request) -> Response:
        params, problem = await self._enter("content_publishing_limit", request)
        if problem:
            return problem
        usage = self.store.quota_usage(request.path_params["node_id"])
        entry = {"quota_usage": usage, "config": {"quota_total": self.settings.instagram_publish_limit,
                                                  "quota_duration": QUOTA_WINDOW}}
        return self._usage(request, json_response({"data": [_select(entry, _fields(params, set(entry)))]}))

    async def node(self, request: Request) -> Response:
        params, problem = await self._enter("node", request)
        if problem:
            return problem
        return self._usage(request, self._node(request.path_params["node_id"], params))

    def _node(self, node_id: str, params: dict[str, str]) -> Response:
        if container := self.store.containers.get(node_id):
            status = self._container_status(container)
            text = _STATUS_TEXT.get(status) or (
                f"Error: Media upload has failed with error code {container.error_subcode}")
            known = {"id": container.id, "status_code": status, "status": text}
        elif media := self.store.media.get(node_id):
            known = self._media_fields(media)
        elif self.accounts is not None and (account := self.accounts(node_id)) is not None:
            known = account
        else:
            return graph_error(400, 100, f"Unsupported get request. Object with ID '{node_id}' does not "
                               "exist, cannot be loaded due to missing permissions, or does not support "
                               "this operation.", 33)
        fields = _fields(params, {"id"}) | {"id"}  # Graph always returns the id
        if unknown := fields - known.keys():
            return graph_error(400, 100, f"(#100) Tried accessing nonexisting field ({sorted(unknown)[0]})")
        return json_response(_select(known, fields))

    # -- limits ------------------------------------------------------------------------------

    async def _enter(self, operation: str, request: Request) -> tuple[dict[str, str], Response | None]:
        """Params, after faults, the token check and the account's usage (BUC) budget."""
        token = bearer_token(request) or request.query_params.get("access_token")
        account = account_for(token) if token else None
        if fault := await self.store.faults.before(f"instagram.{operation}", request, account):
            return {}, fault
        params, problem = await _authorized(request)
        if problem:
            return params, problem
        if self.settings.rate_limits and account is not None:
            if self._usage_percent(account) >= 100:
                return params, self._usage(request, graph_error(
                    400, 80002, "There have been too many calls to this Instagram account. "
                    "Wait a bit and try again."))
            self.store.calls.add(account)
        return params, None

    def _usage_percent(self, account: str) -> float:
        return 100.0 * self.store.calls.count(account) / max(1, self.settings.instagram_calls_per_hour)

    def _usage(self, request: Request, response: Response) -> Response:
        """`X-Business-Use-Case-Usage` on every answer: the account's share of its budget (§2.5)."""
        if not self.settings.rate_limits:
            return response
        token = bearer_token(request) or request.query_params.get("access_token")
        if not token:
            return response
        account = account_for(token)
        percent = round(self._usage_percent(account))
        wait = self.store.calls.seconds_until_free(account) if percent >= 100 else 0.0
        response.headers["X-Business-Use-Case-Usage"] = orjson.dumps({account: [{
            "type": "instagram", "call_count": percent, "total_cputime": min(percent, 100) // 4,
            "total_time": min(percent, 100) // 4, "estimated_time_to_regain_access": round(wait / 60, 3),
        }]}).decode()
        return response

    # -- state -------------------------------------------------------------------------------

    def _create_container(self, account: str, params: dict[str, str], request: Request) -> Response:
        media_type = params.get("media_type") or "IMAGE"
        image_url, video_url = params.get("image_url"), params.get("video_url")
        carousel_item = params.get("is_carousel_item") == "true"
        if media_type not in {"IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"} or (
                media_type == "VIDEO" and not carousel_item):
            # a standalone VIDEO is gone since reels; VIDEO remains for carousel items
            return graph_error(400, 100, "The media type entered is not supported", 2207023,
                               "Unknown media type", "The media type entered is not supported.")
        if carousel_item and media_type not in {"IMAGE", "VIDEO"}:
            return graph_error(400, 100, "(#100) Only images and videos can be carousel items")
        if self.settings.daily_quotas and self.store.created.count(account) >= self.settings.instagram_container_limit:
            return graph_error(400, 9, "(#9) The account created too many containers in the last 24 hours")
        caption = params.get("caption", "")
        if len(caption) > 2200:
            return graph_error(400, 36004, "The caption is too long", 2207010, "Caption too long",
                               "The caption exceeds the maximum length of 2200 characters.")
        if media_type == "CAROUSEL":
            return self._create_carousel(account, params, caption)
        if media_type == "IMAGE" and not image_url:
            return graph_error(400, 100, "(#100) The parameter image_url is required")
        if media_type in ("REELS", "VIDEO") and not video_url:
            return graph_error(400, 100, "(#100) The parameter video_url is required")
        if media_type == "STORIES" and not (image_url or video_url):
            return graph_error(400, 100, "(#100) The parameter image_url or video_url is required")
        url = video_url if media_type != "IMAGE" and video_url else image_url
        if not str(url).startswith(("http://", "https://")):
            return graph_error(400, 9004, "Only photo or video can be accepted as media type.", 2207052,
                               "Media download failed", "The media could not be fetched from the URI.")
        failure = getattr(request.state, "processing_failure", None)
        container = Container(
            id=numeric_id("178", 14, self.store.containers), account_id=account, media_type=media_type,
            is_video=url == video_url, caption=caption, created_at=now(), url=str(url),
            carousel_item=carousel_item,
            error_subcode=(int(failure) if isinstance(failure, str) and failure.isdigit() else 2207053)
            if failure else None,
        )
        return self._store(container)

    def _create_carousel(self, account: str, params: dict[str, str], caption: str) -> Response:
        ids = [i.strip() for i in params.get("children", "").split(",") if i.strip()]
        if not 2 <= len(ids) <= 10:
            return graph_error(400, 100, "The carousel must have between 2 and 10 items", 2207028,
                               "Carousel size", "Carousels need 2 to 10 photos or videos.")
        children = [self.store.containers.get(i) for i in ids]
        if any(c is None or c.account_id != account or not c.carousel_item for c in children):
            return graph_error(400, 100, "(#100) Every child must be a carousel item of this account")
        if any(self._container_status(c) != "FINISHED" for c in children):
            return graph_error(400, 9007, "Media ID is not available", 2207027, "Media not ready",
                               "A carousel item is not ready yet")
        container = Container(
            id=numeric_id("178", 14, self.store.containers), account_id=account, media_type="CAROUSEL",
            is_video=False, caption=caption, created_at=now(), children=ids,
            url=" ".join(c.url for c in children),
        )
        return self._store(container)

    def _store(self, container: Container) -> Response:
        self.store.containers[container.id] = container
        self.store.created.add(container.account_id)
        return json_response({"id": container.id})

    def _container_status(self, container: Container) -> str:
        if container.media_id:
            return "PUBLISHED"
        age = now() - container.created_at
        if age > CONTAINER_TTL:
            return "EXPIRED"
        processed = container.is_video or container.error_subcode
        if age < (self.settings.processing_seconds if processed else self.settings.instagram_image_seconds):
            return "IN_PROGRESS"
        if container.error_subcode:
            return "ERROR"
        return "FINISHED"

    def _publish(self, container: Container) -> Media:
        product = {"IMAGE": "FEED", "CAROUSEL": "FEED", "REELS": "REELS", "STORIES": "STORY"}[container.media_type]
        kind = "CAROUSEL_ALBUM" if container.media_type == "CAROUSEL" else "VIDEO" if container.is_video else "IMAGE"
        media = Media(
            id=numeric_id("179", 14, self.store.media), account_id=container.account_id,
            container_id=container.id, media_type=kind,
            product_type=product, caption=container.caption, published_at=now(),
        )
        container.media_id = media.id
        self.store.media[media.id] = media
        self.store.media_by_account.setdefault(media.account_id, []).append(media.id)
        self.store.published.add(media.account_id, media.published_at)
        self.log.add("instagram", media.account_id, media.id, media.permalink, media.caption,
                     media.published_at, None, container.url)
        return media

    @staticmethod
    def _media_fields(media: Media) -> dict[str, Any]:
        return {
            "id": media.id, "permalink": media.permalink, "media_type": media.media_type,
            "media_product_type": media.product_type, "caption": media.caption,
            "shortcode": media.shortcode, "timestamp": _graph_time(media.published_at),
            "username": media.account_id,
        }


_STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "EXPIRED": "Expired: Media was not published within 24 hours.",
}


def fault_response(kind: str, rule: Any) -> Response:
    """A fault in the Graph API's envelope and codes (§2.4)."""
    if kind == "rate_limit":
        response = graph_error(400, 4, "(#4) Application request limit reached", transient=True)
        response.headers["X-Business-Use-Case-Usage"] = orjson.dumps({"sandbox": [{
            "type": "instagram", "call_count": 100, "total_cputime": 10, "total_time": 10,
            "estimated_time_to_regain_access": round(rule.wait_seconds / 60, 4)}]}).decode()
        return response
    if kind == "server_error":
        return graph_error(500, 2, "An unexpected error has occurred. Please retry your request later.",
                           transient=True)
    if kind == "auth_expired":
        return graph_error(400, 190, "Error validating access token: Session has expired.", 463)
    if kind == "quota":
        return graph_error(400, 9, "Application request limit reached", 2207042, "Publishing limit reached",
                           "The account has reached its limit of published posts for the last 24 hours.")
    raise ValueError(kind)


async def _authorized(request: Request) -> tuple[dict[str, str], Response | None]:
    """Params, or a Graph error: unknown version, or no token as Bearer or `access_token`."""
    if not _VERSION.match(request.path_params["version"]):
        return {}, graph_error(400, 2500, "Unknown path components: "
                               f"/{request.path_params['version']}")
    params = await read_params(request)
    token = bearer_token(request) or params.pop("access_token", None)
    if not token:
        return params, no_token()
    return params, None


def no_token() -> Response:
    """The Graph API's answer to a call with no access token, as Bearer or `access_token`."""
    return graph_error(401, 190, "An active access token must be used to query "
                       "information about the current user.")


def _fields(params: dict[str, str], default: set[str]) -> set[str]:
    """The `fields` asked for, or the edge's default set."""
    fields = {f.strip() for f in params.get("fields", "").split(",") if f.strip()}
    return fields or default


def _select(known: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in known.items() if k in fields}
