"""`autopost publish-once`: one item through the publisher's client path, followed to its end."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from contracts import Platform
from harness import connect_accounts, serve_sandbox
from services.accounts import new_key_entry
from services.cli import main
from services.publishers.once import publish_once
from services.runtime import AccountSettings, PlatformSettings, Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


KEYS = new_key_entry("once")


def sandbox_settings(url: str, database_url: str) -> Settings:
    return Settings(sandbox_url=url, api_bases={p: f"{url}/{p.value}" for p in Platform},
                    database_url=database_url, accounts=AccountSettings.for_sandbox(KEYS),
                    platforms=PlatformSettings(media_allow_loopback=True, timeout_seconds=10))


async def test_each_platform_is_published_and_followed_to_its_url(tmp_path: Path, database_url):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\1" * 300_000)
    async with AsyncExitStack() as stack:
        url = await serve_sandbox(stack, processing_seconds=0.3)
        settings = sandbox_settings(url, database_url)
        await connect_accounts(settings, [("tiktok", "once-tt"), ("instagram", "17841400000000009"),
                                          ("youtube", "UConce")])
        tiktok, instagram, youtube = await asyncio.gather(
            publish_once(settings, "tiktok", "once-tt", str(clip), "from a file", poll_interval=0.1),
            publish_once(settings, "instagram", "17841400000000009", f"{url}/media/p.jpg?bytes=9000",
                         "an image", hashtags=["once"], poll_interval=0.1),
            publish_once(settings, "youtube", "UConce", f"{url}/media/v.mp4?bytes=400000", "a video",
                         poll_interval=0.1))
        refused = await publish_once(settings, "instagram", "17841400000000009", str(clip), "local file")
        too_long = await publish_once(settings, "instagram", "17841400000000009", f"{url}/media/p.jpg?bytes=9000",
                                      "x" * 2201)
        conn = await asyncpg.connect(database_url)
        try:  # counted as the publishers count: a real account's posts made here use its caps too
            reserved = {r["bucket"] for r in await conn.fetch("SELECT bucket FROM quota_reservations")}
            uploads = await conn.fetchval("SELECT used FROM quota_counters WHERE bucket = 'youtube.uploads'")
        finally:
            await conn.close()
    # YouTube's daily upload is counted once for the target, its key kept beside the others'
    assert reserved == {"tiktok.direct_posts", "instagram.publishes", "youtube.uploads"} and uploads == 1
    assert (too_long.status, too_long.error.code) == ("failed", "caption_too_long"), "refused, not cut short"
    assert (tiktok.status, tiktok.remote_handle.id.startswith("v_pub_file~")) == ("published", True)
    assert tiktok.url.startswith("https://www.tiktok.com/@once_tt/video/")
    assert instagram.status == "published" and instagram.url.startswith("https://www.instagram.com/p/")
    assert youtube.status == "published" and youtube.url.startswith("https://www.youtube.com/watch?v=")
    assert (refused.status, refused.error.code) == ("failed", "invalid_media"), "Instagram fetches media itself"
    assert refused.describe().startswith("failed permanent invalid_media")


async def test_the_command_prints_the_final_status_as_json_and_resumes_after_a_transient_failure(
        capsys, monkeypatch, database_url):
    async with AsyncExitStack() as stack:
        url = await serve_sandbox(stack, processing_seconds=0.2)
        await connect_accounts(sandbox_settings(url, database_url), [("youtube", "UCcli")])
        env = {**os.environ, "AUTOPOST_SANDBOX_URL": url, "DATABASE_URL": database_url,
               "AUTOPOST_CREDENTIAL_KEYS": KEYS}

        async def run(*args: str) -> tuple[int, bytes]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.cli", "publish-once", *args, cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), 60)
            return process.returncode, out + err

        async with httpx.AsyncClient(base_url=url) as http:
            await http.post("/_sandbox/faults", json={"kind": "server_error", "platform": "youtube",
                                                      "operation": "upload", "count": 4})
        code, out = await run("--platform", "youtube", "--account", "UCcli", "--media",
                              f"{url}/media/v.mp4?bytes=300000", "--caption", "from the CLI", "--json")
        assert code == 0, out
        result = orjson.loads(out[: out.rindex(b"}") + 1])
        assert result["status"] == "published" and result["url"].startswith("https://www.youtube.com/watch?v=")
        assert result["attempts"] == 2  # 4 server errors outlast one try; the second resumes the session
        async with httpx.AsyncClient(base_url=url) as http:
            stats = (await http.get("/_sandbox/stats")).json()
        assert (stats["youtube"]["created"], stats["youtube"]["published"]) == (1, 1)

        # in this process (no start-up to pay): a refusal, and the exit code that says so
        for name in ("AUTOPOST_SANDBOX_URL", "DATABASE_URL", "AUTOPOST_CREDENTIAL_KEYS"):
            monkeypatch.setenv(name, env[name])
        code = await asyncio.to_thread(main, ["publish-once", "--platform", "youtube", "--account", "UCcli",
                                              "--media", f"{url}/media/p.jpg", "--caption", "an image"])
        assert code == 1
        assert capsys.readouterr().out.startswith("failed permanent unsupported_content_type")
