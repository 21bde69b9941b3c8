"""A receiver's Retry-After, as the notifier and the platform clients both read it."""

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from services.runtime import retry_after_seconds


def seconds_of(header: str | None) -> float | None:
    headers = {"retry-after": header} if header is not None else {}
    return retry_after_seconds(httpx.Response(429, headers=headers))


@pytest.mark.parametrize("header, expected", [
    ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0), ("-5", 0.0),
    ("soon", None), ("nan", None), ("inf", None), ("", None), (None, None),
])
def test_retry_after_is_read_as_seconds(header, expected):
    assert seconds_of(header) == expected


def test_retry_after_as_an_http_date_is_the_seconds_until_it():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=300), usegmt=True)
    assert 290 <= seconds_of(when) <= 301


def test_an_http_date_passed_or_without_a_zone_is_never_negative():
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    assert seconds_of(past) == 0.0
    # "-0000" reads as a naive datetime: taken as UTC, not a TypeError
    naive = format_datetime(datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=60))
    assert naive.endswith("-0000") and 50 <= seconds_of(naive) <= 61


def test_an_unreadable_http_date_is_none():
    assert seconds_of("Wed, 32 Foo 2026 25:61:00 GMT") is None
