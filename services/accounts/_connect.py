"""Connecting an account: the OAuth code exchange, and the sandbox's automatic round trip."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx

from contracts import Platform
from services.runtime import Settings, apply_migrations, create_pool

from ._errors import OAuthError, OAuthFailure
from ._keyring import Keyring
from ._model import Account
from ._oauth import OAuthClient, oauth_client, oauth_http_client
from ._store import AccountStore


def oauth_clients(settings: Settings, http: httpx.AsyncClient) -> dict[Platform, OAuthClient]:
    """A client per platform with a configured app; against the sandbox when one is set."""
    return {platform: oauth_client(platform, http, app, settings.sandbox_url)
            for platform, app in settings.accounts.oauth_apps.items()}


# what each platform calls the identity behind a login (`remote_user_id`)
IDENTITY = {Platform.TIKTOK: "TikTok user", Platform.INSTAGRAM: "Instagram user",
            Platform.YOUTUBE: "YouTube channel"}
# a YouTube channel id: `UC` and 22 base64url characters
_CHANNEL_ID = re.compile(r"UC[A-Za-z0-9_-]{22}")


async def connect_with_code(store: AccountStore, client: OAuthClient, account_id: str, code: str, *,
                            display_name: str = "", now: datetime | None = None) -> Account:
    """Exchange an authorization code and store the tokens: the account is connected.

    Refused, with nothing stored, when the login is not the account's: an Instagram user other
    than the account id; a YouTube channel other than the account id when that is a channel id;
    and, for an account that holds tokens, an identity other than the one it was connected as
    (`autopost accounts remove` it first to connect it as someone else).
    """
    grant = await client.exchange_code(code)
    platform, login = client.platform, grant.remote_user_id
    if platform is Platform.INSTAGRAM and login and login != account_id:
        # the Graph API addresses an Instagram account by its user id: a mismatch would post elsewhere
        raise OAuthError(OAuthFailure.REJECTED, "account_mismatch",
                         f"this login is Instagram user {login}, not {account_id}")
    if platform is Platform.YOUTUBE and _CHANNEL_ID.fullmatch(account_id) and login != account_id:
        # named by its channel id: only that channel's owner may connect it
        raise OAuthError(OAuthFailure.REJECTED, "account_mismatch",
                         f"this login's YouTube channel is {login}, not {account_id}: nothing was stored; "
                         f"sign in with the Google account (or brand account) that owns {account_id}")

    def same_identity(held: str | None) -> None:
        if held is None or held == login:
            return
        what = IDENTITY[platform]
        if login is None:
            raise OAuthError(OAuthFailure.REJECTED, "identity_unknown",
                             f"{platform.value} did not say which {what} this login is, so it cannot be "
                             f"checked against {held}, the one {account_id} is connected as: nothing was stored")
        raise OAuthError(OAuthFailure.REJECTED, "identity_changed",
                         f"it is connected as {what} {held}, but this login is {what} {login}: nothing was "
                         f"stored and its tokens are unchanged. Sign in as {held}; or, if it is to post as "
                         f"{login} from now on, run `autopost accounts remove {platform.value} {account_id}` "
                         "first, then connect it again")

    return await store.connect(platform, account_id, grant, now or datetime.now(timezone.utc),
                               display_name, identity_check=same_identity)


async def connect_sandbox_account(store: AccountStore, client: OAuthClient, account_id: str,
                                  http: httpx.AsyncClient, *, display_name: str = "") -> Account:
    """authorize → code → token against the sandbox, as the account's owner would by hand."""
    code = await sandbox_authorization_code(client, http, account_id)
    return await connect_with_code(store, client, account_id, code, display_name=display_name)


async def sandbox_authorization_code(client: OAuthClient, http: httpx.AsyncClient, account_id: str) -> str:
    """The code the sandbox's authorize page redirects back with, `account_id` signed in.

    The sandbox signs in the user named by its `sandbox_user` parameter and redirects straight
    back; no real platform has such a parameter.
    """
    if client.sandbox_root is None:
        raise ValueError("automatic authorization works against the sandbox only")
    state = secrets.token_urlsafe(16)
    response = await http.get(client.authorize_url(state, sandbox_user=account_id), follow_redirects=False)
    location = response.headers.get("location", "")
    if response.status_code not in (302, 303) or not location:
        raise OAuthError(OAuthFailure.REJECTED, f"http_{response.status_code}",
                         f"{client.platform.value} sandbox did not redirect back from authorize")
    query = parse_qs(urlsplit(location).query)
    if query.get("state") != [state]:
        raise OAuthError(OAuthFailure.REJECTED, "state_mismatch", "the redirect carries another state")
    if "code" not in query:
        raise OAuthError(OAuthFailure.REJECTED, query.get("error", ["no_code"])[0],
                         f"{client.platform.value} sandbox refused the authorization")
    return query["code"][0]


async def connect_sandbox_accounts(settings: Settings, accounts: Iterable[tuple[Platform | str, str]], *,
                                   concurrency: int = 16) -> list[Account]:
    """Connect every (platform, account id) through the sandbox's OAuth flow, in `settings`' database.

    What the dev stack, the demo and the tests use to have accounts to publish with.
    """
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        store = AccountStore(pool, Keyring.parse(settings.accounts.credential_keys))
        limit = asyncio.Semaphore(concurrency)
        async with oauth_http_client() as http:
            clients = oauth_clients(settings, http)

            async def connect(platform: Platform | str, account_id: str) -> Account:
                async with limit:
                    return await connect_sandbox_account(store, clients[Platform(platform)], account_id, http)

            return list(await asyncio.gather(*(connect(p, a) for p, a in accounts)))
    finally:
        await pool.close()
