"""Access tokens for publishing: read from the store, refreshed before they expire, and
refreshed once more when a platform refuses one.

Refreshes take the account's row lock and re-read before calling the platform, so two
publishers refreshing one account at once make one refresh call: the second finds the pair
the first stored. That matters for TikTok, whose refresh token rotates: the old one stops
working the moment the new pair is issued, so a refresh, once begun, is finished and stored
even when its caller is cancelled. Only `invalid_grant` takes an account out of service
(needs_reconnect, plus a RECONNECT_NEEDED alert); any other refresh failure leaves it connected.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from opentelemetry import trace

from contracts import AdminAlert, AlertKind, Platform
from services.runtime import Coalesced, metrics

from ._errors import AccountUnavailable, OAuthError, OAuthFailure, RefreshFailed
from ._model import (
    REFRESH_MARGIN,
    AccountStatus,
    Credential,
    can_refresh,
    keep_alive_due,
    refresh_due,
    refreshed,
)
from ._oauth import OAuthClient
from ._store import AccountStore, StoredAccount

log = logging.getLogger("autopost.accounts")

AlertSink = Callable[[AdminAlert], Awaitable[None]]
DuePolicy = Callable[[Platform, Credential, datetime], bool]
_ALERT_NAMESPACE = uuid.UUID("0b7f4a52-93c1-4c0e-8d0f-6a3e21c5d9b4")
_CACHE_SECONDS = 30.0
# an account still used while it needs reconnecting repeats its alert (same id) this often
_REMIND_EVERY = timedelta(minutes=10)
# a planned refresh that failed is tried again this much later, the token it meant to replace
# used meanwhile while it lasts
_REFRESH_AGAIN_AFTER = timedelta(seconds=60)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    until: datetime


class AccessTokens:
    def __init__(self, store: AccountStore, oauth: Mapping[Platform, OAuthClient], *,
                 alerts: AlertSink | None = None, tracer: trace.Tracer | None = None,
                 clock: Callable[[], datetime] = _utcnow, cache_seconds: float = _CACHE_SECONDS,
                 max_cached: int = 100_000):
        self.store, self.oauth = store, oauth
        self.alerts = alerts
        self.tracer = tracer or trace.get_tracer("autopost.accounts")
        self.clock = clock
        self.cache_seconds, self.max_cached = cache_seconds, max_cached
        self._cache: OrderedDict[tuple[Platform, str], _Cached] = OrderedDict()
        self._reminded: dict[tuple[Platform, str], datetime] = {}
        # the accounts of one batch that are not cached are read in one statement
        self._read = Coalesced(self._read_batch)

    async def current(self, platform: Platform, account_id: str) -> str:
        """A usable access token, refreshed first when it is close to expiry."""
        key, now = (platform, account_id), self.clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached.until:
            return cached.token
        stored = await self._read(key)
        if stored is not None and stored.status is AccountStatus.NEEDS_RECONNECT:
            await self._remind(platform, account_id, stored, now)
        credential = self._usable(platform, account_id, stored)
        if not refresh_due(platform, credential, now):
            return self._remember(platform, account_id, credential, now)
        try:
            token, _ = await self._refresh(platform, account_id, "due", stale=credential.access_token)
            return token
        except RefreshFailed:
            expires = credential.access_expires_at
            if expires is None or expires <= now:
                raise
            # ahead of expiry (up to Instagram's last week): the token works still, the
            # platform's token endpoint does not; posting waits for neither
            return self._remember(platform, account_id, credential, now,
                                  until=min(now + _REFRESH_AGAIN_AFTER, expires))

    async def _read_batch(self, keys: list[tuple[Platform, str]]) -> list[StoredAccount | None]:
        async with self.store.pool.acquire() as conn:
            return await self.store.read_many(conn, keys)

    async def replace_rejected(self, platform: Platform, account_id: str, rejected: str) -> str:
        """The platform refused `rejected`: the token another process already refreshed, else a refresh."""
        self._cache.pop((platform, account_id), None)
        token, _ = await self._refresh(platform, account_id, "rejected", stale=rejected)
        return token

    async def keep_alive(self, platform: Platform, account_id: str) -> bool:
        """Refresh an account that nothing may be using, if `keep_alive_due`: whether it was.
        Raises as `current` does (AccountUnavailable, RefreshFailed)."""
        _, called = await self._refresh(platform, account_id, "keep_alive", due=keep_alive_due)
        return called

    async def mark_needs_reconnect(self, platform: Platform, account_id: str, reason: str) -> None:
        """Take the account out of service (e.g. a fresh token refused too) and raise the alert."""
        self._cache.pop((platform, account_id), None)
        async with self.store.pool.acquire() as conn, conn.transaction():
            stored = await self.store.read(conn, platform, account_id, for_update=True)
            if stored is None or stored.status is not AccountStatus.CONNECTED:
                return
            await self.store.mark_needs_reconnect(conn, platform, account_id, reason)
        await self._alert(platform, account_id, reason, stored.credential)

    # -- refresh -----------------------------------------------------------------------------

    async def _refresh(self, platform: Platform, account_id: str, reason: str, *, stale: str | None = None,
                       due: DuePolicy = refresh_due) -> tuple[str, bool]:
        """(the token, whether the platform was called). `reason`: due (before use), rejected
        (the platform refused `stale`: refresh whatever `due` says) or keep_alive. Without
        `stale`, what is stored is refreshed when `due`."""
        with self.tracer.start_as_current_span(
            f"refresh token {platform.value}",
            attributes={"autopost.account_id": account_id, "autopost.refresh.reason": reason},
        ) as span:
            if reason == "rejected":  # the platform refused the token: refresh it whatever its expiry
                due = _always_due
            # shielded: a pair TikTok has issued must be stored, its old refresh token is dead
            locked = asyncio.ensure_future(self._refresh_locked(platform, account_id, stale, due))
            try:
                outcome, lost, called = await asyncio.shield(locked)
            except asyncio.CancelledError:
                locked.add_done_callback(_retrieve)
                raise
            if called:
                code = outcome.code if not isinstance(outcome, str) else "ok"
                metrics.TOKEN_REFRESHES.labels(platform.value, reason, code).inc()
            if isinstance(outcome, str):
                span.set_attribute("autopost.refresh.outcome", "ok" if called else "not_needed")
                return outcome, called
            span.set_attribute("autopost.refresh.outcome", outcome.code)
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.code))
            if lost is not None:
                log.warning("%s account %s needs reconnecting: %s", platform.value, account_id, outcome.message)
                await self._alert(platform, account_id, outcome.message, lost)
            else:
                log.warning("token refresh for %s account %s failed: %s", platform.value, account_id,
                            outcome.message)
            raise outcome

    async def _refresh_locked(self, platform: Platform, account_id: str, stale: str | None, due: DuePolicy
                              ) -> tuple[str | AccountUnavailable | RefreshFailed, Credential | None, bool]:
        """(new token or the error to raise, the credential if the account was just lost,
        whether the token endpoint was called).

        Errors are returned, not raised, so the transaction commits a needs_reconnect mark.
        """
        async with self.store.pool.acquire() as conn, conn.transaction():
            stored = await self.store.read(conn, platform, account_id, for_update=True)
            try:
                credential = self._usable(platform, account_id, stored)
            except AccountUnavailable as error:
                return error, None, False
            now = self.clock()
            replaced = stale is not None and credential.access_token != stale
            if replaced or not due(platform, credential, now):
                return self._remember(platform, account_id, credential, now), None, False  # done meanwhile
            if not can_refresh(platform, credential, now):
                reason = (f"{platform.value} refused the token and it cannot be refreshed yet"
                          if platform is Platform.INSTAGRAM else f"{platform.value} refused the token "
                                                                 "and no refresh token is stored")
                await self.store.mark_needs_reconnect(conn, platform, account_id, reason)
                return AccountUnavailable("reconnect_needed", reason), credential, False
            try:
                grant = await self.oauth[platform].refresh(credential)
            except OAuthError as error:
                if error.failure is OAuthFailure.INVALID_GRANT:
                    reason = f"{error.message}; connect the account again"
                    await self.store.mark_needs_reconnect(conn, platform, account_id, reason)
                    return AccountUnavailable("reconnect_needed", reason), credential, True
                return RefreshFailed("token_refresh_failed", error.message,
                                     error.retry_after if error.failure is OAuthFailure.TRANSIENT else 300.0
                                     ), None, True
            fresh = refreshed(credential, grant, self.clock())
            # the new pair replaces the old in this transaction: TikTok's old refresh token is dead now
            await self.store.write(conn, platform, account_id, fresh)
        return self._remember(platform, account_id, fresh, self.clock()), None, True

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _usable(platform: Platform, account_id: str, stored: StoredAccount | None) -> Credential:
        name = f"{platform.value} account {account_id}"
        if stored is None:
            raise AccountUnavailable("account_not_connected", f"{name} is not known here: add and connect it")
        if stored.status is AccountStatus.NEEDS_RECONNECT:
            raise AccountUnavailable("reconnect_needed",
                                     f"{name} needs reconnecting ({stored.status_reason or 'authorization lost'})")
        if stored.unreadable is not None and stored.status is AccountStatus.CONNECTED:
            # a key ring without the key that sealed it (a rotation half rolled out): an
            # operator's mend, after which the next attempt works
            raise RefreshFailed("credential_unreadable", f"{name}'s stored token cannot be opened here: "
                                f"{stored.unreadable}", retry_after=60.0)
        if stored.status is not AccountStatus.CONNECTED or stored.credential is None:
            raise AccountUnavailable("account_not_connected", f"{name} is {stored.status.value}, not connected")
        return stored.credential

    def _remember(self, platform: Platform, account_id: str, credential: Credential, now: datetime,
                  until: datetime | None = None) -> str:
        """Cache the token until `until`, by default a while and never into its refresh margin."""
        if until is None:
            until = now + timedelta(seconds=self.cache_seconds)
            if credential.access_expires_at is not None:
                until = min(until, credential.access_expires_at - REFRESH_MARGIN[platform])
        key = (platform, account_id)
        self._cache[key] = _Cached(credential.access_token, until)
        self._cache.move_to_end(key)
        if len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return credential.access_token

    async def _remind(self, platform: Platform, account_id: str, stored: StoredAccount, now: datetime) -> None:
        """Repeat the reconnect alert now and then: the first one may have been lost with its process."""
        key = (platform, account_id)
        last = self._reminded.get(key)
        if last is not None and now - last < _REMIND_EVERY:
            return
        await self._alert(platform, account_id, stored.status_reason or "authorization lost", stored.credential)

    async def _alert(self, platform: Platform, account_id: str, reason: str,
                     credential: Credential | None) -> None:
        if self.alerts is None:
            return
        if len(self._reminded) > self.max_cached:
            self._reminded.clear()
        self._reminded[(platform, account_id)] = self.clock()
        # one alert per lost connection: a repeat (another publisher, a retry) has the same id
        version = credential.version if credential else 0
        alert = AdminAlert(
            alert_id=uuid.uuid5(_ALERT_NAMESPACE, f"reconnect:{platform.value}:{account_id}:{version}"),
            kind=AlertKind.RECONNECT_NEEDED,
            reason="reconnect_needed",
            message=f"{platform.value} account {account_id} needs reconnecting: {reason}. "
                    f"Run `autopost accounts connect {platform.value} {account_id}`."[:4000],
            platform=platform, account_id=account_id, raised_at=self.clock(),
        )
        try:
            await self.alerts(alert)
        except Exception:  # the account is marked either way; the alert is repeated on use
            log.exception("could not send the reconnect alert for %s account %s", platform.value, account_id)


def _always_due(platform: Platform, credential: Credential, now: datetime) -> bool:
    return True


def _retrieve(task: asyncio.Task) -> None:
    """A refresh whose caller went away: its error is logged, not left unread."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("a token refresh whose caller was cancelled failed: %r", task.exception())
