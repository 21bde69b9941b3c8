"""Accounts and tokens in Postgres against the sandbox's OAuth over HTTP: sealed at rest,
refreshed before expiry, one refresh when two publishers race, reconnect only on invalid_grant."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest
from starlette.responses import JSONResponse, Response

import sandbox
from contracts import AlertKind, Platform
from harness import connect_accounts, serve_sandbox_app, settings_for
from services.accounts import (
    AccessTokens,
    AccountStatus,
    AccountStore,
    AccountUnavailable,
    Keyring,
    RefreshFailed,
    TokenKeepAlive,
    new_key_entry,
    oauth_clients,
    oauth_http_client,
)
from services.runtime import AccountSettings, apply_migrations, create_pool

pytestmark = pytest.mark.integration


class Answer(sandbox.Faults):
    def __init__(self, operation: str, response: Response):
        self.operation, self.response = operation, response

    def before(self, operation, request):
        return self.response if operation == self.operation else None


class SlowPath:
    """Holds requests to one path for a while: two refreshers then truly overlap."""

    def __init__(self, app, path: str, seconds: float):
        self.app, self.path, self.seconds = app, path, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == self.path:
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


@asynccontextmanager
async def token_source(settings, alerts: list | None = None):
    """One publisher's view: its own pool and HTTP client (as a separate process has)."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    http = oauth_http_client()
    async def sink(alert):
        alerts.append(alert)

    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        store = AccountStore(pool, Keyring.parse(settings.accounts.credential_keys))
        yield AccessTokens(store, oauth_clients(settings, http), alerts=sink if alerts is not None else None), store
    finally:
        await http.aclose()
        await pool.close()


@asynccontextmanager
async def _pool(database_url: str):
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def setup(stack: AsyncExitStack, database_url: str, **sandbox_options):
    url, app = await serve_sandbox_app(stack, 0, **sandbox_options)
    settings = settings_for("unused:9092", "", database_url, url)
    return settings, app.state.sandbox.oauth, app


async def raw_credentials(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("SELECT * FROM credentials ORDER BY platform, account_id")
    finally:
        await conn.close()


async def set_expiry(database_url: str, account_id: str, seconds_from_now: float) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE credentials SET access_expires_at = now() + make_interval(secs => $2) "
                           "WHERE account_id = $1", account_id, seconds_from_now)
    finally:
        await conn.close()


async def test_connected_tokens_are_sealed_at_rest_and_re_sealed_on_rotation(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(p, "acme") for p in Platform])
        issued = {p: oauth.tokens_of(p.value, "acme") for p in Platform}
        rows = await raw_credentials(database_url)
        assert len(rows) == 3
        for row in rows:
            tokens = issued[Platform(row["platform"])]
            for token in tokens["access"] + tokens["refresh"]:
                assert token.encode() not in row["access_token"] and token.encode() not in (row["refresh_token"] or b"")
            assert row["key_id"] == "test" and Keyring.key_id_of(row["access_token"]) == "test"
        # rotation: a new key first, the old one kept readable, then everything re-sealed
        rotated = replace(settings, accounts=AccountSettings.for_sandbox(
            f"{new_key_entry('next')},{settings.accounts.credential_keys}"))
        async with token_source(rotated) as (tokens, store):
            assert await store.rekey() == (3, 0)
            assert await store.rekey() == (0, 0)
            for platform in Platform:
                assert await tokens.current(platform, "acme") in issued[platform]["access"]
        assert {row["key_id"] for row in await raw_credentials(database_url)} == {"next"}
        # the old key alone can no longer open them: it says which key is missing, and the
        # account stays connected, to be tried again once the key ring has the key
        async with token_source(settings) as (tokens, store):
            with pytest.raises(RefreshFailed, match="'next'") as raised:
                await tokens.current(Platform.TIKTOK, "acme")
            assert raised.value.code == "credential_unreadable"
            assert (await store.get(Platform.TIKTOK, "acme")).status is AccountStatus.CONNECTED


async def test_a_credential_the_key_ring_cannot_open_fails_its_own_account_only(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.TIKTOK, "old"), (Platform.TIKTOK, "other")])
        # a rotation half rolled out: a process with the new key first sealed one account's
        # refreshed tokens, and this process's key ring has only the old key
        rotated = replace(settings, accounts=AccountSettings.for_sandbox(
            f"{new_key_entry('next')},{settings.accounts.credential_keys}"))
        async with token_source(rotated) as (tokens, _):
            token = oauth.tokens_of("tiktok", "other")["access"][0]
            await tokens.replace_rejected(Platform.TIKTOK, "other", token)
        async with token_source(settings) as (tokens, store):
            got = await asyncio.gather(tokens.current(Platform.TIKTOK, "old"),
                                       tokens.current(Platform.TIKTOK, "other"), return_exceptions=True)
            resealed, left = await store.rekey(passes=1)  # this key ring cannot re-seal it either
    assert oauth.account_for("tiktok", got[0]) == "old", "read in the same statement, and unharmed"
    assert isinstance(got[1], RefreshFailed) and got[1].code == "credential_unreadable"
    assert (resealed, left) == (0, 1)


async def test_account_lifecycle_and_what_a_publisher_is_told(database_url):
    async with AsyncExitStack() as stack:
        settings, _, _ = await setup(stack, database_url)
        async with token_source(settings) as (tokens, store):
            await store.add(Platform.TIKTOK, "later", "Later Inc")
            with pytest.raises(ValueError, match="already added"):
                await store.add(Platform.TIKTOK, "later")
            with pytest.raises(AccountUnavailable) as pending:
                await tokens.current(Platform.TIKTOK, "later")
            with pytest.raises(AccountUnavailable) as unknown:
                await tokens.current(Platform.TIKTOK, "nobody")
            await connect_accounts(settings, [(Platform.TIKTOK, "later")])
            account = await store.get(Platform.TIKTOK, "later")
            assert (account.status, account.display_name, account.remote_user_id) == (
                AccountStatus.CONNECTED, "Later Inc", "open-later")
            assert "video.publish" in account.scopes and account.access_expires_at is not None
            assert await tokens.current(Platform.TIKTOK, "later")
            assert await store.remove(Platform.TIKTOK, "later")
            tokens._cache.clear()  # another process, or 30 s later
            with pytest.raises(AccountUnavailable) as removed:
                await tokens.current(Platform.TIKTOK, "later")
            assert await raw_credentials(database_url) == []  # its tokens are gone
            assert [a.status for a in await store.list(include_removed=True)] == [AccountStatus.REMOVED]
            assert await store.list() == []
    assert pending.value.code == unknown.value.code == removed.value.code == "account_not_connected"


async def test_refreshed_before_expiry_and_the_new_pair_replaces_the_old(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.TIKTOK, "acme")])
        first = oauth.tokens_of("tiktok", "acme")
        await set_expiry(database_url, "acme", 60)  # inside the ten-minute margin
        async with token_source(settings) as (tokens, _):
            token = await tokens.current(Platform.TIKTOK, "acme")
            assert oauth.calls["tiktok.refresh"] == 1
            assert token not in first["access"] and oauth.account_for("tiktok", token) == "acme"
            assert await tokens.current(Platform.TIKTOK, "acme") == token  # no second refresh
        assert oauth.calls["tiktok.refresh"] == 1
        assert first["refresh"][0] not in oauth.refresh, "TikTok rotated the refresh token"


@pytest.mark.parametrize("due", [False, True], ids=["both-refused", "both-due"])
async def test_two_publishers_refreshing_at_once_end_with_one_valid_pair(database_url, due):
    async with AsyncExitStack() as stack:
        settings, _, app = await setup(stack, database_url,
                                       wrap=lambda app: SlowPath(app, "/tiktok/v2/oauth/token/", 0.3))
        oauth = app.state.sandbox.oauth
        await connect_accounts(settings, [(Platform.TIKTOK, "racer")])
        stale = oauth.tokens_of("tiktok", "racer")["access"][0]
        exchanges = oauth.calls["tiktok.exchange"]
        alerts: list = []
        async with token_source(settings, alerts) as (a, _), token_source(settings, alerts) as (b, store):
            if due:
                await set_expiry(database_url, "racer", 30)
                results = await asyncio.gather(a.current(Platform.TIKTOK, "racer"),
                                               b.current(Platform.TIKTOK, "racer"))
            else:
                oauth.expire_access("tiktok", "racer")  # both got a 401 with the same token
                results = await asyncio.gather(a.replace_rejected(Platform.TIKTOK, "racer", stale),
                                               b.replace_rejected(Platform.TIKTOK, "racer", stale))
            account = await store.get(Platform.TIKTOK, "racer")
            # the stored refresh token is the live one: a later refresh works
            later = await b.replace_rejected(Platform.TIKTOK, "racer", results[0])
        assert oauth.calls["tiktok.refresh"] == 2 and oauth.calls["tiktok.exchange"] == exchanges
        assert results[0] == results[1] and oauth.account_for("tiktok", results[0]) == "racer"
        assert account.status is AccountStatus.CONNECTED and alerts == []
        assert oauth.account_for("tiktok", later) == "racer"
        assert len(oauth.tokens_of("tiktok", "racer")["refresh"]) == 1, "one valid pair"


async def test_a_transient_refresh_failure_never_disconnects(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.TIKTOK, "acme"), (Platform.YOUTUBE, "acme")])
        old = oauth.tokens_of("tiktok", "acme")["access"][0]
        alerts: list = []
        async with token_source(settings, alerts) as (tokens, store):
            for reply in (Response("down", 503), JSONResponse({"error": "server_error"}, 200),
                          JSONResponse({"error": "invalid_client"}, 401)):
                oauth.faults = Answer("tiktok.oauth_token", reply)
                with pytest.raises(RefreshFailed):
                    await tokens.replace_rejected(Platform.TIKTOK, "acme", old)
                assert (await store.get(Platform.TIKTOK, "acme")).status is AccountStatus.CONNECTED
            oauth.faults = sandbox.Faults()
            assert await tokens.replace_rejected(Platform.TIKTOK, "acme", old) != old
        assert alerts == []


async def test_a_planned_refresh_that_fails_leaves_the_token_in_use_while_it_lasts(database_url):
    class Down(sandbox.Faults):
        tried = 0

        def before(self, operation, request):
            if operation != "instagram.oauth_refresh":
                return None
            self.tried += 1
            return Response("down", 503)

    account = "17841400000000001"
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.INSTAGRAM, account)])
        old = oauth.tokens_of("instagram", account)["access"][0]
        conn = await asyncpg.connect(database_url)
        try:  # a token in its last week, old enough to refresh: the refresh is due
            await conn.execute("UPDATE credentials SET issued_at = now() - interval '53 days'")
        finally:
            await conn.close()
        await set_expiry(database_url, account, 6 * 86_400)
        oauth.faults = down = Down()
        async with token_source(settings, []) as (tokens, store):
            assert await tokens.current(Platform.INSTAGRAM, account) == old
            assert await tokens.current(Platform.INSTAGRAM, account) == old
            assert down.tried == 1, "tried again only after a while"
        await set_expiry(database_url, account, -1)  # expired: nothing to fall back on
        async with token_source(settings, []) as (tokens, store):
            with pytest.raises(RefreshFailed):
                await tokens.current(Platform.INSTAGRAM, account)
            assert down.tried == 2
            assert (await store.get(Platform.INSTAGRAM, account)).status is AccountStatus.CONNECTED


async def test_invalid_grant_needs_reconnect_and_raises_one_alert(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.YOUTUBE, "UCgone")])
        old = oauth.tokens_of("youtube", "UCgone")["access"][0]
        oauth.revoke("youtube", "UCgone")  # the user revoked the app, or a Testing app's 7 days ran out
        alerts: list = []
        async with token_source(settings, alerts) as (tokens, store):
            with pytest.raises(AccountUnavailable) as raised:
                await tokens.replace_rejected(Platform.YOUTUBE, "UCgone", old)
            account = await store.get(Platform.YOUTUBE, "UCgone")
            with pytest.raises(AccountUnavailable) as later:
                await tokens.current(Platform.YOUTUBE, "UCgone")
        async with token_source(settings, alerts) as (other, _):  # another publisher meets it too
            with pytest.raises(AccountUnavailable):
                await other.current(Platform.YOUTUBE, "UCgone")
    assert raised.value.code == later.value.code == "reconnect_needed"
    assert account.status is AccountStatus.NEEDS_RECONNECT and "invalid_grant" in account.status_reason
    assert [a.kind for a in alerts] == [AlertKind.RECONNECT_NEEDED] * 2
    assert len({a.alert_id for a in alerts}) == 1, "a repeat is the same alert"
    first = alerts[0]
    assert (first.platform, first.account_id, first.reason) == (Platform.YOUTUBE, "UCgone", "reconnect_needed")
    assert "autopost accounts connect youtube UCgone" in first.message


async def test_reconnecting_brings_an_account_back(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.TIKTOK, "back")])
        old = oauth.tokens_of("tiktok", "back")["access"][0]
        oauth.revoke("tiktok", "back")
        async with token_source(settings) as (tokens, store):
            with pytest.raises(AccountUnavailable):
                await tokens.replace_rejected(Platform.TIKTOK, "back", old)
            await connect_accounts(settings, [(Platform.TIKTOK, "back")])
            assert (await store.get(Platform.TIKTOK, "back")).status is AccountStatus.CONNECTED
            assert oauth.account_for("tiktok", await tokens.current(Platform.TIKTOK, "back")) == "back"


async def test_a_young_instagram_token_refused_cannot_be_refreshed_so_it_needs_reconnect(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        await connect_accounts(settings, [(Platform.INSTAGRAM, "1784")])
        token = oauth.tokens_of("instagram", "1784")["access"][0]
        async with token_source(settings) as (tokens, store):
            with pytest.raises(AccountUnavailable) as raised:
                await tokens.replace_rejected(Platform.INSTAGRAM, "1784", token)
            account = await store.get(Platform.INSTAGRAM, "1784")
    assert raised.value.code == "reconnect_needed" and account.status is AccountStatus.NEEDS_RECONNECT
    assert oauth.calls["instagram.refresh"] == 0, "Instagram refuses to refresh a token under a day old"


async def test_tokens_read_at_the_same_moment_are_one_statement_each_its_own(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        accounts = [(p, f"batch-{i}") for i in range(4) for p in Platform]
        await connect_accounts(settings, accounts)
        async with token_source(settings) as (tokens, store):
            read_batches: list[int] = []
            read_many = store.read_many

            async def counted(conn, keys):
                read_batches.append(len(keys))
                return await read_many(conn, keys)

            store.read_many = counted
            got = await asyncio.gather(*(tokens.current(p, a) for p, a in accounts))
            for (platform, account), token in zip(accounts, got):
                assert token in oauth.tokens_of(platform.value, account)["access"]
            assert read_batches == [len(accounts)], "one read for every account asked together"
            # an unknown account among known ones is its own refusal and spoils nothing
            async with store.pool.acquire() as conn:
                answers = await read_many(conn, [(Platform.TIKTOK, "batch-0"), (Platform.TIKTOK, "nobody"),
                                                 (Platform.YOUTUBE, "batch-3")])
            assert [a is not None for a in answers] == [True, False, True]
            assert answers[2].credential.access_token in oauth.tokens_of("youtube", "batch-3")["access"]
            with pytest.raises(AccountUnavailable) as raised:
                await tokens.current(Platform.TIKTOK, "nobody")
            assert raised.value.code == "account_not_connected"


async def age_credentials(database_url: str, account_id: str, **columns: str) -> None:
    """Set columns of an account's credential rows to SQL expressions (`issued_at="now() - ..."`)."""
    conn = await asyncpg.connect(database_url)
    try:
        sets = ", ".join(f"{column} = {expression}" for column, expression in columns.items())
        await conn.execute(f"UPDATE credentials SET {sets} WHERE account_id = $1", account_id)
    finally:
        await conn.close()


async def test_idle_accounts_are_refreshed_before_their_authorization_lapses(database_url):
    async with AsyncExitStack() as stack:
        settings, oauth, _ = await setup(stack, database_url)
        instagram = "17841400000000002"
        await connect_accounts(settings, [(Platform.TIKTOK, "idle"), (Platform.TIKTOK, "busy"),
                                          (Platform.YOUTUBE, "UCidle"), (Platform.YOUTUBE, "UCgone"),
                                          (Platform.INSTAGRAM, instagram)])
        # nothing posted for weeks: each one at its platform's deadline, "busy" refreshed lately
        await age_credentials(database_url, "idle", access_expires_at="now() - interval '20 days'",
                              issued_at="now() - interval '20 days'",
                              refresh_expires_at="now() + interval '10 days'")
        await age_credentials(database_url, "UCidle", issued_at="now() - interval '40 days'")
        await age_credentials(database_url, "UCgone", issued_at="now() - interval '40 days'")
        await age_credentials(database_url, instagram, issued_at="now() - interval '54 days'",
                              access_expires_at="now() + interval '6 days'")
        for token in oauth.tokens_of("instagram", instagram)["access"]:
            oauth.access[token].issued_at -= 54 * 86_400  # Instagram refreshes only a day-old token
        oauth.revoke("youtube", "UCgone")
        before = {a.account_id: a for a in await AccountStore(
            await stack.enter_async_context(_pool(database_url)), Keyring.parse(settings.accounts.credential_keys)
        ).list()}
        alerts: list = []
        async with token_source(settings, alerts) as (tokens, store):
            swept = {p: await TokenKeepAlive(tokens, p).sweep() for p in Platform}
            again = {p: await TokenKeepAlive(tokens, p).sweep() for p in Platform}
            after = {a.account_id: a for a in await store.list()}
            live = {p: await tokens.current(p, a) for p, a in
                    [(Platform.TIKTOK, "idle"), (Platform.YOUTUBE, "UCidle"), (Platform.INSTAGRAM, instagram)]}
    assert swept[Platform.TIKTOK] == {"refreshed": 1}, "the busy account is not due"
    assert swept[Platform.YOUTUBE] == {"refreshed": 1, "lost": 1}
    assert swept[Platform.INSTAGRAM] == {"refreshed": 1}
    assert all(not counts for counts in again.values()), "refreshed once: none is due any more"
    assert oauth.calls["tiktok.refresh"] == 1 and oauth.calls["instagram.refresh"] == 1
    assert after["idle"].refresh_expires_at > before["idle"].refresh_expires_at + timedelta(days=100)
    assert after[instagram].access_expires_at > before[instagram].access_expires_at + timedelta(days=50)
    assert after["busy"].access_expires_at == before["busy"].access_expires_at
    assert after["UCgone"].status is AccountStatus.NEEDS_RECONNECT
    assert [(a.kind, a.account_id) for a in alerts] == [(AlertKind.RECONNECT_NEEDED, "UCgone")]
    for platform, token in live.items():
        assert oauth.account_for(platform.value, token) is not None, "the refreshed token is the one in use"


async def test_a_refresh_whose_caller_is_cancelled_still_stores_the_rotated_pair(database_url):
    async with AsyncExitStack() as stack:
        settings, _, app = await setup(stack, database_url,
                                       wrap=lambda app: SlowPath(app, "/tiktok/v2/oauth/token/", 0.3))
        oauth = app.state.sandbox.oauth
        await connect_accounts(settings, [(Platform.TIKTOK, "cut")])
        stale = oauth.tokens_of("tiktok", "cut")["access"][0]
        async with token_source(settings, []) as (tokens, store):
            refresh = asyncio.ensure_future(tokens.replace_rejected(Platform.TIKTOK, "cut", stale))
            await asyncio.sleep(0.1)  # the request is with TikTok, which rotates the pair
            refresh.cancel()
            with pytest.raises(asyncio.CancelledError):
                await refresh
            for _ in range(50):
                if oauth.calls["tiktok.refresh"] == 1 and len(oauth.tokens_of("tiktok", "cut")["refresh"]) == 1:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the answer is stored meanwhile
        async with token_source(settings, []) as (tokens, store):
            token = await tokens.current(Platform.TIKTOK, "cut")
            later = await tokens.replace_rejected(Platform.TIKTOK, "cut", token)  # the stored refresh token works
            account = await store.get(Platform.TIKTOK, "cut")
    assert token != stale and oauth.account_for("tiktok", token) == "cut"
    assert oauth.account_for("tiktok", later) == "cut" and account.status is AccountStatus.CONNECTED
