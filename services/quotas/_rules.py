"""Platform quotas as rules, what a call costs, and when a full window opens again. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

from contracts import Platform, PublishRequested, StatusCheck, StatusRequested
from services.runtime import QuotaSettings

PACIFIC = ZoneInfo("America/Los_Angeles")
ROLLING = timedelta(hours=24)
# when the platform says a window is full but our own ledger cannot say when it frees: look again then
UNKNOWN_REOPENING = timedelta(hours=1)


class Window(str, Enum):
    ROLLING_24H = "rolling_24h"  # what was taken in the last 24 h counts
    PACIFIC_DAY = "pacific_day"  # resets at midnight America/Los_Angeles (Google's quota day)


@dataclass(frozen=True, slots=True)
class QuotaRule:
    bucket: str  # "<platform>.<what is counted>"
    limit: int
    window: Window
    per_account: bool  # else app-wide (one count for every account of the project)
    refundable: bool  # given back when the platform created nothing (posts count, calls do not)
    what: str  # for people: "TikTok Direct Posts per creator per 24 h"

    @property
    def platform(self) -> str:
        return self.bucket.partition(".")[0]


@dataclass(frozen=True, slots=True)
class Cost:
    rule: QuotaRule
    scope: str  # the account id, or "" for app-wide rules
    key: str  # one reservation per key: a retried target is not counted twice
    units: int = 1


@dataclass(frozen=True, slots=True)
class Denied:
    """A cost that does not fit: when the window opens again, and why, for the deferral."""

    rule: QuotaRule
    scope: str
    used: int
    limit: int
    opens_at: datetime

    def retry_after(self, now: datetime) -> float:
        return max(1.0, (self.opens_at - now).total_seconds())

    @property
    def code(self) -> str:
        return f"quota_{self.rule.bucket.replace('.', '_')}"

    @property
    def message(self) -> str:
        scope = f" for {self.scope}" if self.scope else ""
        until = self.opens_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"{self.rule.what}{scope}: {self.used} of {self.limit} used; deferred until {until}"


def quota_rules(settings: QuotaSettings) -> dict[str, QuotaRule]:
    rules = [
        QuotaRule("tiktok.direct_posts", settings.tiktok_daily_posts, Window.ROLLING_24H, True, True,
                  "TikTok Direct Posts per creator per 24 h"),
        QuotaRule("instagram.publishes", settings.instagram_daily_publishes, Window.ROLLING_24H, True, True,
                  "Instagram posts per account per 24 h"),
        QuotaRule("youtube.uploads", settings.youtube_daily_uploads, Window.PACIFIC_DAY, False, False,
                  "YouTube videos.insert calls per project per day"),
        QuotaRule("youtube.units", settings.youtube_daily_units, Window.PACIFIC_DAY, False, False,
                  "YouTube Data API units per project per day"),
    ]
    return {rule.bucket: rule for rule in rules}


def publish_costs(rules: dict[str, QuotaRule], request: PublishRequested) -> list[Cost]:
    """What publishing `request` takes from the quotas (platforms.md §1.7, §2.5, §3.6)."""
    target = str(request.target_id)
    if request.platform is Platform.TIKTOK:
        return [Cost(rules["tiktok.direct_posts"], request.account_id, target)]
    if request.platform is Platform.INSTAGRAM:  # a carousel is one post
        return [Cost(rules["instagram.publishes"], request.account_id, target)]
    # one a target a day: its retries resume its upload session (a new videos.insert only when
    # the session expired), and a request another publisher holds, or read twice, makes none.
    # A request carrying a handle is charged too, under the same key: within the day it adds
    # nothing, and whether its session still lives is known only once it is tried (an expired
    # one makes a new videos.insert; counting a resumed one the next day errs on the safe side)
    return [Cost(rules["youtube.uploads"], "", target)]


def status_check_costs(rules: dict[str, QuotaRule], request: StatusRequested) -> list[Cost]:
    """A status check is one videos.list call (1 unit); an engagement read adds channels.list."""
    if request.platform is Platform.YOUTUBE:
        units = 2 if request.check is StatusCheck.ENGAGEMENT else 1
        return [Cost(rules["youtube.units"], "", str(request.message_id), units)]
    return []


def window_start(rule: QuotaRule, now: datetime) -> datetime:
    if rule.window is Window.ROLLING_24H:
        return now - ROLLING
    local = now.astimezone(PACIFIC)
    # in UTC: arithmetic between two Pacific datetimes ignores a DST change between them
    return datetime.combine(local.date(), time(0), PACIFIC).astimezone(timezone.utc)


def next_reset(now: datetime) -> datetime:
    """The next midnight Pacific (23, 24 or 25 hours after the last one around DST changes)."""
    local = now.astimezone(PACIFIC)
    return datetime.combine(local.date() + timedelta(days=1), time(0), PACIFIC).astimezone(timezone.utc)


def opens_at(rule: QuotaRule, now: datetime, limit: int, taken: Sequence[tuple[datetime, int]],
             units: int, used: int) -> datetime:
    """When `units` more fit: the next reset, or (rolling) when enough of the oldest age out.

    `taken` is the window's reservations, oldest first; `used` may exceed their sum when the
    platform reports more than this ledger took (posts made elsewhere, of unknown age): only
    what the ledger saw is counted on to age out, and if that is not enough, look again later.
    """
    if rule.window is Window.PACIFIC_DAY:
        return next_reset(now)
    must_free = used + units - limit
    if must_free <= 0:  # it fits now (reservations aged out or were given back meanwhile)
        return now
    if units > limit:
        return now + ROLLING
    freed = 0
    for reserved_at, count in taken:
        freed += count
        if freed >= must_free:
            return reserved_at + ROLLING
    return now + UNKNOWN_REOPENING
