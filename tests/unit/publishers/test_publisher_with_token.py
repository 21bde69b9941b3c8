"""`with_token`: an AUTH refusal gets one refresh and one more call; a second one, reconnect."""

from __future__ import annotations

import pytest

from contracts import ErrorClass, Platform, RemoteHandle
from services.publishers.credentials import with_token
from services.publishers.platforms import PlatformError


class FakeTokens:
    def __init__(self):
        self.tokens = iter(["t1", "t2", "t3"])
        self.current = next(self.tokens)
        self.rejected: list[str] = []
        self.reconnects: list[str] = []

    async def token_for(self, platform, account_id):
        return self.current

    async def token_after_rejection(self, platform, account_id, rejected):
        self.rejected.append(rejected)
        self.current = next(self.tokens)
        return self.current

    async def reconnect_needed(self, platform, account_id, reason):
        self.reconnects.append(reason)


def calls_failing(*errors):
    used: list[str] = []

    async def call(token: str) -> str:
        used.append(token)
        if len(used) <= len(errors) and errors[len(used) - 1] is not None:
            raise errors[len(used) - 1]
        return f"done with {token}"

    return call, used


AUTH = PlatformError(ErrorClass.AUTH, "access_token_invalid", "expired")


async def test_success_needs_no_refresh():
    tokens = FakeTokens()
    call, used = calls_failing()
    assert await with_token(tokens, Platform.TIKTOK, "a", call) == "done with t1"
    assert (used, tokens.rejected) == (["t1"], [])


async def test_an_auth_refusal_is_refreshed_once_and_called_once_more():
    tokens = FakeTokens()
    call, used = calls_failing(AUTH)
    assert await with_token(tokens, Platform.TIKTOK, "a", call) == "done with t2"
    assert (used, tokens.rejected, tokens.reconnects) == (["t1", "t2"], ["t1"], [])


async def test_a_fresh_token_refused_too_means_reconnect_and_keeps_the_handle():
    tokens = FakeTokens()
    handle = RemoteHandle(kind="tiktok.publish_id", id="p1")
    call, used = calls_failing(AUTH, PlatformError(ErrorClass.AUTH, "scope_not_authorized", "scope", handle=handle))
    with pytest.raises(PlatformError) as raised:
        await with_token(tokens, Platform.TIKTOK, "a", call)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.AUTH, "reconnect_needed")
    assert raised.value.handle == handle
    assert used == ["t1", "t2"] and len(tokens.reconnects) == 1 and "scope_not_authorized" in tokens.reconnects[0]


@pytest.mark.parametrize("error_class", [ErrorClass.RETRYABLE, ErrorClass.QUOTA, ErrorClass.PERMANENT])
async def test_other_errors_are_not_retried(error_class):
    tokens = FakeTokens()
    call, used = calls_failing(PlatformError(error_class, "x", "y"))
    with pytest.raises(PlatformError) as raised:
        await with_token(tokens, Platform.TIKTOK, "a", call)
    assert raised.value.error_class is error_class and used == ["t1"] and tokens.rejected == []
