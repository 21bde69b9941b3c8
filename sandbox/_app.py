"""One Starlette app mounting the three fakes, the media host and the `/_sandbox` admin routes."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import _media
from ._http import account_for, json_response
from ._instagram import InstagramApi, InstagramStore
from ._oauth import OAuthApi, OAuthStore, TokenGate
from ._store import PublishedLog, SandboxSettings
from ._tiktok import TikTokApi, TikTokStore
from ._youtube import YouTubeApi, YouTubeStore

PLATFORMS = ("tiktok", "instagram", "youtube")


@dataclass
class SandboxState:
    """Everything the sandbox holds; `app.state.sandbox` (tests may reach in to set it up)."""

    settings: SandboxSettings
    published: PublishedLog = field(default_factory=PublishedLog)
    tiktok: TikTokStore = field(default_factory=TikTokStore)
    instagram: InstagramStore = field(default_factory=InstagramStore)
    youtube: YouTubeStore = field(default_factory=YouTubeStore)
    oauth: OAuthStore = field(default_factory=OAuthStore)  # kept by reset: accounts stay connected
    requests: Counter[str] = field(default_factory=Counter)
    # (time, platform, path, account) of recent POSTs: the calls platforms rate-limit
    calls: deque[tuple[float, str, str, str]] = field(default_factory=lambda: deque(maxlen=100_000))

    def reset(self) -> None:
        self.published.reset()
        self.tiktok.reset()
        self.instagram.reset()
        self.youtube.reset()
        self.requests.clear()
        self.calls.clear()

    def stats(self) -> dict[str, Any]:
        created = {
            "tiktok": len(self.tiktok.publishes),
            "instagram": len(self.instagram.containers),
            "youtube": len(self.youtube.sessions),
        }
        return {p: {"published": self.published.counts[p], "created": created[p],
                    "requests": self.requests[p]} for p in PLATFORMS}


class _CountRequests:
    """Counts calls per platform (first path segment), for benchmarks' calls-per-post figures,
    and keeps the recent POSTs with their account, for the rate-cap benchmark."""

    def __init__(self, app: ASGIApp, counts: Counter[str], calls: deque[tuple[float, str, str, str]]):
        self.app, self.counts, self.calls = app, counts, calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            parts = scope["path"].split("/", 2)
            segment = parts[1] if len(parts) > 1 else ""
            if segment in PLATFORMS:
                self.counts[segment] += 1
                if scope["method"] == "POST":
                    self.calls.append((time.time(), segment, scope["path"], _account(scope)))
        await self.app(scope, receive, send)


def _account(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            _, _, token = value.decode("latin-1").partition(" ")
            return account_for(token.strip())
    return ""


def create_app(settings: SandboxSettings | None = None) -> Starlette:
    state = SandboxState(settings or SandboxSettings())

    async def published(request: Request) -> Response:
        records = state.published.records
        platform, account = request.query_params.get("platform"), request.query_params.get("accountId")
        if platform or account:
            records = [r for r in records
                       if (not platform or r["platform"] == platform)
                       and (not account or r["accountId"] == account)]
        return json_response(records)

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def calls(request: Request) -> Response:
        platform, account = request.query_params.get("platform"), request.query_params.get("accountId")
        return json_response([
            {"at": at, "platform": p, "path": path, "accountId": a}
            for at, p, path, a in state.calls
            if (not platform or p == platform) and (not account or a == account)
        ])

    app = Starlette(routes=[
        *OAuthApi(state.oauth, state.settings).routes(),
        Mount("/tiktok", routes=TikTokApi(state.tiktok, state.published, state.settings).routes()),
        Mount("/instagram", routes=InstagramApi(state.instagram, state.published, state.settings).routes()),
        Mount("/youtube", routes=YouTubeApi(state.youtube, state.published, state.settings).routes()),
        Mount("/media", routes=_media.routes()),
        Route("/_sandbox/published", published, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
    ])
    app.state.sandbox = state
    app.add_middleware(TokenGate, store=state.oauth, settings=state.settings)
    app.add_middleware(_CountRequests, counts=state.requests, calls=state.calls)
    return app
