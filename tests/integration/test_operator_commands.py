"""The operator's commands against a running queue: what they change, and what they refuse."""

import asyncio
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider

from contracts import (
    FOUND_HANDLE_KIND,
    NEEDS_REVIEW,
    AdminAlert,
    AlertKind,
    ContentType,
    ErrorClass,
    MediaRef,
    Platform,
    PublishError,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    RemoteHandle,
    Topics,
    post_id_for,
    target_id_for,
)
from harness import (
    Pipeline,
    connect_accounts,
    event_json,
    planned_post,
    produce,
    read_topic,
    rows_with,
    serve_sandbox,
    settings_for,
    target_rows,
    wait_for,
)
from services.cli import main
from services.publishers.handles import HandleStore
from services.publishers.platforms import INTENT
from services.runtime import QueueSettings, open_database

pytestmark = pytest.mark.integration


@pytest.fixture
def autopost(monkeypatch, capsys, kafka_bootstrap, topic_prefix, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("AUTOPOST_TOPIC_PREFIX", topic_prefix)

    async def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        # a --json command's document is its stdout alone: a log line (stderr) is no part of it
        return code, captured.out if "--json" in argv else captured.out + captured.err

    return run


async def status_of(database_url, platform):
    return next(r for r in await target_rows(database_url) if r["platform"] == platform.value)


async def test_cancel_reschedule_and_retry(autopost, kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    soon = datetime.now(timezone.utc) + timedelta(seconds=2)
    later = planned_post("ops-later", platforms=[Platform.TIKTOK, Platform.YOUTUBE], at=soon + timedelta(hours=1))
    now_post = planned_post("ops-now", platforms=[Platform.INSTAGRAM], at=soon)
    async with Pipeline(settings, ["queue"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [later.to_bytes(), now_post.to_bytes()])
        await wait_for(lambda: _stored(database_url, 3), 15, "three stored targets")

        # cancel one target of a post before its time: it is never dispatched
        tiktok = next(t for t in later.targets if t.platform is Platform.TIKTOK)
        code, out = await autopost("cancel", str(tiktok.target_id))
        assert code == 0 and "cancelled" in out
        # move the other one to two seconds from now: it is dispatched then, not in an hour
        code, out = await autopost("reschedule", "ops-later", "--at", "+2s", "--json")
        outcomes = {o["platform"]: o for o in orjson.loads(out)}
        assert code == 0 and outcomes["youtube"]["applied"] and not outcomes["tiktok"]["applied"]
        assert "already cancelled" in outcomes["tiktok"]["detail"]
        await wait_for(lambda: rows_with(database_url, "publishing", 2), 15, "both due targets dispatched")
        assert (await status_of(database_url, Platform.TIKTOK))["status"] == "cancelled"

        # too late: it is out with a publisher now
        code, out = await autopost("cancel", "ops-now")
        assert code == 1 and "already dispatched" in out

        # the platform refuses it for good: failed, one alert; an operator retries it
        instagram = now_post.targets[0]
        failed = PublishResult(
            message_id=uuid.uuid4(), target_id=instagram.target_id, attempt=1, outcome=PublishOutcome.FAILED,
            error=PublishError(error_class=ErrorClass.PERMANENT, code="2207026", message="unsupported video"),
            occurred_at=datetime.now(timezone.utc))
        await produce(kafka_bootstrap, topic_prefix + Topics.PUBLISH_RESULT, [failed.to_bytes()] * 2,
                      key=str(instagram.target_id).encode())
        await wait_for(lambda: rows_with(database_url, "failed", 1), 15, "the refused target failed")
        alerts = [AdminAlert.from_bytes(r.value) for r in await read_topic(
            kafka_bootstrap, topic_prefix + Topics.ALERTS, 1, timeout=10)]
        code, out = await autopost("retry", "ops-now")
        assert code == 0 and "retry_requested" in out
        await wait_for(lambda: _dispatched_again(database_url), 15, "dispatched again")

        code, out = await autopost("posts", "show", "ops-now")
        requests = [PublishRequested.from_bytes(r.value) for r in await read_topic(
            kafka_bootstrap, topic_prefix + Topics.publish_requested(Platform.INSTAGRAM), 2)]
        tiktok_requests = await read_topic(kafka_bootstrap, topic_prefix + Topics.publish_requested(Platform.TIKTOK),
                                           1, timeout=1)

    assert len(alerts) == 1 and alerts[0].kind is AlertKind.PUBLISH_FAILED
    assert alerts[0].platform is Platform.INSTAGRAM and alerts[0].reason == "2207026"
    assert alerts[0].trace_id is None or len(alerts[0].trace_id) == 32
    assert [r.attempt for r in requests] == [1, 2]
    assert tiktok_requests == [], "a target cancelled before its time is never sent"
    assert code == 0 and "2207026" in out and "retry_requested" in out and "timeline" in out


REVIEWED = ("tiktok", "review-acct")


async def _failed_for_review(stack: AsyncExitStack, kafka_bootstrap, topic_prefix, database_url):
    """A TikTok target failed for review: a publisher killed just before its pull init left
    had left an intent with no answer. Returns (sandbox url, pool, target id)."""
    target_id = target_id_for(post_id_for("review-me"), Platform.TIKTOK, REVIEWED[1])
    sandbox_url = await serve_sandbox(stack, processing_seconds=0.0)
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
    await connect_accounts(settings, [REVIEWED])
    await stack.enter_async_context(Pipeline(settings, ["planner", "queue", "publisher-tiktok", "poller"]))
    pool = await open_database(database_url, TracerProvider(), max_size=2)
    stack.push_async_callback(pool.close)
    left_behind = PublishRequested(
        message_id=uuid.uuid4(), target_id=target_id, post_id=post_id_for("review-me"), platform=Platform.TIKTOK,
        account_id=REVIEWED[1], attempt=1, content_type=ContentType.VIDEO, caption="c",
        media=[MediaRef(url=f"{sandbox_url}/media/r.mp4")], scheduled_time=datetime.now(timezone.utc))
    async with HandleStore(pool).journal_for(left_behind) as journal:
        await journal.save(INTENT, RemoteHandle(kind="tiktok.publish_id", id="", extra={"source": "PULL_FROM_URL"}))
    await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED,
                  [event_json("review-me", [REVIEWED], f"{sandbox_url}/media/r.mp4?bytes=4096")])
    failed = await wait_for(lambda: _only_target("failed", database_url), 30, "the target failed for review")
    assert orjson.loads(failed["last_error"])["code"] == NEEDS_REVIEW
    return sandbox_url, pool, target_id


async def _only_target(wanted: str, database_url):
    rows = await target_rows(database_url)
    return rows[0] if rows and rows[0]["status"] == wanted else None


async def test_a_target_for_review_retried_by_an_operator_is_posted_once(
    autopost, kafka_bootstrap, topic_prefix, database_url
):
    async with AsyncExitStack() as stack:
        sandbox_url, pool, target_id = await _failed_for_review(stack, kafka_bootstrap, topic_prefix, database_url)
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            assert (await http.get("/_sandbox/published")).json() == [], "the init never left"
            code, out = await autopost("retry", "review-me")
            assert code == 0 and "retry_requested" in out
            posted = await wait_for(lambda: _only_target("posted", database_url), 30, "posted after the retry")
            published = (await http.get("/_sandbox/published")).json()
        generations = await pool.fetch(
            "SELECT stage, abandoned_reason FROM remote_handles WHERE target_id = $1 ORDER BY generation", target_id)

    assert [p["url"] for p in published] == [posted["url"]], "posted once"
    assert [g["stage"] for g in generations] == ["abandoned", "accepted"]
    assert "operator" in generations[0]["abandoned_reason"]


async def test_a_target_for_review_found_on_the_platform_is_marked_posted(
    autopost, kafka_bootstrap, topic_prefix, database_url
):
    url = "https://www.tiktok.com/@review/video/7300000000000000001"
    async with AsyncExitStack() as stack:
        sandbox_url, pool, _ = await _failed_for_review(stack, kafka_bootstrap, topic_prefix, database_url)
        failed_at = (await _only_target("failed", database_url))["updated_at"]
        code, out = await autopost("found", "review-me", "--url", url)
        assert code == 0 and "found" in out
        code, out = await autopost("found", "review-me", "--url", url)
        assert code == 1 and "already posted" in out
        posted = await _only_target("posted", database_url)
        async with httpx.AsyncClient(base_url=sandbox_url) as http:
            await asyncio.sleep(1.0)  # time enough for a dispatch, were one to come
            published = (await http.get("/_sandbox/published")).json()
        code, out = await autopost("posts", "show", "review-me")

    assert posted is not None and posted["url"] == url
    assert posted["published_at"] == failed_at, "out since its init left, which is when it failed for review"
    first_collection = posted["published_at"] + timedelta(seconds=QueueSettings().engagement_ages_seconds[0])
    assert posted["due_at"] == first_collection, "its engagement is collected, by its address"
    assert orjson.loads(posted["remote_handle"]) == {"kind": FOUND_HANDLE_KIND, "id": url}
    assert published == [], "nothing was sent to the platform"
    assert code == 0 and "found" in out


async def _stored(database_url, count):
    return len(await target_rows(database_url)) >= count


async def _dispatched_again(database_url):
    row = await status_of(database_url, Platform.INSTAGRAM)
    return row["status"] == "publishing" and row["attempt"] == 2


async def test_dead_letters_are_listed_shown_and_replayed(autopost, kafka_bootstrap, topic_prefix, database_url):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    async with Pipeline(settings, ["queue", "notifier"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [b'{"postId": "broken"'],
                      key=b"upstream-7", headers=[("traceparent", f"00-{'ab' * 16}-{'cd' * 8}-01".encode())])

        async def listed():
            code, out = await autopost("dlq", "ls", "--json")
            return orjson.loads(out) if code == 0 and orjson.loads(out) else None

        (letter,) = await wait_for(listed, 20, "the dead letter kept")
        assert letter["reason"] == "invalid_json" and letter["consumer"] == "queue.planned"
        code, out = await autopost("dlq", "show", str(letter["id"]))
        assert code == 0 and '{"postId": "broken"' in out and "upstream-7" in out and "traceparent" in out

        code, out = await autopost("dlq", "replay", str(letter["id"]))
        assert code == 0 and "replayed 1" in out

        async def set_aside_again():
            code, out = await autopost("dlq", "ls", "--all", "--json")
            rows = orjson.loads(out)
            return rows if len(rows) == 2 else None

        rows = await wait_for(set_aside_again, 20, "the replayed message, set aside again")
    replayed = next(r for r in rows if r["id"] == letter["id"])
    assert replayed["replays"] == 1 and replayed["replayed_at"]
    again = next(r for r in rows if r["id"] != letter["id"])
    assert again["source_offset"] != letter["source_offset"], "a new record, from the replay"


async def test_a_dead_letter_too_large_to_keep_whole_is_shown_as_cut_and_not_replayed(
    autopost, kafka_bootstrap, topic_prefix, database_url
):
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    huge = b'{"postId": "' + b"x" * 900_000  # not JSON, and a letter of it whole would be over 1 MiB
    async with Pipeline(settings, ["queue", "notifier"]):
        await produce(kafka_bootstrap, topic_prefix + Topics.POST_PLANNED, [huge], key=b"upstream-8")

        async def listed():
            code, out = await autopost("dlq", "ls", "--json")
            return orjson.loads(out) if code == 0 and orjson.loads(out) else None

        (letter,) = await wait_for(listed, 20, "the dead letter kept")
        code, out = await autopost("dlq", "show", str(letter["id"]))
        assert code == 0 and "truncated: True" in out and f"payload_bytes: {len(huge)}" in out
        code, out = await autopost("dlq", "replay", str(letter["id"]))
        assert code == 1 and "not replayed" in out and "replayed 0" in out
        code, out = await autopost("dlq", "ls", "--json")
        assert [r["replays"] for r in orjson.loads(out)] == [0]
