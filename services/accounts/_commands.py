"""`autopost accounts add | ls | connect | remove | rekey | new-key`: what operators run."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from contracts import Platform
from services.runtime import Settings, apply_migrations, create_pool

from ._connect import IDENTITY, connect_sandbox_account, connect_with_code, oauth_clients
from ._errors import OAuthError
from ._keyring import Keyring
from ._model import Account
from ._oauth import oauth_http_client
from ._store import AccountStore


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[AccountStore]:
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        yield AccountStore(pool, Keyring.parse(settings.accounts.credential_keys))
    finally:
        await pool.close()


async def add(settings: Settings, platform: Platform, account_id: str, name: str) -> int:
    async with _store(settings) as store:
        try:
            account = await store.add(platform, account_id, name)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"added {account.platform.value} account {account.account_id} ({account.status.value}); "
          f"connect it with: autopost accounts connect {platform.value} {account_id}")
    return 0


async def ls(settings: Settings, platform: Platform | None, *, include_removed: bool, as_json: bool) -> int:
    async with _store(settings) as store:
        accounts = await store.list(platform, include_removed=include_removed)
    if as_json:
        print(orjson.dumps([_json(a) for a in accounts], option=orjson.OPT_INDENT_2).decode())
    else:
        print(_table(accounts))
    return 0


async def connect(settings: Settings, platform: Platform, account_id: str, *, code: str | None,
                  name: str) -> int:
    """Exchange a code; with no code, against the sandbox, the whole round trip by itself."""
    async with _store(settings) as store, oauth_http_client() as http:
        clients = oauth_clients(settings, http)
        if platform not in clients:
            print(f"no OAuth app configured for {platform.value}: set its client id and secret "
                  "(see README, Configuration)", file=sys.stderr)
            return 1
        client = clients[platform]
        try:
            if code is None and client.sandbox_root is not None:
                account = await connect_sandbox_account(store, client, account_id, http, display_name=name)
            else:
                if code is None:
                    state = secrets.token_urlsafe(16)  # the pasted redirect must carry it back
                    code = _ask_for_code(client.authorize_url(state), state)
                account = await connect_with_code(store, client, account_id, code, display_name=name)
        except (RedirectRefused, OAuthError) as exc:
            reason = exc.message if isinstance(exc, OAuthError) else str(exc)
            print(f"{platform.value} account {account_id} not connected: {reason}", file=sys.stderr)
            return 1
    login = f" as {IDENTITY[account.platform]} {account.remote_user_id}" if account.remote_user_id else ""
    print(f"connected {account.platform.value} account {account.account_id}{login}; scopes "
          f"{', '.join(account.scopes) or '-'}; token expires {_when(account.access_expires_at)}")
    return 0


async def remove(settings: Settings, platform: Platform, account_id: str) -> int:
    async with _store(settings) as store:
        removed = await store.remove(platform, account_id)
    print(f"removed {platform.value} account {account_id}: its tokens are deleted" if removed
          else f"no {platform.value} account {account_id}", file=sys.stdout if removed else sys.stderr)
    return 0 if removed else 1


async def rekey(settings: Settings) -> int:
    async with _store(settings) as store:
        count, left = await store.rekey()
    print(f"re-sealed {count} credential(s) with key {store.keyring.current!r}")
    if left:
        print(f"{left} credential(s) are still sealed with an older key: this key ring cannot open "
              "them, or a refresh held them; run it again, and keep the old keys until none is left",
              file=sys.stderr)
        return 1
    return 0


class RedirectRefused(Exception):
    """A pasted address that does not answer this sign-in, or carries no code."""


def _ask_for_code(url: str, state: str) -> str:
    """The code from what the operator pastes: the address the platform sent them back to, whose
    `state` must be the one in `url` (else it answers another sign-in, or is forged), or the
    bare code (nothing to check it against)."""
    print(f"Open this page, sign in and allow access:\n\n  {url}\n", file=sys.stderr)
    answer = input("Paste the address you were sent back to (or just the code): ").strip()
    if "://" not in answer and "?" not in answer:
        return answer
    query = parse_qs(urlsplit(answer).query)
    if query.get("state") != [state]:
        problem = ("carries no state, so it cannot be matched to this sign-in" if "state" not in query else
                   "carries a state other than this sign-in's: it answers another sign-in (an earlier "
                   "attempt, another operator's) or was not made by the platform")
        raise RedirectRefused(f"that address {problem}. Nothing was exchanged: open the page above, sign in "
                              "again and paste the whole address you are sent back to")
    if "code" not in query:
        raise RedirectRefused(f"no code in that address ({query.get('error', ['?'])[0]})")
    return query["code"][0]


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def _json(account: Account) -> dict[str, Any]:
    return {"platform": account.platform.value, "accountId": account.account_id,
            "displayName": account.display_name, "status": account.status.value,
            "statusReason": account.status_reason, "scopes": list(account.scopes),
            "remoteUserId": account.remote_user_id, "connectedAt": _when(account.connected_at),
            "accessExpiresAt": _when(account.access_expires_at),
            "refreshExpiresAt": _when(account.refresh_expires_at), "keyId": account.key_id}


def _table(accounts: list[Account]) -> str:
    header = ("platform", "account", "name", "status", "token expires", "key", "scopes", "reason")
    rows = [header] + [
        (a.platform.value, a.account_id, a.display_name or "-", a.status.value, _when(a.access_expires_at),
         a.key_id or "-", ",".join(a.scopes) or "-", a.status_reason or "")
        for a in accounts]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) if accounts else "no accounts"
