"""One Starlette app mounting the three fakes, the media host and the `/_sandbox` admin routes:
`published` (what went live), `stats` (counts, duplicates, faults injected), `reset`, and
`faults` (GET the rules, POST a rule / {"rules": [...]} / {"profile": "flaky"}, DELETE all or
one by id)."""

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

from . import _instagram, _media, _tiktok, _youtube
from ._engagement import EngagementSimulation
from ._faults import PROFILES, FaultInjector, FaultRule
from ._http import account_for, json_response, read_json
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
    engagement: EngagementSimulation = field(init=False)
    published: PublishedLog = field(default_factory=PublishedLog)
    tiktok: TikTokStore = field(default_factory=TikTokStore)
    instagram: InstagramStore = field(default_factory=InstagramStore)
    youtube: YouTubeStore = field(default_factory=YouTubeStore)
    oauth: OAuthStore = field(default_factory=OAuthStore)  # kept by reset: accounts stay connected
    requests: Counter[str] = field(default_factory=Counter)
    # (time, platform, path, account) of recent POSTs: the calls platforms rate-limit
    calls: deque[tuple[float, str, str, str]] = field(default_factory=lambda: deque(maxlen=100_000))
    faults: FaultInjector = field(default_factory=lambda: FaultInjector({
        "tiktok": _tiktok.fault_response, "instagram": _instagram.fault_response,
        "youtube": _youtube.fault_response}))

    def __post_init__(self) -> None:
        for store in (self.tiktok, self.instagram, self.youtube):
            store.faults = self.faults  # one set of rules; a test may give a store its own hook
        self.engagement = EngagementSimulation(self.settings)

    def reset(self) -> None:
        self.published.reset()
        self.tiktok.reset()
        self.instagram.reset()
        self.youtube.reset()
        self.requests.clear()
        self.calls.clear()
        self.faults.clear()

    def stats(self) -> dict[str, Any]:
        created = {
            "tiktok": len(self.tiktok.publishes),
            "instagram": len(self.instagram.containers),
            "youtube": len(self.youtube.sessions),
        }
        uploading = {"tiktok": self.tiktok.uploading_bytes(), "instagram": 0,
                     "youtube": self.youtube.uploading_bytes()}
        stats: dict[str, Any] = {
            p: {"published": self.published.counts[p], "created": created[p], "requests": self.requests[p],
                "duplicates": self.published.duplicates(p), "uploadingBytes": uploading[p]}
            for p in PLATFORMS}
        stats["duplicates"] = self.published.duplicates()
        stats["faultsInjected"] = dict(self.faults.injected)
        return stats


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


def rules_from_json(body: Any) -> list[FaultRule]:
    """A rule, {"rules": [...]}, or {"profile": NAME}: what POST /_sandbox/faults takes."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    if "profile" in body:
        if body["profile"] not in PROFILES:
            raise ValueError(f"unknown profile {body['profile']!r}; one of {', '.join(PROFILES)}")
        return PROFILES[body["profile"]]()
    if "rules" in body:
        return [FaultRule.from_json(r) for r in body["rules"]]
    return [FaultRule.from_json(body)]


def create_app(settings: SandboxSettings | None = None, faults: list[FaultRule] | None = None) -> Starlette:
    state = SandboxState(settings or SandboxSettings())
    state.faults.add(list(faults or []))

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

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return json_response({"rules": [r.to_json() for r in state.faults.rules],
                                  "injected": dict(state.faults.injected)})
        if request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        body = await read_json(request)
        try:
            rules = rules_from_json(body)
        except (TypeError, ValueError) as error:
            return json_response({"error": str(error)}, 400)
        return json_response({"ids": state.faults.add(rules)}, 201)

    async def fault(request: Request) -> Response:
        found = state.faults.remove(request.path_params["rule_id"])
        return Response(status_code=204 if found else 404)

    async def engagement_truth(request: Request) -> Response:
        platform, account = request.query_params.get("platform"), request.query_params.get("accountId")
        if platform not in PLATFORMS or not account:
            return json_response({"error": "platform (tiktok|instagram|youtube) and accountId are required"}, 400)
        return json_response(state.engagement.truth_json(platform, account))

    engagement = state.engagement
    instagram = InstagramApi(state.instagram, state.published, state.settings,
                             accounts=lambda node_id: engagement.instagram_account(state.instagram, node_id))
    youtube = YouTubeApi(state.youtube, state.published, state.settings,
                         statistics=engagement.youtube_statistics,
                         channel_statistics=engagement.youtube_channel_statistics)
    app = Starlette(routes=[
        *OAuthApi(state.oauth, state.settings).routes(),
        Mount("/tiktok", routes=TikTokApi(state.tiktok, state.published, state.settings).routes()
              + engagement.tiktok_routes(state.tiktok)),
        Mount("/instagram", routes=engagement.instagram_routes(state.instagram) + instagram.routes()),
        Mount("/youtube", routes=youtube.routes()),
        Mount("/media", routes=_media.routes()),
        Route("/_sandbox/published", published, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/calls", calls, methods=["GET"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/faults/{rule_id}", fault, methods=["DELETE"]),
        Route("/_sandbox/engagement", engagement_truth, methods=["GET"]),
    ])
    app.state.sandbox = state
    # inside the gate: it sees the account an issued token stands for (the gate's rewrite)
    app.add_middleware(_CountRequests, counts=state.requests, calls=state.calls)
    app.add_middleware(TokenGate, store=state.oauth, settings=state.settings)
    return app
