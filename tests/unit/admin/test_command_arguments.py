"""The operator's command arguments: what they take, and what they refuse with a reason."""

import argparse
from datetime import datetime, timedelta, timezone

import pytest

from services.admin._cli import parse_time, public_url

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_a_found_post_needs_an_https_address():
    assert public_url(" https://www.tiktok.com/@a/video/1 ") == "https://www.tiktok.com/@a/video/1"
    for text in ("http://www.tiktok.com/@a/video/1", "www.tiktok.com/@a/video/1", "https://"):
        with pytest.raises(argparse.ArgumentTypeError, match="not an https address"):
            public_url(text)


def test_times_are_relative_or_zoned():
    assert parse_time("+2h", NOW) == NOW + timedelta(hours=2)
    assert parse_time("2026-12-24T18:00:00+01:00", NOW) == datetime(2026, 12, 24, 17, 0, tzinfo=timezone.utc)
    with pytest.raises(argparse.ArgumentTypeError, match="needs a zone"):
        parse_time("2026-12-24T18:00:00", NOW)
