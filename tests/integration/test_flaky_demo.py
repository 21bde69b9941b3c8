"""`autopost dev --demo N --faults flaky --json`: about one platform request in five meets a
transient fault, and still every target ends published, with no duplicate on any platform (the
sandbox's own count)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POSTS = 4


async def test_the_demo_with_flaky_platforms_publishes_every_target_once():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "dev", "--demo", str(POSTS), "--faults", "flaky", "--json",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()[-3000:]
    result = orjson.loads(out)
    assert result["duplicates"] == 0
    assert len(result["targets"]) == POSTS * 3 == result["published"]
    assert all(t["status"] == "posted" and t["url"] for t in result["targets"])
    assert sum(result["faultsInjected"].values()) > 0, "faults were injected"
