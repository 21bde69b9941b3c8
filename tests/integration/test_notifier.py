"""The notifier: one delivery per alert to every webhook, retried, and dead letters kept."""

import asyncio
import base64
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timezone

import asyncpg
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts import AdminAlert, AlertKind, DeadLetter, Platform, Topics
from harness import Pipeline, produce, settings_for, wait_for
from services.runtime import AsgiServer, NotifierSettings

pytestmark = pytest.mark.integration


async def webhook_receiver(stack: AsyncExitStack, fail_first: int) -> tuple[str, list]:
    received: list[tuple[str, dict]] = []
    failures = {"left": fail_first}

    async def hook(request: Request) -> Response:
        if failures["left"]:
            failures["left"] -= 1
            return Response(status_code=503)
        received.append((request.path_params["name"], orjson.loads(await request.body())))
        return Response(status_code=204)

    server = AsgiServer(Starlette(routes=[Route("/{name}", hook, methods=["POST"])]), "127.0.0.1", 0)
    await server.start()
    stack.push_async_callback(server.stop)
    return f"http://127.0.0.1:{server.port}", received


def alert() -> AdminAlert:
    target_id = uuid.uuid4()
    return AdminAlert(
        alert_id=uuid.uuid5(target_id, "attempts_exhausted:6"), kind=AlertKind.ATTEMPTS_EXHAUSTED,
        reason="internal_error", message="tiktok target of post p-1 gave up", platform=Platform.TIKTOK,
        account_id="acct", post_id=uuid.uuid4(), target_id=target_id,
        last_error={"code": "internal_error", "message": "boom"}, trace_id="ab" * 16,
        raised_at=datetime.now(timezone.utc),
    )


async def test_each_alert_reaches_every_webhook_once_even_after_failures(kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        base, received = await webhook_receiver(stack, fail_first=2)
        hooks = orjson.dumps([{"name": "ops", "url": f"{base}/ops"},
                              {"name": "chat", "url": f"{base}/chat", "format": "slack"}]).decode()
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
        settings = replace(settings, notifier=NotifierSettings(
            webhooks=hooks, jaeger_url="http://jaeger:16686", retry_base_seconds=0.2))
        await stack.enter_async_context(Pipeline(settings, ["notifier"]))

        first = alert()
        # the same alert three times (a redelivery, a replayed change): one notification
        await produce(kafka_bootstrap, topic_prefix + Topics.ALERTS, [first.to_bytes()] * 3,
                      key=str(first.target_id).encode())
        letter = DeadLetter(reason="invalid_json", message="payload is not JSON", consumer="queue.results",
                            source_topic=topic_prefix + Topics.PUBLISH_RESULT, source_partition=1,
                            source_offset=42, payload_base64=base64.b64encode(b"{oops").decode(),
                            headers={"traceparent": f"00-{'cd' * 16}-{'ef' * 8}-01"},
                            failed_at=datetime.now(timezone.utc))
        await produce(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, [letter.to_bytes()] * 2, key=b"k")
        await wait_for(lambda: asyncio.sleep(0, len(received) >= 4), 30, "four deliveries")
        await asyncio.sleep(1.0)  # nothing more arrives

        conn = await asyncpg.connect(database_url)
        try:
            dead = await conn.fetch("SELECT * FROM dead_letters")
            deliveries = await conn.fetch("SELECT * FROM alert_deliveries WHERE delivered_at IS NOT NULL")
        finally:
            await conn.close()

    assert len(received) == 4 and len(deliveries) == 4, received
    ops = [body for name, body in received if name == "ops"]
    chat = [body for name, body in received if name == "chat"]
    exhausted = next(b for b in ops if b["kind"] == "attempts_exhausted")
    assert exhausted["alertId"] == str(first.alert_id) and exhausted["platform"] == "tiktok"
    assert exhausted["lastError"]["code"] == "internal_error"
    assert exhausted["traceUrl"] == f"http://jaeger:16686/trace/{'ab' * 16}"
    dead_alert = next(b for b in ops if b["kind"] == "dead_letter")
    assert dead_alert["traceId"] == "cd" * 16 and "autopost dlq show" in dead_alert["message"]
    assert all("text" in body and "blocks" in body for body in chat), "Slack-compatible bodies"
    assert len(dead) == 1 and bytes(dead[0]["payload"]) == b"{oops"


async def test_a_dead_letter_read_twice_is_kept_once_even_without_a_source_position(database_url):
    from datetime import datetime, timedelta, timezone

    from contracts import DeadLetter
    from services.notifier.store import store_dead_letters
    from services.runtime import apply_migrations, create_pool

    at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    never_consumed = DeadLetter(reason="post_not_queued", message="m", consumer="planner.recovery",
                                source_topic="post.planned", payload_base64="eyJwb3N0SWQiOiAiMSJ9", failed_at=at)
    consumed = never_consumed.model_copy(update={"consumer": "queue.planned", "source_partition": 0,
                                                 "source_offset": 7, "reason": "invalid_json"})
    again_later = never_consumed.model_copy(update={"failed_at": at + timedelta(hours=1)})  # a new failure
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            first = await store_dead_letters(conn, [never_consumed, consumed])
            redelivered = await store_dead_letters(conn, [never_consumed, consumed])
            later = await store_dead_letters(conn, [again_later])
            rows = await conn.fetchval("SELECT count(*) FROM dead_letters")
    finally:
        await pool.close()
    assert (len(first), redelivered, len(later), rows) == (2, [], 1, 3)


async def test_copies_kept_before_the_unconsumed_index_are_dropped_when_it_is_built(database_url):
    from datetime import datetime, timezone

    from services.runtime import apply_migrations

    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        # as a database was before migration 010: the index absent, a letter kept twice, another once
        await conn.execute("DROP INDEX dead_letters_unconsumed")
        await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '010%'")
        at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
        await conn.executemany(
            """INSERT INTO dead_letters (consumer, reason, message, source_topic, payload, failed_at)
               VALUES ('planner.recovery', 'post_not_queued', 'm', 'post.planned', $1, $2)""",
            [(b"one", at), (b"one", at), (b"two", at)])
        assert await apply_migrations(conn) == ["010_dead_letters_unconsumed"]
        kept = [r["payload"] for r in await conn.fetch("SELECT payload FROM dead_letters ORDER BY id")]
    finally:
        await conn.close()
    assert kept == [b"one", b"two"]


def test_each_dead_letter_stored_has_an_alert_of_its_own():
    from datetime import datetime, timezone

    from contracts import DeadLetter
    from services.notifier.handlers import dead_letter_alert

    at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    letter = DeadLetter(reason="post_not_queued", message="m", consumer="planner.recovery",
                        source_topic="post.planned", payload_base64="eyJ9", failed_at=at)  # no position
    first, second = dead_letter_alert(1, letter, at), dead_letter_alert(2, letter, at)
    assert first.alert_id != second.alert_id, "two letters without a position are still two alerts"
    assert dead_letter_alert(1, letter, at).alert_id == first.alert_id, "the same letter, the same alert"


async def test_an_unreadable_alert_or_dead_letter_is_kept_and_alerted_not_dropped(
        kafka_bootstrap, topic_prefix, database_url):
    async with AsyncExitStack() as stack:
        base, received = await webhook_receiver(stack, fail_first=0)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
        settings = replace(settings, notifier=NotifierSettings(
            webhooks=orjson.dumps([{"name": "ops", "url": f"{base}/ops"}]).decode(), retry_base_seconds=0.2))
        await stack.enter_async_context(Pipeline(settings, ["notifier"]))
        good = alert()
        # an alert from a newer producer the contract refuses, and a letter that is not JSON;
        # the good alert in the same batch still goes out
        await produce(kafka_bootstrap, topic_prefix + Topics.ALERTS,
                      [b'{"alertId": "not-a-uuid"}', good.to_bytes()], key=b"a")
        await produce(kafka_bootstrap, topic_prefix + Topics.DEAD_LETTER, [b"\x00garbage"] * 1, key=b"d")
        await wait_for(lambda: asyncio.sleep(0, len(received) >= 3), 30, "three deliveries")
        await asyncio.sleep(1.0)  # a redelivery would add nothing
        conn = await asyncpg.connect(database_url)
        try:
            dead = await conn.fetch("SELECT * FROM dead_letters ORDER BY id")
        finally:
            await conn.close()
    kinds = sorted(body["kind"] for _, body in received)
    assert kinds == ["attempts_exhausted", "dead_letter", "dead_letter"], kinds
    assert {(row["consumer"], row["source_topic"], bytes(row["payload"])) for row in dead} == {
        ("notifier", topic_prefix + Topics.ALERTS, b'{"alertId": "not-a-uuid"}'),
        ("notifier", topic_prefix + Topics.DEAD_LETTER, b"\x00garbage"),
    }
