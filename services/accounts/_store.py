"""Accounts and their sealed tokens in Postgres. Tokens are decrypted only on the way out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts import Platform

from ._keyring import Keyring, KeyringError
from ._model import Account, AccountStatus, Credential, TokenGrant, first_credential, keep_alive_bounds

_ACCOUNT_COLUMNS = """a.platform, a.account_id, a.display_name, a.status, a.status_reason, a.scopes,
    a.remote_user_id, a.connected_at, c.access_expires_at, c.refresh_expires_at, c.key_id"""
_CREDENTIAL_COLUMNS = """a.status, a.status_reason, c.access_token, c.refresh_token, c.access_expires_at,
    c.refresh_expires_at, c.issued_at, c.version"""


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """An account's status with its credential (None when it has none, or when this key ring
    cannot open it: then `unreadable` says why)."""

    status: AccountStatus
    status_reason: str | None
    credential: Credential | None
    unreadable: str | None = None


class AccountStore:
    def __init__(self, pool: asyncpg.Pool, keyring: Keyring):
        self.pool = pool
        self.keyring = keyring

    # -- accounts ----------------------------------------------------------------------------

    async def add(self, platform: Platform, account_id: str, display_name: str = "") -> Account:
        """Register an account (status pending); adding a removed one brings it back as pending."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                """INSERT INTO accounts (platform, account_id, display_name) VALUES ($1, $2, $3)
                   ON CONFLICT (platform, account_id) DO UPDATE
                     SET status = 'pending', status_reason = NULL, updated_at = now(),
                         display_name = COALESCE(NULLIF(EXCLUDED.display_name, ''), accounts.display_name)
                     WHERE accounts.status = 'removed'
                   RETURNING account_id""",
                platform.value, account_id, display_name)
        if row is None:
            raise ValueError(f"{platform.value} account {account_id} is already added")
        account = await self.get(platform, account_id)
        assert account is not None
        return account

    async def get(self, platform: Platform, account_id: str) -> Account | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT {_ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN credentials c USING (platform, account_id)
                    WHERE a.platform = $1 AND a.account_id = $2""", platform.value, account_id)
        return _account(row) if row else None

    async def list(self, platform: Platform | None = None, *, include_removed: bool = False) -> list[Account]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT {_ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN credentials c USING (platform, account_id)
                    WHERE ($1::text IS NULL OR a.platform = $1) AND ($2 OR a.status <> 'removed')
                    ORDER BY a.platform, a.account_id""",
                platform.value if platform else None, include_removed)
        return [_account(r) for r in rows]

    async def connect(self, platform: Platform, account_id: str, grant: TokenGrant, now: datetime,
                      display_name: str = "",
                      identity_check: Callable[[str | None], None] | None = None) -> Account:
        """Store a fresh grant from a code exchange: the account is connected (added if new).

        `identity_check` is called, under the account's row lock, with the identity the account
        holds tokens for (its `remote_user_id` while connected or needing a reconnect; None when
        new, pending or removed); if it raises, nothing is written and the old tokens stay.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            if identity_check is not None:
                # the row first (a concurrent first connect waits here), then its lock
                await conn.execute(
                    """INSERT INTO accounts (platform, account_id, display_name) VALUES ($1, $2, $3)
                       ON CONFLICT (platform, account_id) DO NOTHING""", platform.value, account_id, display_name)
                held = await conn.fetchrow(
                    "SELECT status, remote_user_id FROM accounts WHERE platform = $1 AND account_id = $2 FOR UPDATE",
                    platform.value, account_id)
                identity_check(held["remote_user_id"] if held["status"] in (AccountStatus.CONNECTED.value,
                                                                            AccountStatus.NEEDS_RECONNECT.value)
                               else None)
            await conn.execute(
                """INSERT INTO accounts (platform, account_id, display_name, status, scopes, remote_user_id,
                                         connected_at)
                   VALUES ($1, $2, $3, 'connected', $4, $5, $6)
                   ON CONFLICT (platform, account_id) DO UPDATE
                     SET status = 'connected', status_reason = NULL, scopes = EXCLUDED.scopes,
                         remote_user_id = EXCLUDED.remote_user_id, connected_at = EXCLUDED.connected_at,
                         display_name = COALESCE(NULLIF(EXCLUDED.display_name, ''), accounts.display_name),
                         updated_at = now()""",
                platform.value, account_id, display_name, list(grant.scopes), grant.remote_user_id, now)
            version = await conn.fetchval(
                "SELECT version FROM credentials WHERE platform = $1 AND account_id = $2 FOR UPDATE",
                platform.value, account_id)
            await self._write(conn, platform, account_id, first_credential(grant, now, (version or 0) + 1))
        account = await self.get(platform, account_id)
        assert account is not None
        return account

    async def remove(self, platform: Platform, account_id: str) -> bool:
        """Mark removed and destroy its tokens; False when there is no such account."""
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                """UPDATE accounts SET status = 'removed', status_reason = 'removed by an operator',
                       updated_at = now() WHERE platform = $1 AND account_id = $2""",
                platform.value, account_id)
            await conn.execute("DELETE FROM credentials WHERE platform = $1 AND account_id = $2",
                               platform.value, account_id)
        return done != "UPDATE 0"

    # -- credentials (the token source uses these inside its own transactions) ----------------

    async def read(self, conn: asyncpg.Connection, platform: Platform, account_id: str, *,
                   for_update: bool = False) -> StoredAccount | None:
        """The account and its credential; `for_update` first takes the account's row lock (held
        to the end of the transaction), so what is read is what the last lock holder committed."""
        if for_update:
            # Its own statement: in one statement with the join, a wait on the lock would still
            # read the credential as of before the wait (Postgres re-reads only the locked row).
            await conn.execute("SELECT 1 FROM accounts WHERE platform = $1 AND account_id = $2 FOR UPDATE",
                               platform.value, account_id)
        row = await conn.fetchrow(
            f"""SELECT {_CREDENTIAL_COLUMNS}
               FROM accounts a LEFT JOIN credentials c USING (platform, account_id)
               WHERE a.platform = $1 AND a.account_id = $2""",
            platform.value, account_id)
        return self._stored(row, platform, account_id) if row is not None else None

    async def read_many(self, conn: asyncpg.Connection, keys: list[tuple[Platform, str]]
                        ) -> list[StoredAccount | None]:
        """`read` for many accounts in one statement (no locks): one answer per key, in order."""
        rows = await conn.fetch(
            f"""SELECT w.platform, w.account_id, {_CREDENTIAL_COLUMNS}
               FROM unnest($1::text[], $2::text[]) AS w (platform, account_id)
               JOIN accounts a USING (platform, account_id)
               LEFT JOIN credentials c USING (platform, account_id)""",
            [p.value for p, _ in keys], [a for _, a in keys])
        found = {(row["platform"], row["account_id"]): row for row in rows}
        answers = []
        for platform, account_id in keys:
            row = found.get((platform.value, account_id))
            answers.append(self._stored(row, platform, account_id) if row is not None else None)
        return answers

    def _stored(self, row: asyncpg.Record, platform: Platform, account_id: str) -> StoredAccount:
        status, reason = AccountStatus(row["status"]), row["status_reason"]
        if row["access_token"] is None:
            return StoredAccount(status, reason, None)
        try:
            credential = Credential(
                access_token=self.keyring.open(row["access_token"], _context(platform, account_id, "access")),
                refresh_token=self.keyring.open(row["refresh_token"], _context(platform, account_id, "refresh"))
                if row["refresh_token"] is not None else None,
                access_expires_at=row["access_expires_at"], refresh_expires_at=row["refresh_expires_at"],
                issued_at=row["issued_at"], version=row["version"])
        except KeyringError as error:  # this account's alone: the others read with it are fine
            return StoredAccount(status, reason, None, unreadable=str(error))
        return StoredAccount(status, reason, credential)

    async def write(self, conn: asyncpg.Connection, platform: Platform, account_id: str,
                    credential: Credential) -> None:
        await self._write(conn, platform, account_id, credential)

    async def mark_needs_reconnect(self, conn: asyncpg.Connection, platform: Platform, account_id: str,
                                   reason: str) -> None:
        await conn.execute(
            """UPDATE accounts SET status = 'needs_reconnect', status_reason = $3, updated_at = now()
               WHERE platform = $1 AND account_id = $2 AND status = 'connected'""",
            platform.value, account_id, reason[:500])

    async def keep_alive_candidates(self, platform: Platform, now: datetime, *, after: str = "",
                                    limit: int = 100) -> list[str]:
        """Connected accounts (ids after `after`, in order) whose tokens may be due a keep-alive
        refresh: the refresher decides, under the row lock, with the tokens opened."""
        access_by, issued_by, refresh_by = keep_alive_bounds(platform, now)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT a.account_id FROM accounts a JOIN credentials c USING (platform, account_id)
                   WHERE a.platform = $1 AND a.status = 'connected' AND a.account_id > $2
                     AND (c.access_expires_at <= $3 OR c.issued_at <= $4 OR c.refresh_expires_at <= $5)
                   ORDER BY a.account_id LIMIT $6""",
                platform.value, after, access_by, issued_by, refresh_by, limit)
        return [row["account_id"] for row in rows]

    async def rekey(self, batch: int = 200, passes: int = 3) -> tuple[int, int]:
        """Re-seal every credential not under the current key: (how many were re-sealed, how
        many are left under an old key). Left are those this key ring cannot open, and those a
        refresh held locked through every pass (a refresh re-seals with its process's key)."""
        done = left = 0
        for attempt in range(passes):
            if attempt:
                await asyncio.sleep(0.5)  # a refresh holding a row ends its transaction meanwhile
            done += await self._rekey_pass(batch)
            async with self.pool.acquire() as conn:
                left = await conn.fetchval("SELECT count(*) FROM credentials WHERE key_id <> $1",
                                           self.keyring.current)
            if not left:
                break
        return done, left

    async def _rekey_pass(self, batch: int) -> int:
        done, after = 0, ("", "")
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """SELECT platform, account_id FROM credentials
                       WHERE key_id <> $1 AND (platform, account_id) > ($2, $3)
                       ORDER BY platform, account_id LIMIT $4 FOR UPDATE SKIP LOCKED""",
                    self.keyring.current, *after, batch)
                for row in rows:
                    platform = Platform(row["platform"])
                    stored = await self.read(conn, platform, row["account_id"])
                    if stored is None or stored.credential is None:
                        continue  # this key ring cannot open it: left for `rekey` to count
                    # same version: re-sealing changes no token, so a refresher's view stays right
                    await self._write(conn, platform, row["account_id"], stored.credential)
                    done += 1
            if len(rows) < batch:
                return done
            after = (rows[-1]["platform"], rows[-1]["account_id"])

    async def _write(self, conn: asyncpg.Connection, platform: Platform, account_id: str,
                     credential: Credential) -> None:
        seal = self.keyring.seal
        refresh = (seal(credential.refresh_token, _context(platform, account_id, "refresh"))
                   if credential.refresh_token is not None else None)
        await conn.execute(
            """INSERT INTO credentials (platform, account_id, access_token, refresh_token, key_id,
                                        access_expires_at, refresh_expires_at, issued_at, version)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (platform, account_id) DO UPDATE
                 SET access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
                     key_id = EXCLUDED.key_id, access_expires_at = EXCLUDED.access_expires_at,
                     refresh_expires_at = EXCLUDED.refresh_expires_at, issued_at = EXCLUDED.issued_at,
                     version = EXCLUDED.version""",
            platform.value, account_id,
            seal(credential.access_token, _context(platform, account_id, "access")), refresh,
            self.keyring.current, credential.access_expires_at, credential.refresh_expires_at,
            credential.issued_at, credential.version)


def _context(platform: Platform, account_id: str, field: str) -> str:
    """Bound into each ciphertext: a sealed token only opens as this account's, for this field."""
    return f"{platform.value}/{account_id}/{field}"


def _account(row: asyncpg.Record) -> Account:
    return Account(
        platform=Platform(row["platform"]), account_id=row["account_id"], display_name=row["display_name"],
        status=AccountStatus(row["status"]), status_reason=row["status_reason"], scopes=tuple(row["scopes"]),
        remote_user_id=row["remote_user_id"], connected_at=row["connected_at"],
        access_expires_at=row["access_expires_at"], refresh_expires_at=row["refresh_expires_at"],
        key_id=row["key_id"])
