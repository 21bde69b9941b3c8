"""YouTube's status of a video, read as the poller reads it (platforms.md §3.3)."""

from datetime import datetime, timezone

import pytest

from contracts import ObservedState
from services.publishers.platforms._youtube import _report

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
DONE = {"processingStatus": "succeeded"}


@pytest.mark.parametrize("status", [
    {"uploadStatus": "rejected", "rejectionReason": "duplicate", "privacyStatus": "public"},
    {"uploadStatus": "rejected", "rejectionReason": "copyright", "privacyStatus": "public"},
    {"uploadStatus": "deleted", "privacyStatus": "public"},
])
def test_a_video_rejected_or_deleted_after_processing_failed(status):
    report = _report("v1", {"status": status, "processingDetails": DONE}, NOW)
    assert report.state is ObservedState.FAILED and report.url is None
    assert report.error.code == status.get("rejectionReason", "deleted")


def test_a_processed_video_is_published_with_its_address():
    report = _report("v1", {"status": {"uploadStatus": "processed", "privacyStatus": "public"},
                            "processingDetails": DONE}, NOW)
    assert report.state is ObservedState.PUBLISHED and report.url == "https://www.youtube.com/watch?v=v1"
