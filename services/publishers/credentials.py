"""Where publishers and the poller get an account's access token: the accounts store.

`with_token` is how a platform call uses one: on an AUTH refusal it refreshes once and calls
once more; refused again, the authorization itself is gone and the account needs reconnecting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from contracts import ErrorClass, Platform
from services.accounts import AccessTokens, AccountUnavailable, RefreshFailed

from .platforms import PlatformError

T = TypeVar("T")


class TokenSource(Protocol):
    async def token_for(self, platform: Platform, account_id: str) -> str: ...

    async def token_after_rejection(self, platform: Platform, account_id: str, rejected: str) -> str: ...

    async def reconnect_needed(self, platform: Platform, account_id: str, reason: str) -> None: ...


class StoredTokens:
    """Tokens of connected accounts, as PlatformErrors when there are none: AUTH
    `reconnect_needed` / `account_not_connected`, or RETRYABLE `token_refresh_failed`."""

    def __init__(self, tokens: AccessTokens):
        self.tokens = tokens

    async def token_for(self, platform: Platform, account_id: str) -> str:
        with _as_platform_error():
            return await self.tokens.current(platform, account_id)

    async def token_after_rejection(self, platform: Platform, account_id: str, rejected: str) -> str:
        with _as_platform_error():
            return await self.tokens.replace_rejected(platform, account_id, rejected)

    async def reconnect_needed(self, platform: Platform, account_id: str, reason: str) -> None:
        await self.tokens.mark_needs_reconnect(platform, account_id, reason)


@contextmanager
def _as_platform_error() -> Iterator[None]:
    try:
        yield
    except AccountUnavailable as error:
        raise PlatformError(ErrorClass.AUTH, error.code, error.message) from None
    except RefreshFailed as error:
        raise PlatformError(ErrorClass.RETRYABLE, error.code, error.message, error.retry_after) from None


async def with_token(tokens: TokenSource, platform: Platform, account_id: str,
                     call: Callable[[str], Awaitable[T]]) -> T:
    """`call(token)`; refused for AUTH, once more with a refreshed token; refused again:
    the account is marked as needing reconnection and the error is AUTH `reconnect_needed`."""
    token = await tokens.token_for(platform, account_id)
    try:
        return await call(token)
    except PlatformError as error:
        if error.error_class is not ErrorClass.AUTH:
            raise
    fresh = await tokens.token_after_rejection(platform, account_id, token)
    try:
        return await call(fresh)
    except PlatformError as error:
        if error.error_class is not ErrorClass.AUTH:
            raise
        reason = f"{platform.value} refused a freshly refreshed token ({error.code})"
        await tokens.reconnect_needed(platform, account_id, reason)
        raise PlatformError(ErrorClass.AUTH, "reconnect_needed",
                            f"{platform.value} account {account_id} needs reconnecting: {reason}",
                            handle=error.handle) from None
