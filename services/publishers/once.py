"""`autopost publish-once`: one item through the same client path the publisher uses, followed
to its end (published with its URL, or failed with the platform's reason): for checking a real
account, and for tests against a sandbox."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from contracts import (
    ContentType,
    ErrorClass,
    MediaRef,
    ObservedState,
    Platform,
    PublishError,
    PublishRequested,
    RemoteHandle,
)
from services.accounts import AccessTokens, AccountStore, Keyring, oauth_clients, oauth_http_client
from services.quotas import QuotaLedger
from services.runtime import Settings, create_pool

from .app import media_policy, platform_client, preflight_for
from .credentials import StoredTokens, TokenSource
from .platforms import Accepted, MemoryJournal, PlatformError, Published, media_client
from .platforms._media import is_video
from .status_reads import read_refused_for_good, status_of_failed_read

RETRIED = (ErrorClass.RETRYABLE, ErrorClass.RATE_LIMITED)


@dataclass
class OnceOutcome:
    platform: Platform
    account_id: str
    status: str  # published | failed | processing (still processing when the time ran out)
    url: str | None = None
    remote_handle: RemoteHandle | None = None
    error: PublishError | None = None
    detail: str | None = None
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform.value, "accountId": self.account_id, "status": self.status,
            "url": self.url, "remoteHandle": self.remote_handle.to_wire() if self.remote_handle else None,
            "error": self.error.to_wire() if self.error else None, "detail": self.detail,
            "attempts": self.attempts,
        }

    def describe(self) -> str:
        if self.status == "published":
            return f"published {self.url or '(no public URL: ' + (self.detail or 'private') + ')'}"
        if self.error is not None:
            return f"{self.status} {self.error.error_class.value} {self.error.code}: {self.error.message}"
        return f"{self.status}: {self.detail or 'no answer'}"


def media_ref(media: str) -> tuple[MediaRef, Path | None]:
    """A URL as given, or a local path as a file URL (and the folder it may be read from)."""
    if urlsplit(media).scheme in ("http", "https", "file"):
        return MediaRef(url=media), None
    path = Path(media).expanduser().resolve()
    return MediaRef(url=path.as_uri()), path.parent


async def publish_once(
    settings: Settings, platform: Platform | str, account_id: str, media: str, caption: str, *,
    hashtags: list[str] | None = None, content_type: ContentType | None = None,
    scheduled_time: datetime | None = None, timeout: float = 600.0, attempts: int = 3,
    tokens: TokenSource | None = None, poll_interval: float = 1.0,
) -> OnceOutcome:
    platform = Platform(platform)
    ref, folder = media_ref(media)
    if folder is not None:  # the operator named this file: it may be read
        platforms = settings.platforms
        settings = replace(settings, platforms=replace(platforms, media_roots=(*platforms.media_roots, str(folder))))
    if content_type is None:
        content_type = ContentType.VIDEO if is_video(ref, ContentType.VIDEO) else ContentType.IMAGE
    request = PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=account_id, attempt=1, content_type=content_type, caption=caption,
        hashtags=hashtags or [], media=[ref], scheduled_time=scheduled_time or datetime.now(timezone.utc),
    )
    if tokens is not None:  # no database: the rules are checked as ever, no quota is counted
        return await _once(settings, request, tokens, timeout, attempts, poll_interval)
    # the account's stored token, refreshed when due, and the quotas, as the publishers use them
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with oauth_http_client() as oauth_http:
            store = AccountStore(pool, Keyring.parse(settings.accounts.credential_keys))
            stored = StoredTokens(AccessTokens(store, oauth_clients(settings, oauth_http)))
            return await _once(settings, request, stored, timeout, attempts, poll_interval, QuotaLedger(pool))
    finally:
        await pool.close()


async def _once(settings: Settings, request: PublishRequested, tokens: TokenSource, timeout: float,
                attempts: int, poll_interval: float, ledger: QuotaLedger | None = None) -> OnceOutcome:
    platform, account_id = request.platform, request.account_id
    outcome = OnceOutcome(platform, account_id, "failed")
    deadline = time.monotonic() + timeout
    timeouts = httpx.Timeout(settings.platforms.timeout_seconds, connect=5.0)
    async with httpx.AsyncClient(timeout=timeouts) as http, \
            media_client(media_policy(settings), timeout=settings.platforms.timeout_seconds) as media_http:
        client = platform_client(settings, platform, http, media_http, preflighted=ledger is not None)
        journal = MemoryJournal()  # a retry below resumes what the first try created

        async def send(checked: PublishRequested, token: str) -> Accepted | Published:
            return await _publish(client, checked, token, journal, attempts, deadline, outcome)

        try:  # the rules, the token and (with a ledger) the quotas, as a publisher has them
            published = await preflight_for(settings, client, tokens, ledger).publish(request, send)
        except PlatformError as error:
            outcome.error, outcome.remote_handle = error.to_contract(), error.handle
            return outcome
        outcome.remote_handle = published.handle
        if isinstance(published, Published):
            outcome.status, outcome.url = "published", published.url
            return outcome
        token = await tokens.token_for(platform, account_id)
        return await _follow(client, published.handle, token, account_id, deadline, poll_interval, outcome)

async def _publish(client, request: PublishRequested, token: str, journal: MemoryJournal, attempts: int,
                   deadline: float, outcome: OnceOutcome) -> Accepted | Published:
    for attempt in range(1, attempts + 1):
        outcome.attempts = attempt
        try:
            return await client.publish(request.model_copy(update={"attempt": attempt}), token, journal)
        except PlatformError as error:
            wait = error.retry_after if error.retry_after is not None else 2.0 * attempt
            if error.error_class not in RETRIED or attempt == attempts or time.monotonic() + wait > deadline:
                raise
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def _follow(client, handle: RemoteHandle, token: str, account_id: str, deadline: float,
                  interval: float, outcome: OnceOutcome) -> OnceOutcome:
    """Status checks until the platform says published or failed, further apart each time."""
    while True:
        try:
            report = await client.check_status(handle, token, account_id)
        except PlatformError as error:
            report = status_of_failed_read(error)  # a failed look, not a failed post
            if read_refused_for_good(error):  # asking again cannot tell more
                outcome.status, outcome.detail = "processing", report.detail
                return outcome
        outcome.detail = report.detail
        if report.state is ObservedState.PUBLISHED:
            outcome.status, outcome.url = "published", report.url
            return outcome
        if report.state is ObservedState.FAILED:
            outcome.error = report.error
            return outcome
        if time.monotonic() + interval > deadline:
            outcome.status = "processing"
            return outcome
        await asyncio.sleep(interval)
        interval = min(interval * 2, 15.0)
