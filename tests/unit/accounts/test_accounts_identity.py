"""Who a login is: Google's token reply names nobody, so the YouTube client reads the login's
channel (channels.list part=id mine=true); and a pasted redirect must answer this sign-in."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from starlette.responses import JSONResponse, Response

import sandbox
from contracts import Platform
from services.accounts import OAuthError, OAuthFailure, oauth_client, sandbox_authorization_code
from services.accounts import _commands
from services.accounts._oauth import GoogleOAuth
from services.runtime import AccountSettings

ROOT = "http://sandbox"
APPS = AccountSettings.for_sandbox("").oauth_apps


class Answer(sandbox.Faults):
    """Answers `operation` with `response`, the first `times` calls (all when None)."""

    def __init__(self, operation: str, response: Response, times: int | None = None):
        self.operation, self.response, self.times, self.seen = operation, response, times, 0

    async def before(self, operation, request, account=None):
        if operation != self.operation:
            return None
        self.seen += 1
        return self.response if self.times is None or self.seen <= self.times else None


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(GoogleOAuth, "channel_retry_delays", (0.0, 0.0), raising=False)


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT) as client:
        yield client


async def channel_of(http: httpx.AsyncClient, user: str) -> str:
    """The channel the sandbox gives `user` (what YouTube would answer for that login)."""
    reply = await http.get("/youtube/youtube/v3/channels", params={"part": "id", "mine": "true"},
                           headers={"Authorization": f"Bearer sandbox:{user}"})
    return reply.json()["items"][0]["id"]


async def exchange(http: httpx.AsyncClient, user: str):
    client = oauth_client(Platform.YOUTUBE, http, APPS[Platform.YOUTUBE], ROOT)
    return await client.exchange_code(await sandbox_authorization_code(client, http, user))


async def test_a_youtube_code_exchange_names_the_login_s_channel(http, app) -> None:
    grant = await exchange(http, "acme")
    assert grant.remote_user_id == await channel_of(http, "acme")
    assert grant.remote_user_id.startswith("UC") and grant.remote_user_id != await channel_of(http, "bob")


BUSY = JSONResponse({"error": {"code": 503, "message": "Backend Error", "errors": [
    {"message": "Backend Error", "domain": "global", "reason": "backendError"}]}}, 503)


@pytest.mark.parametrize("response, failure, code, words, calls", [
    (JSONResponse({"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
                             "errors": [{"message": "Insufficient Permission", "domain": "global",
                                         "reason": "insufficientPermissions"}]}}, 403),
     OAuthFailure.REJECTED, "insufficientPermissions", "youtube.readonly", 1),
    (JSONResponse({"kind": "youtube#channelListResponse", "items": [],
                   "pageInfo": {"totalResults": 0, "resultsPerPage": 0}}),
     OAuthFailure.REJECTED, "no_channel", "no YouTube channel", 1),
    (JSONResponse({"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}}),  # Google's own
     OAuthFailure.REJECTED, "no_channel", "no YouTube channel", 1),
    (BUSY, OAuthFailure.TRANSIENT, "http_503", "channels.list", 3),  # tried again, twice here
    (JSONResponse({"error": {"code": 403, "message": "The request cannot be completed because you have "
                             "exceeded your quota.", "errors": [{"message": "quota", "domain": "youtube.quota",
                                                                 "reason": "quotaExceeded"}]}}, 403),
     OAuthFailure.TRANSIENT, "quotaExceeded", "exceeded your quota", 1),
])
async def test_a_channel_that_cannot_be_read_fails_the_exchange(http, app, response, failure, code, words,
                                                               calls) -> None:
    app.state.sandbox.youtube.faults = fault = Answer("youtube.channels", response)
    with pytest.raises(OAuthError) as raised:
        await exchange(http, "acme")
    assert (raised.value.failure, raised.value.code, fault.seen) == (failure, code, calls)
    assert words in raised.value.message
    issued = app.state.sandbox.oauth.tokens_of("youtube", "acme")
    assert not any(token in str(raised.value) for token in issued["access"] + issued["refresh"])


async def test_a_passing_failure_reading_the_channel_is_tried_again(http, app) -> None:
    app.state.sandbox.youtube.faults = fault = Answer("youtube.channels", BUSY, times=2)
    grant = await exchange(http, "acme")
    assert grant.remote_user_id == await channel_of(http, "acme") and fault.seen == 4  # 3 + ours


# -- the pasted redirect ------------------------------------------------------------------------

def ask(monkeypatch, answer: str, state: str = "s-this") -> str:
    monkeypatch.setattr("builtins.input", lambda prompt="": answer)
    return _commands._ask_for_code(f"https://www.tiktok.com/v2/auth/authorize/?state={state}", state)


def redirect(**query: str) -> str:
    return f"https://localhost/autopost/oauth/callback?{urlencode(query)}"


def test_a_pasted_redirect_of_this_sign_in_gives_its_code(monkeypatch, capsys) -> None:
    assert ask(monkeypatch, redirect(code="c-1*0!", state="s-this", scopes="video.publish")) == "c-1*0!"
    assert ask(monkeypatch, redirect(code="AQB-ig", state="s-this") + "#_") == "AQB-ig"  # Instagram's `#_`
    assert "state=s-this" in capsys.readouterr().err  # the page to open is shown


def test_a_bare_code_is_still_taken_as_it_is(monkeypatch) -> None:
    assert ask(monkeypatch, "  4/0AeanS0b-code  ") == "4/0AeanS0b-code"


@pytest.mark.parametrize("answer", [
    redirect(code="c-2", state="s-other"),  # another attempt's redirect, or a forged one
    redirect(code="c-2"),  # no state at all
    redirect(code="c-2", state="s-this", extra="1").replace("state=s-this", "state=s-this&state=s-x"),
    "localhost/autopost/oauth/callback?code=c-2&state=s-other",  # pasted without its scheme
])
def test_a_pasted_redirect_of_another_sign_in_is_refused(monkeypatch, answer) -> None:
    with pytest.raises(_commands.RedirectRefused) as raised:
        ask(monkeypatch, answer)
    message = str(raised.value)
    assert "state" in message and "sign in again" in message and "c-2" not in message


def test_a_redirect_with_an_error_says_so(monkeypatch) -> None:
    with pytest.raises(_commands.RedirectRefused, match="access_denied"):
        ask(monkeypatch, redirect(error="access_denied", state="s-this"))

