"""Engagement of the fakes' posts, from a true curve per account that nobody is told.

Every account (platform × account id) gets, from a hash of its name, a timezone, a lunch and an
evening peak of its own (later on weekends), a level, a follower count that grows. A post
earns `followers × rate(local hour it went out at) × its own luck`, building up with age like
`1 - exp(-age / engagement_timescale_seconds)`; the luck is drawn from the post's id, so reading
a post twice gives the same figures, growing. The platforms' own endpoints serve the figures:

- TikTok `POST /v2/video/query/` (like/comment/share/view counts) and `GET /v2/user/info/`
  (follower_count);
- Instagram `GET /{media-id}/insights` (views, likes, comments, shares, saved; a story has
  views, reach, replies, shares, navigation instead, for 24 hours) and `followers_count` on the
  account node;
- YouTube `videos.list part=statistics` and `channels.list part=statistics mine=true`.

`GET /_sandbox/engagement?platform=P&accountId=A` shows an account's truth, so the learning
loop can be watched; tests may set one with `EngagementSimulation.set_truth`.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._http import account_for, bearer_token, json_response, read_json
from ._store import Faults, SandboxSettings, now

if TYPE_CHECKING:
    from ._instagram import InstagramStore
    from ._tiktok import TikTokPublish, TikTokStore
    from ._youtube import Video

# Follower counts grow from this instant, so every run of the sandbox agrees on them.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
_ZONES = ("America/New_York", "America/Los_Angeles", "America/Sao_Paulo", "Europe/London",
          "Europe/Paris", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "UTC")
_LUCK_SD = 0.25  # log-normal spread of one post's engagement around the account's curve
_SHARES = {"likes": 0.80, "comments": 0.08, "shares": 0.07, "saves": 0.05}
# Instagram media insights: the media product types each metric is given for (IG Media Insights
# reference); a call asking a metric of a type it is not given for is refused whole
_IG_METRICS = {
    "views": {"FEED", "REELS", "STORY"}, "reach": {"FEED", "REELS", "STORY"},
    "shares": {"FEED", "REELS", "STORY"}, "total_interactions": {"FEED", "REELS", "STORY"},
    "likes": {"FEED", "REELS"}, "comments": {"FEED", "REELS"}, "saved": {"FEED", "REELS"},
    "replies": {"STORY"}, "navigation": {"STORY"},
}
STORY_INSIGHTS_SECONDS = 24 * 3600  # a story's insights are gone 24 h after it was posted


@dataclass(frozen=True)
class AccountTruth:
    timezone: str
    level: float  # interactions per follower a day after posting, at the account's best hour
    lunch: tuple[float, float]  # (local hour, relative height)
    evening: tuple[float, float]
    weekend_shift: float  # hours the peaks move later on Saturdays and Sundays
    followers: int  # at EPOCH
    growth_per_day: float

    def rate(self, epoch: float) -> float:
        """Expected interactions per follower a day after a post that went out at `epoch`."""
        local = datetime.fromtimestamp(epoch, ZoneInfo(self.timezone))
        hour = local.hour + 0.5  # one value per local hour
        shift = self.weekend_shift if local.weekday() >= 5 else 0.0
        shape = 0.12
        for centre, height in (self.lunch, self.evening):
            distance = (hour - centre - shift + 12) % 24 - 12
            shape += height * math.exp(-0.5 * (distance / 2.0) ** 2)
        best = 0.12 + max(self.lunch[1], self.evening[1])
        return self.level * shape / best

    def followers_at(self, epoch: float) -> int:
        return round(self.followers * (1 + self.growth_per_day) ** max((epoch - EPOCH) / 86_400, 0.0))


def _unit(*parts: str) -> float:
    """A number in [0, 1) fixed by `parts`."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def _normal(*parts: str) -> float:
    u1, u2 = max(_unit(*parts, "a"), 1e-12), _unit(*parts, "b")
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


class EngagementSimulation:
    def __init__(self, settings: SandboxSettings):
        self.settings = settings
        self._truths: dict[tuple[str, str], AccountTruth] = {}

    def truth(self, platform: str, account_id: str) -> AccountTruth:
        key = (platform, account_id)
        if key not in self._truths:
            def u(name: str) -> float:
                return _unit(platform, account_id, name)

            self._truths[key] = AccountTruth(
                timezone=_ZONES[int(u("zone") * len(_ZONES))],
                level=0.02 + 0.06 * u("level"),
                lunch=(11 + 3 * u("lunch"), 0.3 + 0.6 * u("lunch height")),
                evening=(17.5 + 5 * u("evening"), 0.5 + 0.5 * u("evening height")),
                weekend_shift=0.5 + 1.5 * u("weekend"),
                followers=int(2_000 * 10 ** (2.5 * u("followers"))),
                growth_per_day=0.005 * u("growth"),
            )
        return self._truths[key]

    def set_truth(self, platform: str, account_id: str, truth: AccountTruth) -> None:
        self._truths[(platform, account_id)] = truth

    def audience(self, platform: str, account_id: str, at: float | None = None) -> int:
        return self.truth(platform, account_id).followers_at(now() if at is None else at)

    def figures(self, platform: str, account_id: str, post_id: str, published_at: float,
                at: float | None = None) -> dict[str, int]:
        """A post's interaction counts and views at `at` (now by default)."""
        truth = self.truth(platform, account_id)
        age = max((now() if at is None else at) - published_at, 0.0)
        luck = math.exp(_LUCK_SD * _normal(platform, post_id) - _LUCK_SD ** 2 / 2)
        built = 1 - math.exp(-age / self.settings.engagement_timescale_seconds)
        total = truth.followers_at(published_at) * truth.rate(published_at) * luck * built
        counts = {name: int(total * share) for name, share in _SHARES.items()}
        counts["views"] = int(total * (8 + 8 * _unit(platform, post_id, "views")))
        return counts

    # -- the platforms' endpoints ------------------------------------------------------------

    def tiktok_routes(self, store: "TikTokStore") -> list[Route]:
        index: dict[str, "TikTokPublish"] = {}  # public post id -> publish, filled as needed

        def find(post_id: str) -> "TikTokPublish | None":
            if post_id not in index and len(index) < len(store.publishes):
                index.update({p.post_id: p for p in store.publishes.values() if p.post_id})
            return index.get(post_id)

        async def video_query(request: Request) -> Response:
            account, problem = await _enter(store.faults, "tiktok.video_query", request,
                                            bearer_token(request), _tiktok_unauthorized)
            if problem:
                return problem
            body = await read_json(request) or {}
            ids = (body.get("filters") or {}).get("video_ids")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 20:
                return _tiktok(400, {}, "invalid_params", "filters.video_ids must list 1-20 ids")
            fields = _fields(request.query_params.get("fields", "id"))
            videos = []
            for post_id in map(str, ids):
                publish = find(post_id)
                if publish is None or publish.account_id != account or publish.processing_from is None:
                    continue
                counts = self.figures("tiktok", account, post_id, publish.processing_from)
                known = {"id": post_id, "like_count": counts["likes"], "comment_count": counts["comments"],
                         "share_count": counts["shares"], "view_count": counts["views"],
                         "create_time": int(publish.processing_from)}
                videos.append({k: v for k, v in known.items() if k in fields | {"id"}})
            return _tiktok(200, {"videos": videos, "cursor": 0, "has_more": False})

        async def user_info(request: Request) -> Response:
            account, problem = await _enter(store.faults, "tiktok.user_info", request,
                                            bearer_token(request), _tiktok_unauthorized)
            if problem:
                return problem
            fields = _fields(request.query_params.get("fields", "open_id"))
            known = {"open_id": hashlib.sha256(account.encode()).hexdigest()[:32],
                     "display_name": account, "follower_count": self.audience("tiktok", account)}
            return _tiktok(200, {"user": {k: v for k, v in known.items() if k in fields}})

        return [Route("/v2/video/query/", video_query, methods=["POST"]),
                Route("/v2/user/info/", user_info, methods=["GET"])]

    def instagram_routes(self, store: "InstagramStore") -> list[Route]:
        from ._instagram import graph_error, no_token

        async def insights(request: Request) -> Response:
            token = bearer_token(request) or request.query_params.get("access_token")
            _, problem = await _enter(store.faults, "instagram.insights", request, token, no_token)
            if problem:
                return problem
            media = store.media.get(request.path_params["node_id"])
            if media is None:
                return graph_error(400, 100, "Unsupported get request.", 33)
            asked = [m.strip() for m in request.query_params.get("metric", "").split(",") if m.strip()]
            metrics = set(asked)
            if not metrics or metrics - _IG_METRICS.keys():
                return graph_error(400, 100, "(#100) metric must be one of the following values: "
                                   + ", ".join(sorted(_IG_METRICS)))
            if unsupported := [m for m in dict.fromkeys(asked) if media.product_type not in _IG_METRICS[m]]:
                # Graph refuses the whole call, naming the metrics this product type has not
                return graph_error(400, 100, "(#100) The Media Insights API does not support the "
                                   f"{', '.join(unsupported)} metric for this media product type.")
            if media.product_type == "STORY" and now() - media.published_at >= STORY_INSIGHTS_SECONDS:
                # a story's metrics are only available for 24 hours; Graph answers insights that
                # do not exist or are unavailable with an empty data set, not with zeros
                return json_response({"data": []})
            counts = self.figures("instagram", media.account_id, media.id, media.published_at)
            interactions = ((counts["comments"] + counts["shares"]) if media.product_type == "STORY"
                            else sum(counts[k] for k in _SHARES))
            known = {"views": counts["views"], "likes": counts["likes"], "comments": counts["comments"],
                     "shares": counts["shares"], "saved": counts["saves"],
                     "reach": counts["views"] * 3 // 4, "total_interactions": interactions,
                     # a story's conversation is its direct replies; its viewers tap through it
                     "replies": counts["comments"], "navigation": counts["views"] // 2}
            return json_response({"data": [
                {"name": name, "period": "lifetime", "values": [{"value": known[name]}],
                 "title": name.replace("_", " ").title(), "id": f"{media.id}/insights/{name}/lifetime"}
                for name in sorted(metrics)]})

        return [Route("/{version}/{node_id}/insights", insights, methods=["GET"])]

    def instagram_account(self, store: "InstagramStore", node_id: str) -> dict[str, Any] | None:
        """The fields of an Instagram account node, for accounts that have published."""
        if node_id not in store.media_by_account:
            return None
        return {"id": node_id, "username": node_id, "followers_count": self.audience("instagram", node_id),
                "media_count": len(store.media_by_account[node_id])}

    def youtube_statistics(self, video: "Video") -> dict[str, str]:
        counts = self.figures("youtube", video.account_id, video.id, video.uploaded_at)
        # Google gives counts as strings; favoriteCount is always 0 now
        return {"viewCount": str(counts["views"]), "likeCount": str(counts["likes"]),
                "favoriteCount": "0", "commentCount": str(counts["comments"])}

    def youtube_channel_statistics(self, account_id: str) -> dict[str, Any]:
        """part=statistics of channels.list mine=true: the subscribers are the audience."""
        return {"viewCount": "0", "hiddenSubscriberCount": False,
                "subscriberCount": str(self.audience("youtube", account_id)), "videoCount": "0"}

    def truth_json(self, platform: str, account_id: str) -> dict[str, Any]:
        return {"platform": platform, "accountId": account_id, **asdict(self.truth(platform, account_id)),
                "followersNow": self.audience(platform, account_id)}


def _fields(text: str) -> set[str]:
    return {f.strip() for f in text.split(",") if f.strip()}


async def _enter(faults: Faults, operation: str, request: Request, token: str | None,
                 unauthorized: Callable[[], Response]) -> tuple[str, Response | None]:
    """The caller's account, after faults and the token check, in the publishing endpoints' order.

    Faults are asked without the account: a rule aimed at an account leaves these reads alone.
    """
    if fault := await faults.before(operation, request):
        return "", fault
    if not token:
        return "", unauthorized()
    return account_for(token), None


def _tiktok(status: int, data: dict[str, Any], code: str = "ok", message: str = "") -> Response:
    return json_response({"data": data, "error": {"code": code, "message": message,
                                                  "log_id": secrets.token_hex(16).upper()}}, status)


def _tiktok_unauthorized() -> Response:
    return _tiktok(401, {}, "access_token_invalid", "The access token is invalid or not found in the request.")
