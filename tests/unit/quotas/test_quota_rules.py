"""Quota windows, costs and reopening times: pure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from contracts import ContentType, MediaRef, Platform, PublishRequested, RemoteHandle, StatusRequested
from services.quotas import PACIFIC, next_reset, opens_at, publish_costs, quota_rules, status_check_costs, window_start
from services.runtime import QuotaSettings

UTC = timezone.utc
RULES = quota_rules(QuotaSettings())


def request(platform: Platform, **extra) -> PublishRequested:
    return PublishRequested(**{
        "message_id": uuid.uuid4(), "target_id": uuid.uuid4(), "post_id": uuid.uuid4(), "platform": platform,
        "account_id": "acct", "attempt": 2, "content_type": ContentType.VIDEO, "caption": "c",
        "media": [MediaRef(url="https://c/v.mp4")], "scheduled_time": datetime.now(UTC), **extra})


def test_defaults_are_the_platforms_figures() -> None:
    assert {b: (r.limit, r.per_account) for b, r in RULES.items()} == {
        "tiktok.direct_posts": (15, True), "instagram.publishes": (50, True),
        "youtube.uploads": (100, False), "youtube.units": (10_000, False)}


def test_what_publishing_costs() -> None:
    tiktok = request(Platform.TIKTOK)
    [cost] = publish_costs(RULES, tiktok)
    assert (cost.rule.bucket, cost.scope, cost.key) == ("tiktok.direct_posts", "acct", str(tiktok.target_id))
    [cost] = publish_costs(RULES, request(Platform.INSTAGRAM))
    assert (cost.rule.bucket, cost.scope) == ("instagram.publishes", "acct")
    [cost] = publish_costs(RULES, request(Platform.YOUTUBE))
    assert (cost.rule.bucket, cost.scope) == ("youtube.uploads", "")  # one count for the whole project
    resumed = request(Platform.YOUTUBE, remote_handle=RemoteHandle(kind="youtube.session", id="s"))
    # under the same key as the first try: the ledger counts a target once a Pacific day
    assert publish_costs(RULES, resumed) == publish_costs(RULES, request(Platform.YOUTUBE, target_id=resumed.target_id))


def test_status_checks_cost_youtube_units_only() -> None:
    def status(platform):
        return StatusRequested(message_id=uuid.uuid4(), target_id=uuid.uuid4(), platform=platform,
                               account_id="a", attempt=1, remote_handle=RemoteHandle(kind="k", id="i"))
    [cost] = status_check_costs(RULES, status(Platform.YOUTUBE))
    assert (cost.rule.bucket, cost.units) == ("youtube.units", 1)
    assert status_check_costs(RULES, status(Platform.TIKTOK)) == []


def test_google_s_day_starts_at_midnight_pacific_across_dst() -> None:
    rule = RULES["youtube.units"]
    # 2026-03-08: clocks go forward in Los Angeles; that day has 23 hours
    at = datetime(2026, 3, 8, 20, 0, tzinfo=UTC)  # 13:00 PDT
    assert window_start(rule, at) == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 00:00 PST
    assert next_reset(at) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # 00:00 PDT
    assert next_reset(at) - window_start(rule, at) == timedelta(hours=23)
    late = datetime(2026, 7, 1, 6, 59, tzinfo=UTC)  # 23:59 PDT on 30 June
    assert next_reset(late).astimezone(PACIFIC).date().isoformat() == "2026-07-01"
    assert opens_at(rule, late, 10, [], 1, 10) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def test_a_rolling_window_opens_when_enough_of_the_oldest_age_out() -> None:
    rule, now = RULES["tiktok.direct_posts"], datetime(2026, 5, 1, 12, tzinfo=UTC)
    taken = [(now - timedelta(hours=h), 1) for h in (20, 10, 5)]
    assert opens_at(rule, now, 3, taken, 1, 3) == now + timedelta(hours=4)  # the 20 h old one leaves first
    assert opens_at(rule, now, 3, taken, 2, 3) == now + timedelta(hours=14)
    # the platform counts posts this ledger never saw: when they leave is unknown, look again in an hour
    assert opens_at(rule, now, 3, [], 1, 3) == now + timedelta(hours=1)
    # a refusal read back after some aged out (or were given back): it fits now
    assert opens_at(rule, now, 3, taken[1:], 1, 2) == now


def test_each_rule_names_its_platform():
    """The quota-left gauge is labelled by it: every bucket starts with a platform's name."""
    assert {rule.platform for rule in RULES.values()} == {p.value for p in Platform}
