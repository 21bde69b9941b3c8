"""`autopost accounts add | ls | connect | remove | rekey` against Postgres and the sandbox."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import orjson
import pytest
from starlette.responses import JSONResponse

import sandbox
from contracts import Platform
from harness import serve_sandbox_app
from services.accounts import Account, AccountStatus, new_key_entry, oauth_client, sandbox_authorization_code
from services.accounts import _commands
from services.cli import main
from services.runtime import AccountSettings

pytestmark = pytest.mark.integration


async def autopost(capsys, *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop
    out, err = capsys.readouterr()
    return code, out, err


async def test_accounts_commands(database_url, monkeypatch, capsys, tmp_path):
    async with AsyncExitStack() as stack:
        url, app = await serve_sandbox_app(stack, 0)
        keys = tmp_path / "credential-keys"  # as a mounted Secret would be
        keys.write_text(f"# current first\n{new_key_entry('k1')}\n")
        for name, value in {"DATABASE_URL": database_url, "AUTOPOST_SANDBOX_URL": url,
                            "AUTOPOST_CREDENTIAL_KEYS_FILE": str(keys)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AUTOPOST_CREDENTIAL_KEYS", raising=False)

        assert (await autopost(capsys, "accounts", "add", "youtube", "UCacme", "--name", "Acme"))[0] == 0
        code, _, err = await autopost(capsys, "accounts", "add", "youtube", "UCacme")
        assert code == 1 and "already added" in err
        code, out, _ = await autopost(capsys, "accounts", "connect", "youtube", "UCacme")
        assert code == 0 and "connected youtube account UCacme" in out
        assert (await autopost(capsys, "accounts", "connect", "tiktok", "acme"))[0] == 0
        oauth = app.state.sandbox.oauth
        secrets = sum((sum(oauth.tokens_of(p, a).values(), []) for p, a in
                       (("youtube", "UCacme"), ("tiktok", "acme"))), [])

        code, table, _ = await autopost(capsys, "accounts", "ls")
        assert code == 0 and "UCacme" in table and "Acme" in table and "connected" in table
        code, listing, _ = await autopost(capsys, "accounts", "ls", "--json")
        rows = {(r["platform"], r["accountId"]): r for r in orjson.loads(listing)}
        assert rows[("youtube", "UCacme")]["status"] == "connected" and rows[("tiktok", "acme")]["keyId"] == "k1"
        assert all(secret not in table + listing for secret in secrets), "ls never prints a token"

        keys.write_text(f"{new_key_entry('k2')}\n{keys.read_text()}")  # rotate: a new key first
        code, out, _ = await autopost(capsys, "accounts", "rekey")
        assert code == 0 and "re-sealed 2 credential(s) with key 'k2'" in out

        assert (await autopost(capsys, "accounts", "remove", "tiktok", "acme"))[0] == 0
        code, listing, _ = await autopost(capsys, "accounts", "ls", "tiktok", "--json", "--all")
        [removed] = orjson.loads(listing)
        assert (removed["status"], removed["keyId"]) == ("removed", None)
        assert (await autopost(capsys, "accounts", "remove", "tiktok", "nobody"))[0] == 1


async def test_connect_without_an_app_or_a_key_says_what_is_missing(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("AUTOPOST_SANDBOX_URL", raising=False)
    monkeypatch.delenv("AUTOPOST_CREDENTIAL_KEYS_FILE", raising=False)
    monkeypatch.setenv("AUTOPOST_CREDENTIAL_KEYS", new_key_entry())
    for name in ("TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = await autopost(capsys, "accounts", "connect", "tiktok", "acme")
    assert code == 1 and "no OAuth app configured for tiktok" in err


# -- who logs in, and which sign-in a pasted redirect answers --------------------------------------

async def sandbox_env(stack: AsyncExitStack, monkeypatch, database_url: str, tmp_path):
    url, app = await serve_sandbox_app(stack, 0)
    keys = tmp_path / "credential-keys"
    keys.write_text(f"{new_key_entry('k1')}\n")
    for name, value in {"DATABASE_URL": database_url, "AUTOPOST_SANDBOX_URL": url,
                        "AUTOPOST_CREDENTIAL_KEYS_FILE": str(keys)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUTOPOST_CREDENTIAL_KEYS", raising=False)
    return url, app


async def login_code(http: httpx.AsyncClient, url: str, platform: str, user: str) -> str:
    """A code from the sandbox's authorize page with `user` signed in (as a person would get)."""
    client = oauth_client(Platform(platform), http, AccountSettings.for_sandbox("").oauth_apps[Platform(platform)], url)
    return await sandbox_authorization_code(client, http, user)


async def identity_of(http: httpx.AsyncClient, url: str, platform: str, user: str) -> str:
    """What the platform calls `user`: TikTok's open_id, YouTube's channel id."""
    if platform == "tiktok":
        return f"open-{user}"
    client = oauth_client(Platform.YOUTUBE, http, AccountSettings.for_sandbox("").oauth_apps[Platform.YOUTUBE], url)
    token = (await client.exchange_code(await sandbox_authorization_code(client, http, user))).access_token
    reply = await http.get(f"{url}/youtube/youtube/v3/channels", params={"part": "id", "mine": "true"},
                           headers={"Authorization": f"Bearer {token}"})
    return reply.json()["items"][0]["id"]


async def listed(capsys, platform: str) -> dict[str, dict]:
    code, out, _ = await autopost(capsys, "accounts", "ls", platform, "--json")
    assert code == 0
    return {row["accountId"]: row for row in orjson.loads(out)}


async def credential_row(database_url: str, platform: str, account_id: str) -> dict | None:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM credentials WHERE platform = $1 AND account_id = $2",
                                  platform, account_id)
        return dict(row) if row else None
    finally:
        await conn.close()


@pytest.mark.parametrize("platform, account", [("tiktok", "acme"), ("youtube", "UCacme")])
async def test_reconnecting_as_another_login_is_refused_and_the_old_tokens_stay(
        database_url, monkeypatch, capsys, tmp_path, platform, account):
    async with AsyncExitStack() as stack:
        url, _ = await sandbox_env(stack, monkeypatch, database_url, tmp_path)
        http = await stack.enter_async_context(httpx.AsyncClient())
        owner, other = (await identity_of(http, url, platform, account),
                        await identity_of(http, url, platform, "mallory"))
        assert (await autopost(capsys, "accounts", "connect", platform, account))[0] == 0
        before = (await listed(capsys, platform))[account]
        assert before["remoteUserId"] == owner
        # the same login again is a reconnect like any other
        assert (await autopost(capsys, "accounts", "connect", platform, account))[0] == 0
        before, held = (await listed(capsys, platform))[account], await credential_row(database_url, platform, account)

        for status in ("connected", "needs_reconnect"):
            conn = await asyncpg.connect(database_url)
            await conn.execute("UPDATE accounts SET status = $3 WHERE platform = $1 AND account_id = $2",
                               platform, account, status)
            await conn.close()
            code, out, err = await autopost(capsys, "accounts", "connect", platform, account,
                                            "--code=" + await login_code(http, url, platform, "mallory"))
            assert code == 1 and not out, status
            assert owner in err and other in err and f"autopost accounts remove {platform} {account}" in err
            assert await credential_row(database_url, platform, account) == held, "the old tokens are untouched"
            assert (await listed(capsys, platform))[account] == {**before, "status": status}

        # meant: remove it first, then the other login connects it
        assert (await autopost(capsys, "accounts", "remove", platform, account))[0] == 0
        code, out, _ = await autopost(capsys, "accounts", "connect", platform, account,
                                      "--code=" + await login_code(http, url, platform, "mallory"))
        assert code == 0 and (await listed(capsys, platform))[account]["remoteUserId"] == other
        assert f"connected {platform} account {account} as " in out and other in out  # whom, is shown


async def test_a_youtube_account_named_by_its_channel_id_connects_that_channel_only(
        database_url, monkeypatch, capsys, tmp_path):
    async with AsyncExitStack() as stack:
        url, _ = await sandbox_env(stack, monkeypatch, database_url, tmp_path)
        http = await stack.enter_async_context(httpx.AsyncClient())
        alice, bob = await identity_of(http, url, "youtube", "alice"), await identity_of(http, url, "youtube", "bob")
        assert re.fullmatch(r"UC[\w-]{22}", alice)
        code, out, err = await autopost(capsys, "accounts", "connect", "youtube", alice,
                                        "--code=" + await login_code(http, url, "youtube", "bob"))
        assert code == 1 and alice in err and bob in err
        assert await listed(capsys, "youtube") == {}, "nothing was stored"
        code, out, _ = await autopost(capsys, "accounts", "connect", "youtube", alice,
                                      "--code=" + await login_code(http, url, "youtube", "alice"))
        assert code == 0 and (await listed(capsys, "youtube"))[alice]["remoteUserId"] == alice


async def test_a_pasted_redirect_must_answer_this_sign_in(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("AUTOPOST_SANDBOX_URL", raising=False)
    monkeypatch.delenv("AUTOPOST_CREDENTIAL_KEYS_FILE", raising=False)
    for name, value in {"AUTOPOST_CREDENTIAL_KEYS": new_key_entry(), "TIKTOK_CLIENT_KEY": "ck-test",
                        "TIKTOK_CLIENT_SECRET": "cs-test",
                        "AUTOPOST_OAUTH_REDIRECT_URI": "https://autopost.example/oauth/callback"}.items():
        monkeypatch.setenv(name, value)
    exchanged: list[str] = []

    async def exchange(store, client, account_id, code, *, display_name="", now=None):
        exchanged.append(code)  # no real TikTok here: the exchange itself is tested elsewhere
        return Account(Platform.TIKTOK, account_id, display_name, AccountStatus.CONNECTED, remote_user_id="open-x")

    def pasting(state_for):
        def answer(prompt: str = "") -> str:  # the operator opens the page shown and pastes where it led
            page = re.search(r"https://\S+", capsys.readouterr().err).group(0)
            state = parse_qs(urlsplit(page).query)["state"][0]
            return f"https://autopost.example/oauth/callback?code=c-1&state={state_for(state)}&scopes=video.publish"
        return answer

    monkeypatch.setattr(_commands, "connect_with_code", exchange)
    monkeypatch.setattr("builtins.input", pasting(lambda state: state + "x"))  # another sign-in's
    code, out, err = await autopost(capsys, "accounts", "connect", "tiktok", "acme")
    assert code == 1 and not out and "state" in err and exchanged == []
    monkeypatch.setattr("builtins.input", pasting(lambda state: state))
    code, out, _ = await autopost(capsys, "accounts", "connect", "tiktok", "acme")
    assert code == 0 and exchanged == ["c-1"] and "connected tiktok account acme" in out
    monkeypatch.setattr("builtins.input", lambda prompt="": "c-2")  # a bare code: nothing to check
    assert (await autopost(capsys, "accounts", "connect", "tiktok", "acme"))[0] == 0 and exchanged[-1] == "c-2"


class TokenReply(sandbox.Faults):
    """The sandbox's TikTok token endpoint answers with `body` instead."""

    def __init__(self, body: dict):
        self.body = body

    async def before(self, operation, request, account=None):
        return JSONResponse(self.body) if operation == "tiktok.oauth_token" else None


async def test_a_reconnect_whose_login_names_nobody_is_refused(database_url, monkeypatch, capsys, tmp_path):
    async with AsyncExitStack() as stack:
        url, app = await sandbox_env(stack, monkeypatch, database_url, tmp_path)
        assert (await autopost(capsys, "accounts", "connect", "tiktok", "acme"))[0] == 0
        held = await credential_row(database_url, "tiktok", "acme")
        app.state.sandbox.oauth.faults = TokenReply({  # a reply without its open_id
            "access_token": "act.nobody", "expires_in": 7200, "refresh_token": "rft.nobody",
            "refresh_expires_in": 86400, "scope": "video.publish", "token_type": "Bearer"})
        code, out, err = await autopost(capsys, "accounts", "connect", "tiktok", "acme")
        assert code == 1 and not out and "did not say" in err and "open-acme" in err
        assert await credential_row(database_url, "tiktok", "acme") == held
