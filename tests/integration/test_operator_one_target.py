"""`found` and `retry` of targets awaiting review: each such target named on its own, and a
found post's address on its target's platform; otherwise nothing changes."""

import asyncio
import uuid

import orjson
import pytest

from contracts import NEEDS_REVIEW
from services.cli import main

pytestmark = pytest.mark.integration

REVIEW = {"errorClass": "unknown", "code": NEEDS_REVIEW, "message": "check the platform first"}


@pytest.fixture
def autopost(monkeypatch, capsys, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)

    async def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


async def _post(conn, upstream_id: str, targets: list[tuple[str, str, str]]) -> dict[str, uuid.UUID]:
    """A post with targets (platform, account, status); failed ones failed for review."""
    post_id = uuid.uuid4()
    await conn.execute("INSERT INTO posts (post_id, upstream_id, content) VALUES ($1, $2, '{}')", post_id, upstream_id)
    ids = {"post": post_id}
    for platform, account, status in targets:
        ids[account] = await conn.fetchval(
            """INSERT INTO targets (target_id, post_id, platform, account_id, caption, scheduled_time, strategy,
                                    status, due_at, last_error, attempt)
               VALUES (gen_random_uuid(), $1, $2, $3, '', now(), 'asap', $4, NULL,
                       CASE WHEN $4 = 'failed' THEN $5::jsonb END, 1)
               RETURNING target_id""", post_id, platform, account, status, REVIEW)
    return ids


async def _statuses(conn) -> dict[str, tuple[str, str | None]]:
    return {r["account_id"]: (r["status"], r["url"]) for r in await conn.fetch("SELECT account_id, status, url FROM targets")}


BRAND_A = "https://www.tiktok.com/@brand-a/video/7300000000000000123"


async def test_found_of_a_post_with_two_targets_for_review_changes_neither(autopost, pool):
    async with pool.acquire() as conn:
        ids = await _post(conn, "up-1", [("tiktok", "brand-a", "failed"), ("tiktok", "brand-b", "failed")])
        before = await _statuses(conn)
    for ref in ("up-1", str(ids["post"])):
        code, out, err = await autopost("found", ref, "--url", BRAND_A)
        assert code != 0, out
        assert "ambiguous" in err and str(ids["brand-a"]) in err and str(ids["brand-b"]) in err
        assert "tiktok/brand-a" in err and "tiktok/brand-b" in err
    code, out, _ = await autopost("found", "up-1", "--url", BRAND_A, "--json")
    outcomes = orjson.loads(out)
    assert code != 0 and {o["target_id"] for o in outcomes} == {str(ids["brand-a"]), str(ids["brand-b"])}
    assert all(not o["applied"] and o["detail"].startswith("ambiguous") for o in outcomes)
    async with pool.acquire() as conn:
        assert await _statuses(conn) == before, "nothing changed"

    code, out, _ = await autopost("found", str(ids["brand-a"]), "--url", BRAND_A)
    assert code == 0 and "found" in out
    async with pool.acquire() as conn:
        assert await _statuses(conn) == {"brand-a": ("posted", BRAND_A), "brand-b": ("failed", None)}


@pytest.mark.parametrize(("platform", "url", "ok"), [
    ("tiktok", "https://www.instagram.com/p/abc/", False),
    ("tiktok", "https://tiktok.com.evil.example/@a/video/1", False),
    ("instagram", "https://www.youtube.com/watch?v=x", False),
    ("youtube", "https://www.tiktok.com/@a/video/1", False),
    ("youtube", "https://youtu.be/abc", True),
    ("instagram", "https://www.instagram.com/reel/abc/", True),
])
async def test_found_wants_an_address_on_the_targets_platform(autopost, pool, platform, url, ok):
    async with pool.acquire() as conn:
        ids = await _post(conn, "up-2", [(platform, "acct", "failed")])
    code, out, _ = await autopost("found", str(ids["acct"]), "--url", url, "--json")
    (outcome,) = orjson.loads(out)
    async with pool.acquire() as conn:
        status = (await _statuses(conn))["acct"]
    if ok:
        assert code == 0 and outcome["applied"] and status == ("posted", url)
    else:
        assert code != 0 and not outcome["applied"] and f"not an address on {platform}" in outcome["detail"]
        assert status == ("failed", None)


async def test_retry_of_a_post_leaves_targets_for_review_to_be_named(autopost, pool):
    async with pool.acquire() as conn:
        ids = await _post(conn, "up-3", [("tiktok", "brand-a", "failed"), ("tiktok", "brand-b", "failed"),
                                         ("youtube", "yt", "retry_wait")])
    code, out, _ = await autopost("retry", "up-3", "--json")
    outcomes = {o["account_id"]: o for o in orjson.loads(out)}
    assert code != 0, "targets for review were held back"
    assert outcomes["yt"]["applied"] and outcomes["yt"]["status"] == "pending"
    for account in ("brand-a", "brand-b"):
        assert not outcomes[account]["applied"] and outcomes[account]["status"] == "failed"
        assert "check the platform first" in outcomes[account]["detail"]
        assert str(ids[account]) in outcomes[account]["detail"]
    async with pool.acquire() as conn:
        statuses = await _statuses(conn)
    assert statuses["brand-a"][0] == statuses["brand-b"][0] == "failed" and statuses["yt"][0] == "pending"

    code, out, _ = await autopost("retry", str(ids["brand-a"]))
    assert code == 0 and "retry_requested" in out
    async with pool.acquire() as conn:
        statuses = await _statuses(conn)
    assert statuses["brand-a"][0] == "pending" and statuses["brand-b"][0] == "failed"


async def test_retry_of_a_post_whose_only_target_awaits_review_names_it(autopost, pool):
    async with pool.acquire() as conn:
        await _post(conn, "up-4", [("tiktok", "only", "failed")])
    code, out, _ = await autopost("retry", "up-4")
    assert code == 0 and "retry_requested" in out
