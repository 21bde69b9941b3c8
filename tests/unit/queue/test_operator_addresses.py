"""What `found` and `retry` refuse before they change anything: an address on another platform,
a reference naming several targets, a target for review among others of its post."""

import uuid
from datetime import datetime, timezone

import pytest

from services.queue.domain import TargetState, TargetStatus
from services.queue.domain._operator import (
    HELD_FOR_REVIEW,
    Candidate,
    ambiguous,
    review_needs_its_own_name,
    url_refusal,
)


@pytest.mark.parametrize(("platform", "url"), [
    ("tiktok", "https://www.tiktok.com/@brand-a/video/7300000000000000123"),
    ("tiktok", "https://vm.tiktok.com/ZMabc/"),
    ("tiktok", "https://TikTok.com/@brand-a/photo/1"),
    ("instagram", "https://www.instagram.com/p/Cabc/"),
    ("youtube", "https://www.youtube.com/watch?v=abc"),
    ("youtube", "https://m.youtube.com/shorts/abc"),
    ("youtube", "https://youtu.be/abc"),
])
def test_an_address_on_the_platform_is_accepted(platform, url):
    assert url_refusal(platform, url) is None


@pytest.mark.parametrize(("platform", "url"), [
    ("tiktok", "https://www.instagram.com/p/Cabc/"),
    ("tiktok", "https://nottiktok.com/@a/video/1"),
    ("tiktok", "https://tiktok.com.example.org/@a/video/1"),
    ("instagram", "https://www.tiktok.com/@a/video/1"),
    ("youtube", "https://youtube.example.com/watch?v=abc"),
    ("youtube", "https://www.instagram.com/reel/abc/"),
])
def test_an_address_elsewhere_is_refused(platform, url):
    refused = url_refusal(platform, url)
    assert refused is not None and f"not an address on {platform}" in refused.reason
    assert "nothing was changed" in refused.reason


def test_an_ambiguous_reference_lists_every_candidate():
    a, b = (Candidate(str(uuid.uuid4()), "tiktok", account, "failed") for account in ("brand-a", "brand-b"))
    reason = ambiguous([a, b], "mark").reason
    assert reason.startswith("ambiguous") and "2 targets" in reason and "nothing was changed" in reason
    assert f"{a.target_id} (tiktok/brand-a" in reason and f"{b.target_id} (tiktok/brand-b" in reason


def test_a_target_for_review_held_back_says_how_to_retry_it():
    state = TargetState(target_id=uuid.uuid4(), status=TargetStatus.FAILED, version=1, attempt=1, due_at=None,
                        scheduled_time=datetime(2026, 1, 1, tzinfo=timezone.utc))
    reason = review_needs_its_own_name(state, [Candidate(str(state.target_id), "tiktok", "brand-a", "failed")]).reason
    assert reason.startswith(HELD_FOR_REVIEW) and str(state.target_id) in reason
