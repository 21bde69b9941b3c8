"""Publishers with stored credentials and quotas, on the real broker and Postgres, against the
sandbox over HTTP: refresh once on a 401, reconnect on invalid_grant, defer over quota, refuse
what breaks a rule, and never let a token out (logs, spans, messages)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timezone

import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import (
    AdminAlert,
    AlertKind,
    ContentType,
    ErrorClass,
    MediaRef,
    ObservedState,
    Platform,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    StatusObserved,
    StatusRequested,
    Topics,
)
from harness import Pipeline, connect_accounts, produce, read_topic, serve_sandbox_app, settings_for
from services.runtime import SANDBOX_OAUTH_SECRET, QuotaSettings

pytestmark = pytest.mark.integration


def request(platform: Platform, account: str, sandbox_url: str, **media) -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=platform,
        account_id=account, attempt=1, content_type=ContentType.VIDEO, caption="credentials test",
        media=[MediaRef(url=f"{sandbox_url}/media/v.mp4?bytes=300000", mime_type="video/mp4", **media)],
        scheduled_time=datetime.now(timezone.utc))


async def publish(bootstrap: str, prefix: str, message: PublishRequested, seen: int) -> PublishResult:
    """Send one request and wait for its result (the `seen`+1-th on the topic)."""
    await produce(bootstrap, prefix + Topics.publish_requested(message.platform), [message.to_bytes()],
                  key=message.account_id.encode())
    records = await read_topic(bootstrap, prefix + Topics.PUBLISH_RESULT, seen + 1)
    results = {r.target_id: r for r in (PublishResult.from_bytes(x.value) for x in records)}
    return results[message.target_id]


def leaks(secrets: set[str], texts: list[str]) -> list[str]:
    return [secret for secret in secrets for text in texts if secret in text]


async def test_refresh_on_401_reconnect_on_invalid_grant_and_no_token_anywhere(
        kafka_bootstrap, topic_prefix, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    exporter = InMemorySpanExporter()
    async with AsyncExitStack() as stack:
        url, app = await serve_sandbox_app(stack, 0)
        oauth = app.state.sandbox.oauth
        # one account, several calls: TikTok's per-minute caps would space them seconds apart
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, url,
                                publish_rates={Platform.TIKTOK: (600, 60.0)})
        await connect_accounts(settings, [(Platform.TIKTOK, "alice")])
        secrets = set(sum(oauth.tokens_of("tiktok", "alice").values(), []))
        await stack.enter_async_context(Pipeline(settings, ["publisher-tiktok"], exporter=exporter))

        first = await publish(kafka_bootstrap, topic_prefix, request(Platform.TIKTOK, "alice", url), 0)
        oauth.expire_access("tiktok", "alice")  # the next call gets a 401: refresh once, retry once
        second = await publish(kafka_bootstrap, topic_prefix, request(Platform.TIKTOK, "alice", url), 1)
        refreshes = oauth.calls["tiktok.refresh"]
        secrets |= set(sum(oauth.tokens_of("tiktok", "alice").values(), []))
        oauth.revoke("tiktok", "alice")  # and now the authorization is gone
        oauth.expire_access("tiktok", "alice")
        third = await publish(kafka_bootstrap, topic_prefix, request(Platform.TIKTOK, "alice", url), 2)
        alerts = await read_topic(kafka_bootstrap, topic_prefix + Topics.ALERTS, 1)
        results = await read_topic(kafka_bootstrap, topic_prefix + Topics.PUBLISH_RESULT, 3)
        conn = await asyncpg.connect(database_url)
        try:
            stored = await conn.fetch("SELECT access_token, refresh_token FROM credentials")
            status = await conn.fetchval("SELECT status FROM accounts WHERE account_id = 'alice'")
        finally:
            await conn.close()

    assert first.outcome is second.outcome is PublishOutcome.ACCEPTED
    assert refreshes == 1
    assert third.outcome is PublishOutcome.FAILED
    assert (third.error.error_class, third.error.code) == (ErrorClass.AUTH, "reconnect_needed")
    assert status == "needs_reconnect"
    [alert] = [AdminAlert.from_bytes(a.value) for a in alerts]
    assert (alert.kind, alert.platform, alert.account_id) == (AlertKind.RECONNECT_NEEDED, Platform.TIKTOK, "alice")
    assert alerts[0].key == b"tiktok:alice"

    secrets.add(SANDBOX_OAUTH_SECRET)
    assert len(secrets) >= 5  # two access tokens, two refresh tokens, the client secret
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any("needs reconnecting" in line for line in logged)
    assert leaks(secrets, logged) == [], "a token in the logs"
    spans = exporter.get_finished_spans()
    assert any(s.name == "refresh token tiktok" for s in spans)
    span_text = [f"{s.name} {dict(s.attributes)} {s.status.description} "
                 f"{[(e.name, dict(e.attributes)) for e in s.events]}" for s in spans]
    assert leaks(secrets, span_text) == [], "a token in a span"
    messages = [r.value.decode() + str(r.headers) for r in results + alerts]
    assert leaks(secrets, messages) == [], "a token in a message"
    at_rest = [bytes(v).decode("latin-1") for row in stored for v in row.values() if v is not None]
    assert leaks(secrets, at_rest) == [], "a token stored in the clear"


async def test_quotas_defer_rules_refuse_and_unconnected_accounts_are_auth_errors(
        kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        url, app = await serve_sandbox_app(stack, 0)
        state = app.state.sandbox
        settings = replace(settings_for(kafka_bootstrap, topic_prefix, database_url, url),
                           quotas=QuotaSettings(tiktok_daily_posts=1, youtube_daily_uploads=1))
        await connect_accounts(settings, [(Platform.TIKTOK, "t1"), (Platform.INSTAGRAM, "ig1"),
                                          (Platform.YOUTUBE, "yt1")])
        # Instagram says the account used its 50 posts of the last 24 h (made by another tool)
        for _ in range(50):
            state.instagram.published.add("ig1")
        names = [f"publisher-{p.value}" for p in Platform]
        await stack.enter_async_context(Pipeline(settings, names))

        sent = {
            "tiktok ok": request(Platform.TIKTOK, "t1", url),
            "tiktok over its cap": request(Platform.TIKTOK, "t1", url),
            "instagram over its cap": request(Platform.INSTAGRAM, "ig1", url),
            "youtube ok": request(Platform.YOUTUBE, "yt1", url),
            "youtube over the project's uploads": request(Platform.YOUTUBE, "yt1", url),
            "too short for tiktok": request(Platform.TIKTOK, "t1", url, duration_sec=1.0),
            "never connected": request(Platform.TIKTOK, "ghost", url),
        }
        for message in sent.values():  # in order: one partition per account keeps it
            await produce(kafka_bootstrap, topic_prefix + Topics.publish_requested(message.platform),
                          [message.to_bytes()], key=message.account_id.encode())
        records = await read_topic(kafka_bootstrap, topic_prefix + Topics.PUBLISH_RESULT, len(sent))
        stats = state.stats()

    by_target = {r.target_id: r for r in (PublishResult.from_bytes(x.value) for x in records)}
    got = {name: by_target[m.target_id] for name, m in sent.items()}
    assert got["tiktok ok"].outcome is got["youtube ok"].outcome is PublishOutcome.ACCEPTED

    def failed(name: str):
        result = got[name]
        assert result.outcome is PublishOutcome.FAILED, (name, result)
        return result.error

    tiktok = failed("tiktok over its cap")
    assert (tiktok.error_class, tiktok.code) == (ErrorClass.QUOTA, "quota_tiktok_direct_posts")
    assert 86_000 < tiktok.retry_after_sec <= 86_400 and "1 of 1 used" in tiktok.message
    instagram = failed("instagram over its cap")
    assert (instagram.error_class, instagram.code) == (ErrorClass.QUOTA, "quota_instagram_publishes")
    assert "50 of 50" in instagram.message and instagram.retry_after_sec > 0
    youtube = failed("youtube over the project's uploads")
    assert (youtube.error_class, youtube.code) == (ErrorClass.QUOTA, "quota_youtube_uploads")
    assert 0 < youtube.retry_after_sec <= 25 * 3600  # until midnight Pacific
    rule = failed("too short for tiktok")
    assert (rule.error_class, rule.code) == (ErrorClass.PERMANENT, "duration_out_of_range")
    ghost = failed("never connected")
    assert (ghost.error_class, ghost.code) == (ErrorClass.AUTH, "account_not_connected")
    # none of the refused ones reached the platform
    assert {p.value: (stats[p.value]["created"], stats[p.value]["published"]) for p in Platform} == {
        "tiktok": (1, 1), "instagram": (0, 0), "youtube": (1, 1)}


async def test_status_checks_spend_youtube_units_and_stop_when_the_day_s_units_are_gone(
        kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        url, _ = await serve_sandbox_app(stack, 0)
        settings = replace(settings_for(kafka_bootstrap, topic_prefix, database_url, url),
                           quotas=QuotaSettings(youtube_daily_units=1))
        await connect_accounts(settings, [(Platform.YOUTUBE, "yt1")])
        await stack.enter_async_context(Pipeline(settings, ["publisher-youtube", "poller"]))
        accepted = await publish(kafka_bootstrap, topic_prefix, request(Platform.YOUTUBE, "yt1", url), 0)
        checks = [StatusRequested(message_id=uuid.uuid4(), target_id=accepted.target_id, platform=Platform.YOUTUBE,
                                  account_id="yt1", attempt=1, remote_handle=accepted.remote_handle)
                  for _ in range(2)]
        for check in checks:  # one after the other: the first takes the day's only unit
            await produce(kafka_bootstrap, topic_prefix + Topics.status_requested(Platform.YOUTUBE),
                          [check.to_bytes()], key=b"yt1")
            await read_topic(kafka_bootstrap, topic_prefix + Topics.STATUS_OBSERVED,
                             checks.index(check) + 1)
        observed = [StatusObserved.from_bytes(r.value) for r in
                    await read_topic(kafka_bootstrap, topic_prefix + Topics.STATUS_OBSERVED, 2)]
    first, second = observed  # each answered before the next was asked
    assert first.state is ObservedState.PUBLISHED and first.url
    assert second.state is ObservedState.PROCESSING and "YouTube Data API units" in second.detail


async def test_a_publisher_keeps_its_idle_accounts_connected(kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        url, app = await serve_sandbox_app(stack, 0)
        oauth = app.state.sandbox.oauth
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, url)
        await connect_accounts(settings, [(Platform.YOUTUBE, "UCquiet"), (Platform.YOUTUBE, "UCbusy")])
        conn = await asyncpg.connect(database_url)
        try:  # nothing has posted for UCquiet for 40 days: Google drops a refresh token unused for six months
            await conn.execute("UPDATE credentials SET issued_at = now() - interval '40 days' "
                               "WHERE account_id = 'UCquiet'")
            await stack.enter_async_context(Pipeline(settings, ["publisher-youtube"]))
            for _ in range(100):
                if oauth.calls["youtube.refresh"]:
                    break
                await asyncio.sleep(0.1)
            issued = dict(await conn.fetch("SELECT account_id, issued_at > now() - interval '1 minute' "
                                           "FROM credentials"))
        finally:
            await conn.close()
    assert oauth.calls["youtube.refresh"] == 1
    assert issued == {"UCquiet": True, "UCbusy": True}
