"""Accounts, the tokens they hold, and when a token is due for a refresh. Pure: callers pass `now`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from contracts import Platform


class AccountStatus(str, Enum):
    PENDING = "pending"  # added, never connected
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"  # the platform refused its authorization: a person must connect it again
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Account:
    """What `autopost accounts ls` shows: never a token."""

    platform: Platform
    account_id: str
    display_name: str
    status: AccountStatus
    status_reason: str | None = None
    scopes: tuple[str, ...] = ()
    remote_user_id: str | None = None  # who signed in: TikTok open_id, Instagram user id, YouTube channel id
    connected_at: datetime | None = None
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    key_id: str | None = None  # the key its tokens are sealed with


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a token endpoint answered; `None` lifetimes mean it did not say."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_expires_in: float | None = None
    refresh_expires_in: float | None = None
    scopes: tuple[str, ...] = ()
    remote_user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Credential:
    """An account's tokens, decrypted: held in memory only, never printed."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    issued_at: datetime
    version: int


# Refresh this long before the access token expires. Instagram's long-lived token lives 60 days
# and can only be refreshed once it is a day old, so it is refreshed in its last week.
REFRESH_MARGIN = {
    Platform.TIKTOK: timedelta(minutes=10),
    Platform.INSTAGRAM: timedelta(days=7),
    Platform.YOUTUBE: timedelta(minutes=5),
}
INSTAGRAM_MIN_REFRESH_AGE = timedelta(hours=24)


def can_refresh(platform: Platform, credential: Credential, now: datetime) -> bool:
    if platform is Platform.INSTAGRAM:  # the long-lived token refreshes itself, once a day old
        return now - credential.issued_at >= INSTAGRAM_MIN_REFRESH_AGE
    return credential.refresh_token is not None


def refresh_due(platform: Platform, credential: Credential, now: datetime) -> bool:
    """Whether to refresh before using the token: close enough to its expiry, and refreshable."""
    if credential.access_expires_at is None:
        return False
    close = credential.access_expires_at - now <= REFRESH_MARGIN[platform]
    return close and can_refresh(platform, credential, now)


# An account nobody posts for is still refreshed in time (services.accounts.TokenKeepAlive), else
# it would need reconnecting: Instagram's token dies 60 days after its last refresh, TikTok's
# refresh token after 180 days (a refresh issues a new one), and Google drops a refresh token
# unused for six months.
KEEP_ALIVE_IDLE = timedelta(days=30)  # a refresh token not used for this long is used
KEEP_ALIVE_MARGIN = timedelta(days=14)  # a refresh token this close to its expiry is renewed


def keep_alive_due(platform: Platform, credential: Credential, now: datetime) -> bool:
    """Whether to refresh an account's tokens now although nothing is posting for it."""
    if platform is Platform.INSTAGRAM:
        return refresh_due(platform, credential, now)
    if credential.refresh_token is None:
        return False
    expiring = (credential.refresh_expires_at is not None
                and credential.refresh_expires_at - now <= KEEP_ALIVE_MARGIN)
    return expiring or now - credential.issued_at >= KEEP_ALIVE_IDLE


def keep_alive_bounds(platform: Platform, now: datetime) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(access token expiring by, issued by, refresh token expiring by): a credential
    `keep_alive_due` can pick meets one, so the store finds candidates without opening tokens."""
    if platform is Platform.INSTAGRAM:
        return now + REFRESH_MARGIN[platform], None, None
    return None, now - KEEP_ALIVE_IDLE, now + KEEP_ALIVE_MARGIN


def expires_at(now: datetime, seconds: float | None) -> datetime | None:
    return now + timedelta(seconds=seconds) if seconds is not None else None


def refreshed(previous: Credential, grant: TokenGrant, now: datetime) -> Credential:
    """The credential after a refresh. A refresh token the reply does not repeat is kept
    (Google does not rotate its own); one it does send replaces the old (TikTok rotates)."""
    rotated = grant.refresh_token is not None
    return Credential(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token if rotated else previous.refresh_token,
        access_expires_at=expires_at(now, grant.access_expires_in),
        refresh_expires_at=expires_at(now, grant.refresh_expires_in) if rotated else previous.refresh_expires_at,
        issued_at=now,
        version=previous.version + 1,
    )


def first_credential(grant: TokenGrant, now: datetime, version: int = 1) -> Credential:
    return Credential(grant.access_token, grant.refresh_token, expires_at(now, grant.access_expires_in),
                      expires_at(now, grant.refresh_expires_in), now, version)
