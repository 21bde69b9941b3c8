"""Why a token cannot be had. Messages name the account and the platform's code, never a token."""

from __future__ import annotations

from enum import Enum


class AccountUnavailable(Exception):
    """The account cannot publish until a person acts: `code` says what to do.

    `reconnect_needed`: the platform refused its authorization; `account_not_connected`: never
    connected, removed, or not known here.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RefreshFailed(Exception):
    """A token not had this time: a refresh that did not happen (network, the platform's 5xx, a
    misconfigured app), or a stored one this process's key ring cannot open. The account stays
    connected."""

    def __init__(self, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


class OAuthFailure(str, Enum):
    INVALID_GRANT = "invalid_grant"  # the code or refresh token is dead: reconnect
    TRANSIENT = "transient"  # try again later
    REJECTED = "rejected"  # the request itself (client id/secret, redirect URI, scope): fix the app


class OAuthError(Exception):
    def __init__(self, failure: OAuthFailure, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{failure.value} {code}: {message}")
        self.failure = failure
        self.code = code
        self.message = message
        self.retry_after = retry_after
