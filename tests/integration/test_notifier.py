"""The notifier: one delivery per alert to every webhook, retried, and dead letters kept."""

import asyncio
import base64
import logging
import uuid
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
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


async def test_each_alert_reaches_every_webhook_once_even_after_failures(kafka_bootstrap, topic_prefix, database_url,
                                                                        caplog):
    caplog.set_level(logging.INFO, logger="httpx")
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
    # httpx logs every request at INFO: a webhook's URL (a Slack one's path is its secret) never
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("<webhook chat>" in m for m in requests), requests
    assert not any(f"{base}/" in m for m in requests), requests


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


async def test_a_new_record_at_a_reused_source_position_is_kept_and_a_copy_of_one_is_not(pool):
    from services.notifier.store import store_dead_letters

    at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    before = DeadLetter(reason="invalid_json", message="m", consumer="queue.planned", source_topic="post.planned",
                        source_partition=0, source_offset=7, key_base64="YQ==", payload_base64="b25l", failed_at=at)
    # the topic deleted and recreated: offsets from 0 again, another record failing at offset 7
    after = before.model_copy(update={"payload_base64": "dHdv", "failed_at": at + timedelta(days=1)})
    other_key = before.model_copy(update={"key_base64": "Yg=="})
    no_key = before.model_copy(update={"key_base64": None})
    empty_key = before.model_copy(update={"key_base64": ""})
    # the record failing again before its offset was committed: the same record, a new failure time
    failed_again = before.model_copy(update={"failed_at": at + timedelta(minutes=1)})
    async with pool.acquire() as conn:
        first = await store_dead_letters(conn, [before, after, other_key, no_key, empty_key])
        copies = await store_dead_letters(conn, [before, failed_again, after, other_key, no_key, empty_key])
        rows = await conn.fetchval("SELECT count(*) FROM dead_letters")
    assert (len(first), copies, rows) == (5, [], 5)


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


# --- one delivery's failure is its own; nothing is sent twice a second; no row locked through a send

async def delivery_loop(database_url: str, hooks, handler, **settings):
    """A DeliveryLoop over a fresh database, its webhooks answered by `handler` (no network)."""
    from services.notifier.delivery import DeliveryLoop
    from services.runtime import apply_migrations, create_pool

    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    loop = DeliveryLoop(pool, http, hooks, NotifierSettings(**{"retry_base_seconds": 0.01, **settings}))
    return pool, http, loop


async def stored(pool, alerts, hooks) -> None:
    from services.notifier.store import store_alerts

    async with pool.acquire() as conn:
        await store_alerts(conn, alerts, hooks, datetime.now(timezone.utc))


async def deliveries(pool) -> dict:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM alert_deliveries")
    return {(r["alert_id"], r["webhook"]): r for r in rows}


async def test_a_webhook_httpx_refuses_fails_alone_and_the_good_ones_are_not_sent_again(database_url):
    from services.notifier.webhooks import Webhook

    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(204)

    # as parse_webhooks accepted before: a URL httpx raises InvalidURL for, not an HTTPError
    hooks = [Webhook("good", "https://hooks.example/good"), Webhook("bad", "https://[::1/x"),
             Webhook("ctl", "https://hooks.example/a\x01b")]
    pool, http, loop = await delivery_loop(database_url, hooks, handler, retry_base_seconds=60.0)
    try:
        alerts = [alert(), alert()]
        await stored(pool, alerts, hooks)
        assert await loop.deliver_due() == 6
        for _ in range(3):  # no delivery still due now: nothing is sent again
            await loop.deliver_due()
        rows = await deliveries(pool)
    finally:
        await http.aclose()
        await pool.close()
    assert sent == ["/good", "/good"], sent
    for a in alerts:
        assert rows[(a.alert_id, "good")]["delivered_at"] is not None
        for name in ("bad", "ctl"):
            row = rows[(a.alert_id, name)]
            assert row["delivered_at"] is None and row["attempts"] == 1
            assert row["last_error"] == "InvalidURL", row["last_error"]
            assert row["next_attempt_at"] is not None and row["next_attempt_at"] > datetime.now(timezone.utc)


async def test_an_alert_stored_that_no_longer_reads_is_given_up_not_claimed_for_ever(database_url):
    from services.notifier.webhooks import Webhook

    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(orjson.loads(request.content)["alertId"])
        return httpx.Response(204)

    hooks = [Webhook("ops", "https://hooks.example/ops")]
    pool, http, loop = await delivery_loop(database_url, hooks, handler)
    try:
        good, broken = alert(), alert()
        await stored(pool, [good, broken], hooks)
        async with pool.acquire() as conn:
            await conn.execute("""UPDATE alerts SET payload = '{"alertId": "not-a-uuid"}'::jsonb
                                  WHERE alert_id = $1""", broken.alert_id)
        assert await loop.deliver_due() == 1
        assert await loop.deliver_due() == 0
        rows = await deliveries(pool)
    finally:
        await http.aclose()
        await pool.close()
    assert sent == [str(good.alert_id)]
    gave_up = rows[(broken.alert_id, "ops")]
    assert gave_up["next_attempt_at"] is None and gave_up["delivered_at"] is None
    assert gave_up["last_error"].startswith("stored alert unreadable")


async def test_no_delivery_row_stays_locked_while_its_webhook_is_sent_to(database_url):
    from services.notifier.webhooks import Webhook

    seen: dict = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        # mid-send, from another connection: the claim is committed (a lease), and not locked
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                seen["row"] = await conn.fetchrow(
                    "SELECT attempts, next_attempt_at FROM alert_deliveries FOR UPDATE NOWAIT")
        finally:
            await conn.close()
        return httpx.Response(204)

    hooks = [Webhook("ops", "https://hooks.example/ops")]
    pool, http, loop = await delivery_loop(database_url, hooks, handler, delivery_timeout_seconds=5.0)
    try:
        await stored(pool, [alert()], hooks)
        before = datetime.now(timezone.utc)
        assert await loop.deliver_due() == 1
        (row,) = (await deliveries(pool)).values()
    finally:
        await http.aclose()
        await pool.close()
    assert seen["row"]["attempts"] == 1, "the attempt counted before the send"
    assert seen["row"]["next_attempt_at"] >= before + timedelta(seconds=40), "leased, not due again at once"
    assert row["delivered_at"] is not None and row["next_attempt_at"] is None and row["attempts"] == 1


async def test_a_429_is_retried_no_sooner_than_its_retry_after(database_url):
    from services.notifier.webhooks import Webhook

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "120"})

    hooks = [Webhook("ops", "https://hooks.example/ops")]
    pool, http, loop = await delivery_loop(database_url, hooks, handler)
    try:
        await stored(pool, [alert()], hooks)
        before = datetime.now(timezone.utc)
        await loop.deliver_due()
        (row,) = (await deliveries(pool)).values()
    finally:
        await http.aclose()
        await pool.close()
    assert row["last_error"] == "HTTP 429"
    assert row["next_attempt_at"] >= before + timedelta(seconds=119), row["next_attempt_at"]


async def test_a_webhook_failing_every_send_is_given_up_after_the_max_attempts(database_url):
    from services.notifier.webhooks import Webhook

    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/crash":
            raise httpx.RemoteProtocolError("server disconnected")
        return httpx.Response(500)

    hooks = [Webhook("crash", "https://hooks.example/crash"), Webhook("down", "https://hooks.example/down")]
    pool, http, loop = await delivery_loop(database_url, hooks, handler, max_delivery_attempts=3)
    try:
        await stored(pool, [alert()], hooks)
        for _ in range(50):  # each retry is due within moments (a 10 ms base); more sends would show
            await loop.deliver_due()
            await asyncio.sleep(0.05)
        rows = {webhook: row for (_, webhook), row in (await deliveries(pool)).items()}
    finally:
        await http.aclose()
        await pool.close()
    assert sorted(sent) == ["/crash"] * 3 + ["/down"] * 3, sent
    assert rows["crash"]["last_error"] == "RemoteProtocolError" and rows["down"]["last_error"] == "HTTP 500"
    for row in rows.values():
        assert (row["attempts"], row["next_attempt_at"], row["delivered_at"]) == (3, None, None)


async def test_a_delivery_whose_outcome_is_never_recorded_is_given_up_after_the_max_attempts(database_url):
    """A notifier that dies during every send of one delivery: each lease runs out and the
    delivery is claimed again, until it has been sent the policy's attempts."""
    from services.notifier import store
    from services.notifier.webhooks import Webhook

    hooks = [Webhook("ops", "https://hooks.example/ops")]
    pool, http, _ = await delivery_loop(database_url, hooks, lambda request: httpx.Response(200))
    try:
        await stored(pool, [alert()], hooks)
        claimed = []
        for _ in range(5):
            now = datetime.now(timezone.utc)
            async with pool.acquire() as conn, conn.transaction():  # due again at once: the lease is now
                claimed.append(len(await store.claim_due_deliveries(conn, now, 10, now, max_attempts=3)))
        [row] = (await deliveries(pool)).values()
    finally:
        await http.aclose()
        await pool.close()
    assert claimed == [1, 1, 1, 0, 0]
    assert (row["next_attempt_at"], row["delivered_at"]) == (None, None)
    assert row["last_error"] == "no outcome recorded after 3 sends"
