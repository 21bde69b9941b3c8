"""A publish that fails on our side (its journal's save) after the platform made something still
hands the queue what was made: the queue keeps the handle, and the next try resumes it."""

from __future__ import annotations

from contracts import ErrorClass, PublishOutcome, PublishResult, RemoteHandle
from services.publishers.handlers import PublishHandlers
from services.publishers.limits import no_limits
from services.publishers.platforms import MemoryJournal
from services.runtime import ServiceContext, Settings
from test_handed_over_requests import Through, record

MADE = RemoteHandle(kind="youtube.upload_session", id="session-1")


class SaveFails(MemoryJournal):
    async def save(self, stage, handle):
        raise ConnectionResetError("the database went away")


class Journals:
    def __init__(self, journal):
        self.journal = journal

    def journal_for(self, request):
        journal = self.journal

        class Held:
            async def __aenter__(self):
                return journal

            async def __aexit__(self, *exc):
                return False

        return Held()


class MakesSomething:
    limits = no_limits()

    def __init__(self, made: RemoteHandle | None):
        self.made = made

    async def publish(self, request, token, journal):
        if self.made is None:
            raise RuntimeError("a bug before any call")
        await journal.save("created", self.made)  # the platform answered: saved before the next step


async def answer(client) -> PublishResult:
    ctx = ServiceContext("publisher-youtube", Settings())
    sent = []

    async def send(messages):
        sent.extend(messages)

    ctx.send = send
    await PublishHandlers(ctx, client, Through(), Journals(SaveFails())).requested([record(0, "acct", 0)[0]])
    [message] = sent
    return PublishResult.from_bytes(message.value)


async def test_a_failed_save_after_the_platform_made_something_hands_its_handle_on():
    result = await answer(MakesSomething(MADE))
    assert result.outcome is PublishOutcome.FAILED
    assert (result.error.error_class, result.error.code) == (ErrorClass.RETRYABLE, "internal_error")
    assert result.remote_handle == MADE


async def test_a_failure_before_anything_was_made_has_no_handle():
    result = await answer(MakesSomething(None))
    assert (result.error.code, result.remote_handle) == ("internal_error", None)
