"""`autopost accounts add | ls | connect | remove | rekey` against Postgres and the sandbox."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import orjson
import pytest

from harness import serve_sandbox_app
from services.accounts import new_key_entry
from services.cli import main

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
