"""When a token is refreshed, and what a refresh keeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contracts import Platform
from services.accounts import Credential, TokenGrant, can_refresh, keep_alive_due, refresh_due, refreshed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def credential(expires_in: timedelta | None, *, age: timedelta = timedelta(hours=1),
               refresh: str | None = "rft.1", refresh_left: timedelta | None = timedelta(days=180)) -> Credential:
    return Credential("act.1", refresh, NOW + expires_in if expires_in is not None else None,
                      NOW + refresh_left if refresh_left is not None else None, NOW - age, version=3)


def test_refresh_is_due_inside_the_margin_only() -> None:
    assert not refresh_due(Platform.TIKTOK, credential(timedelta(minutes=11)), NOW)
    assert refresh_due(Platform.TIKTOK, credential(timedelta(minutes=9)), NOW)
    assert refresh_due(Platform.TIKTOK, credential(timedelta(minutes=-5)), NOW)  # already expired
    assert not refresh_due(Platform.YOUTUBE, credential(timedelta(minutes=6)), NOW)
    assert refresh_due(Platform.YOUTUBE, credential(timedelta(minutes=4)), NOW)
    assert not refresh_due(Platform.TIKTOK, credential(None), NOW)  # no stated expiry


def test_no_refresh_token_means_no_refresh() -> None:
    assert not can_refresh(Platform.YOUTUBE, credential(timedelta(0), refresh=None), NOW)
    assert not refresh_due(Platform.YOUTUBE, credential(timedelta(0), refresh=None), NOW)


def test_instagram_refreshes_in_its_last_week_once_a_day_old() -> None:
    young = credential(timedelta(days=3), age=timedelta(hours=23), refresh=None)
    old = credential(timedelta(days=3), age=timedelta(days=57), refresh=None)
    assert not refresh_due(Platform.INSTAGRAM, young, NOW)
    assert refresh_due(Platform.INSTAGRAM, old, NOW)
    assert not refresh_due(Platform.INSTAGRAM, credential(timedelta(days=8), age=timedelta(days=52)), NOW)


def test_an_idle_account_is_refreshed_before_its_authorization_lapses() -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    # TikTok: the access token has long expired; the 180-day refresh token is what must not
    assert not keep_alive_due(Platform.TIKTOK, credential(-day, age=20 * day, refresh_left=160 * day), NOW)
    assert keep_alive_due(Platform.TIKTOK, credential(-day, age=20 * day, refresh_left=13 * day), NOW)
    # Google: a refresh token unused for six months dies; it is used once a month
    assert not keep_alive_due(Platform.YOUTUBE, credential(-day, age=29 * day, refresh_left=None), NOW)
    assert keep_alive_due(Platform.YOUTUBE, credential(-day, age=31 * day, refresh_left=None), NOW)
    assert not keep_alive_due(Platform.YOUTUBE, credential(-day, age=90 * day, refresh=None), NOW)
    # Instagram: in the token's last week, as before use
    assert keep_alive_due(Platform.INSTAGRAM, credential(6 * day, age=54 * day, refresh=None), NOW)
    assert not keep_alive_due(Platform.INSTAGRAM, credential(8 * day, age=52 * day, refresh=None), NOW)
    assert not keep_alive_due(Platform.INSTAGRAM, credential(hour, age=23 * hour, refresh=None), NOW)


def test_a_rotated_refresh_token_replaces_the_old_one_an_unrepeated_one_is_kept() -> None:
    before = credential(timedelta(minutes=1))
    tiktok = refreshed(before, TokenGrant("act.2", "rft.2", 7200, 15_552_000), NOW)
    assert (tiktok.access_token, tiktok.refresh_token, tiktok.version) == ("act.2", "rft.2", 4)
    assert tiktok.access_expires_at == NOW + timedelta(hours=2)
    assert tiktok.refresh_expires_at == NOW + timedelta(seconds=15_552_000)
    google = refreshed(before, TokenGrant("ya29.2", None, 3599), NOW)
    assert (google.refresh_token, google.refresh_expires_at) == ("rft.1", before.refresh_expires_at)
    assert google.issued_at == NOW
