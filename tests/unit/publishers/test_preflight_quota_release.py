"""A publish gives its quota back only when the platform surely made nothing of it."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import pytest

from contracts import NEEDS_REVIEW, ContentType, ErrorClass, MediaRef, Platform, PublishRequested, RemoteHandle
from services.publishers.handles import PUBLISH_IN_PROGRESS
from services.publishers.platforms import PlatformError
from services.publishers.preflight import Preflight
from services.quotas import quota_rules
from services.runtime import QuotaSettings
from test_publisher_with_token import FakeTokens


class FakeLedger:
    def __init__(self):
        self.reserved: list = []
        self.released: list = []

    async def reserve(self, costs, *, observed=None):
        self.reserved.extend(costs)

    async def release(self, costs):
        self.released.extend(costs)


def tiktok_request() -> PublishRequested:
    return PublishRequested(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.TIKTOK,
        account_id="acct", attempt=1, content_type=ContentType.VIDEO, caption="c",
        media=[MediaRef(url="https://cdn.example/v.mp4")], scheduled_time=datetime.now(timezone.utc))


@pytest.mark.parametrize("error, given_back", [
    (PlatformError(ErrorClass.PERMANENT, "privacy_level_option_mismatch", "refused"), True),
    (PlatformError(ErrorClass.RETRYABLE, "transport_error", "refused connection"), True),
    (PlatformError(ErrorClass.RETRYABLE, "timeout", "no answer", maybe_processed=True), False),
    (PlatformError(ErrorClass.PERMANENT, NEEDS_REVIEW, "the init's answer was lost"), False),
    (PlatformError(ErrorClass.RETRYABLE, PUBLISH_IN_PROGRESS, "another publisher has it"), False),
    (PlatformError(ErrorClass.RETRYABLE, "spam_risk", "x", handle=RemoteHandle(kind="tiktok.publish_id", id="p")),
     False),
])
async def test_the_quota_is_given_back_only_when_nothing_was_made(error, given_back):
    ledger = FakeLedger()
    preflight = Preflight(FakeTokens(), ledger, quota_rules(QuotaSettings()))

    async def send(request, token):
        raise error

    with pytest.raises(PlatformError):
        await preflight.publish(tiktok_request(), send)
    assert len(ledger.reserved) == 1
    assert bool(ledger.released) is given_back


async def test_a_failure_while_a_remote_object_is_live_keeps_the_quota():
    # a redelivered request resumes the post TikTok already has, and its status read fails: the
    # post exists, so what it took of the creator's daily posts stays taken
    from services.publishers.handlers import PublishHandlers
    from services.publishers.platforms import ACCEPTED, MemoryJournal

    live = RemoteHandle(kind="tiktok.publish_id", id="v_pub_1")
    journal = MemoryJournal()
    await journal.save(ACCEPTED, live)

    class Journals:
        @asynccontextmanager
        async def journal_for(self, request):
            yield journal

    class Resuming:
        async def publish(self, request, token, journal):
            await journal.load()
            raise PlatformError(ErrorClass.RETRYABLE, "http_500", "status/fetch failed")

    ledger = FakeLedger()
    preflight = Preflight(FakeTokens(), ledger, quota_rules(QuotaSettings()))
    handlers = PublishHandlers(None, Resuming(), preflight, Journals())  # no messages sent here
    with pytest.raises(PlatformError) as raised:
        await preflight.publish(tiktok_request(), handlers._send)
    assert raised.value.handle == live, "the queue hears which object was live"
    assert ledger.released == []
