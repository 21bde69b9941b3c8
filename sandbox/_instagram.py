"""Fake Instagram Graph API content publishing (platforms.md §2): image, reel and story containers."""

from __future__ import annotations

import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._http import bearer_token, json_response, read_params
from ._store import Faults, PublishedLog, SandboxSettings, now, numeric_id

CONTAINER_TTL = 24 * 3600
QUOTA_TOTAL = 50  # reported by content_publishing_limit; not enforced yet
QUOTA_WINDOW = 24 * 3600
_VERSION = re.compile(r"^v\d+\.\d+$")
_SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass
class Container:
    id: str
    account_id: str
    media_type: str  # IMAGE | REELS | STORIES
    is_video: bool
    caption: str
    created_at: float
    media_id: str | None = None


@dataclass
class Media:
    id: str
    account_id: str
    container_id: str
    media_type: str  # IMAGE | VIDEO
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
    publish_times: dict[str, deque[float]] = field(default_factory=dict)  # rolling 24 h usage
    faults: Faults = field(default_factory=Faults)

    def quota_usage(self, account_id: str) -> int:
        times = self.publish_times.get(account_id)
        if not times:
            return 0
        while times and times[0] <= now() - QUOTA_WINDOW:
            times.popleft()
        return len(times)

    def reset(self) -> None:
        self.containers.clear()
        self.media.clear()
        self.media_by_account.clear()
        self.publish_times.clear()


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
    def __init__(self, store: InstagramStore, log: PublishedLog, settings: SandboxSettings):
        self.store, self.log, self.settings = store, log, settings

    def routes(self) -> list[Route]:
        return [
            Route("/{version}/{node_id}/media", self.media_edge, methods=["GET", "POST"]),
            Route("/{version}/{node_id}/media_publish", self.media_publish, methods=["POST"]),
            Route("/{version}/{node_id}/content_publishing_limit", self.publishing_limit,
                  methods=["GET"]),
            Route("/{version}/{node_id}", self.node, methods=["GET"]),
        ]

    # -- endpoints ---------------------------------------------------------------------------

    async def media_edge(self, request: Request) -> Response:
        if fault := self.store.faults.before(f"instagram.media.{request.method.lower()}", request):
            return fault
        params, problem = await _authorized(request)
        if problem:
            return problem
        account = request.path_params["node_id"]
        if request.method == "GET":
            ids = self.store.media_by_account.get(account, [])[-25:][::-1]  # newest first
            fields = _fields(params, {"id"}) | {"id"}
            return json_response({"data": [_select(self._media_fields(self.store.media[i]), fields)
                                           for i in ids]})
        return self._create_container(account, params)

    async def media_publish(self, request: Request) -> Response:
        if fault := self.store.faults.before("instagram.media_publish", request):
            return fault
        params, problem = await _authorized(request)
        if problem:
            return problem
        account = request.path_params["node_id"]
        creation_id = params.get("creation_id", "")
        if not creation_id:
            return graph_error(400, 100, "(#100) The parameter creation_id is required")
        container = self.store.containers.get(creation_id)
        if container is None or container.account_id != account:
            return graph_error(400, 24, "The media builder with the given ID does not exist or has expired",
                               2207008, "Media builder expired", "Please try to create a new container.")
        status = self._container_status(container)
        if status == "EXPIRED":
            return graph_error(400, -2, "The media has expired", 2207020, "Media expired",
                               "The media you are trying to access has expired. Please create a new container.")
        if status == "IN_PROGRESS":
            return graph_error(400, 9007, "Media ID is not available", 2207027, "Media not ready",
                               "The media is not ready for publishing, please wait for a moment")
        if status == "PUBLISHED":
            # undocumented on Instagram (platforms.md §2.7); refusing keeps one post per container
            return graph_error(400, 100, "(#100) The container has already been published")
        media = self._publish(container)
        return json_response({"id": media.id})

    async def publishing_limit(self, request: Request) -> Response:
        if fault := self.store.faults.before("instagram.content_publishing_limit", request):
            return fault
        params, problem = await _authorized(request)
        if problem:
            return problem
        usage = self.store.quota_usage(request.path_params["node_id"])
        entry = {"quota_usage": usage, "config": {"quota_total": QUOTA_TOTAL, "quota_duration": QUOTA_WINDOW}}
        return json_response({"data": [_select(entry, _fields(params, set(entry)))]})

    async def node(self, request: Request) -> Response:
        if fault := self.store.faults.before("instagram.node", request):
            return fault
        params, problem = await _authorized(request)
        if problem:
            return problem
        node_id = request.path_params["node_id"]
        if container := self.store.containers.get(node_id):
            status = self._container_status(container)
            known = {"id": container.id, "status_code": status, "status": _STATUS_TEXT[status]}
        elif media := self.store.media.get(node_id):
            known = self._media_fields(media)
        else:
            return graph_error(400, 100, f"Unsupported get request. Object with ID '{node_id}' does not "
                               "exist, cannot be loaded due to missing permissions, or does not support "
                               "this operation.", 33)
        fields = _fields(params, {"id"}) | {"id"}  # Graph always returns the id
        if unknown := fields - known.keys():
            return graph_error(400, 100, f"(#100) Tried accessing nonexisting field ({sorted(unknown)[0]})")
        return json_response(_select(known, fields))

    # -- state -------------------------------------------------------------------------------

    def _create_container(self, account: str, params: dict[str, str]) -> Response:
        media_type = params.get("media_type") or "IMAGE"
        image_url, video_url = params.get("image_url"), params.get("video_url")
        if media_type not in {"IMAGE", "REELS", "STORIES"}:
            # CAROUSEL and VIDEO children are not faked yet; standalone VIDEO is gone since reels
            return graph_error(400, 100, "The media type entered is not supported", 2207023,
                               "Unknown media type", "The media type entered is not supported.")
        if media_type == "IMAGE" and not image_url:
            return graph_error(400, 100, "(#100) The parameter image_url is required")
        if media_type == "REELS" and not video_url:
            return graph_error(400, 100, "(#100) The parameter video_url is required")
        if media_type == "STORIES" and not (image_url or video_url):
            return graph_error(400, 100, "(#100) The parameter image_url or video_url is required")
        url = video_url if media_type != "IMAGE" and video_url else image_url
        if not str(url).startswith(("http://", "https://")):
            return graph_error(400, 9004, "Only photo or video can be accepted as media type.", 2207052,
                               "Media download failed", "The media could not be fetched from the URI.")
        caption = params.get("caption", "")
        if len(caption) > 2200:
            return graph_error(400, 36004, "The caption is too long", 2207010, "Caption too long",
                               "The caption exceeds the maximum length of 2200 characters.")
        container = Container(
            id=numeric_id("178", 14, self.store.containers), account_id=account, media_type=media_type,
            is_video=url == video_url, caption=caption, created_at=now(),
        )
        self.store.containers[container.id] = container
        return json_response({"id": container.id})

    def _container_status(self, container: Container) -> str:
        if container.media_id:
            return "PUBLISHED"
        age = now() - container.created_at
        if age > CONTAINER_TTL:
            return "EXPIRED"
        if container.is_video and age < self.settings.processing_seconds:
            return "IN_PROGRESS"
        return "FINISHED"

    def _publish(self, container: Container) -> Media:
        product = {"IMAGE": "FEED", "REELS": "REELS", "STORIES": "STORY"}[container.media_type]
        media = Media(
            id=numeric_id("179", 14, self.store.media), account_id=container.account_id,
            container_id=container.id, media_type="VIDEO" if container.is_video else "IMAGE",
            product_type=product, caption=container.caption, published_at=now(),
        )
        container.media_id = media.id
        self.store.media[media.id] = media
        self.store.media_by_account.setdefault(media.account_id, []).append(media.id)
        self.store.publish_times.setdefault(media.account_id, deque()).append(media.published_at)
        self.log.add("instagram", media.account_id, media.id, media.permalink, media.caption,
                     media.published_at, None)
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


async def _authorized(request: Request) -> tuple[dict[str, str], Response | None]:
    """Params, or a Graph error: unknown version, or no token as Bearer or `access_token`."""
    if not _VERSION.match(request.path_params["version"]):
        return {}, graph_error(400, 2500, "Unknown path components: "
                               f"/{request.path_params['version']}")
    params = await read_params(request)
    token = bearer_token(request) or params.pop("access_token", None)
    if not token:
        return params, graph_error(401, 190, "An active access token must be used to query "
                                   "information about the current user.")
    return params, None


def _fields(params: dict[str, str], default: set[str]) -> set[str]:
    """The `fields` asked for, or the edge's default set."""
    fields = {f.strip() for f in params.get("fields", "").split(",") if f.strip()}
    return fields or default


def _select(known: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: v for k, v in known.items() if k in fields}
