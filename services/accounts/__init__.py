"""Accounts and their credentials: registered, connected through OAuth, tokens sealed with
AES-GCM in Postgres, refreshed before they expire.

    store = AccountStore(pool, Keyring.parse(settings.accounts.credential_keys))
    tokens = AccessTokens(store, oauth_clients(settings.accounts, http), alerts=send)
    token = await tokens.current(Platform.TIKTOK, "acme")            # or AccountUnavailable
    token = await tokens.replace_rejected(Platform.TIKTOK, "acme", token)  # after a 401
    await TokenKeepAlive(tokens, Platform.TIKTOK).start()            # idle accounts stay connected
    await connect_with_code(store, client, "acme", code)             # `autopost accounts connect`
    await connect_sandbox_account(store, client, "acme")             # dev stack and tests only

A token never appears in a log, an error, a span or a message (see `_redact`).
"""

from . import _commands as commands
from ._connect import (
    connect_sandbox_account,
    connect_sandbox_accounts,
    connect_with_code,
    oauth_clients,
    sandbox_authorization_code,
)
from ._errors import AccountUnavailable, OAuthError, OAuthFailure, RefreshFailed
from ._keepalive import TokenKeepAlive
from ._keyring import Keyring, KeyringError, new_key_entry
from ._model import (
    REFRESH_MARGIN,
    Account,
    AccountStatus,
    Credential,
    TokenGrant,
    can_refresh,
    keep_alive_due,
    refresh_due,
    refreshed,
)
from ._oauth import OAuthClient, oauth_client, oauth_http_client
from ._redact import REDACTED, redact_http_logs, scrub
from ._store import AccountStore
from ._tokens import AccessTokens

__all__ = [
    "REDACTED",
    "REFRESH_MARGIN",
    "AccessTokens",
    "Account",
    "AccountStatus",
    "AccountStore",
    "AccountUnavailable",
    "Credential",
    "Keyring",
    "KeyringError",
    "OAuthClient",
    "OAuthError",
    "OAuthFailure",
    "RefreshFailed",
    "TokenGrant",
    "TokenKeepAlive",
    "can_refresh",
    "commands",
    "connect_sandbox_account",
    "connect_sandbox_accounts",
    "connect_with_code",
    "keep_alive_due",
    "new_key_entry",
    "oauth_client",
    "oauth_clients",
    "oauth_http_client",
    "redact_http_logs",
    "refresh_due",
    "refreshed",
    "sandbox_authorization_code",
    "scrub",
]
