"""`autopost publish-once` follows a post's status: a status it cannot read is not a failed post."""

from __future__ import annotations

import time

from contracts import ErrorClass, ObservedState, Platform, RemoteHandle
from services.publishers.once import OnceOutcome, _follow
from services.publishers.platforms import PlatformError, StatusReport


class Client:
    def __init__(self, *answers):
        self.answers = list(answers)

    async def check_status(self, handle, token, account_id):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def follow(client: Client) -> OnceOutcome:
    handle = RemoteHandle(kind="youtube.video", id="vid-1")
    return await _follow(client, handle, "token", "UCx", time.monotonic() + 5, 0.01,
                         OnceOutcome(Platform.YOUTUBE, "UCx", "failed"))


async def test_a_status_read_refused_for_good_leaves_the_post_processing():
    outcome = await follow(Client(StatusReport(ObservedState.PROCESSING, detail="uploaded"),
                                  PlatformError(ErrorClass.PERMANENT, "forbidden", "the read is not allowed")))
    assert (outcome.status, outcome.error) == ("processing", None)
    assert outcome.detail == "status_unreadable: forbidden: the read is not allowed"


async def test_a_failure_the_platform_reports_fails_it():
    error = PlatformError(ErrorClass.PERMANENT, "rejected", "duplicate").to_contract()
    outcome = await follow(Client(StatusReport(ObservedState.FAILED, error=error)))
    assert (outcome.status, outcome.error) == ("failed", error)
