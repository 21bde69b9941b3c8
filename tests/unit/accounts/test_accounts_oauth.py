"""Each platform's OAuth client against the sandbox's OAuth, in-process: exchange, refresh,
rotation, and every failure classified without a secret in its message."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.responses import JSONResponse, Response

import sandbox
from contracts import Platform
from services.accounts import (
    Credential,
    OAuthError,
    OAuthFailure,
    TokenGrant,
    oauth_client,
    sandbox_authorization_code,
)
from services.runtime import AccountSettings, OAuthApp

ROOT = "http://sandbox"
APPS = AccountSettings.for_sandbox("").oauth_apps


class Answer(sandbox.Faults):
    def __init__(self, operation: str, response: Response):
        self.operation, self.response = operation, response

    async def before(self, operation, request, account=None):
        return self.response if operation == self.operation else None


@pytest.fixture
def app():
    return sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, instagram_refresh_min_age=0))


@pytest.fixture
async def http(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT) as client:
        yield client


def client_for(platform: Platform, http: httpx.AsyncClient, app: OAuthApp | None = None):
    return oauth_client(platform, http, app or APPS[platform], ROOT)


def held(grant: TokenGrant) -> Credential:
    now = datetime.now(timezone.utc)
    return Credential(grant.access_token, grant.refresh_token, None, None, now, 1)


async def connected(platform: Platform, http, account: str = "acme") -> tuple[object, TokenGrant]:
    client = client_for(platform, http)
    grant = await client.exchange_code(await sandbox_authorization_code(client, http, account))
    return client, grant


async def api_call(http: httpx.AsyncClient, platform: Platform, token: str) -> httpx.Response:
    """One authenticated call on each platform's API (the sandbox's gate checks the token)."""
    auth = {"Authorization": f"Bearer {token}"}
    if platform is Platform.TIKTOK:
        return await http.post("/tiktok/v2/post/publish/creator_info/query/", headers=auth)
    if platform is Platform.INSTAGRAM:
        return await http.get("/instagram/v25.0/acme/content_publishing_limit", headers=auth)
    return await http.get("/youtube/youtube/v3/videos", params={"part": "status", "id": "x"}, headers=auth)


def test_authorize_urls_carry_what_each_platform_needs() -> None:
    http = httpx.AsyncClient()
    tiktok = parse_qs(urlsplit(oauth_client(Platform.TIKTOK, http, APPS[Platform.TIKTOK]).authorize_url("s1")).query)
    assert tiktok["client_key"] == [APPS[Platform.TIKTOK].client_id] and tiktok["response_type"] == ["code"]
    assert "video.publish" in tiktok["scope"][0].split(",") and tiktok["state"] == ["s1"]
    google_url = oauth_client(Platform.YOUTUBE, http, APPS[Platform.YOUTUBE]).authorize_url("s2")
    assert google_url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    google = parse_qs(urlsplit(google_url).query)
    assert (google["access_type"], google["prompt"]) == (["offline"], ["consent"])  # else no refresh token
    assert "https://www.googleapis.com/auth/youtube.upload" in google["scope"][0].split(" ")
    instagram = oauth_client(Platform.INSTAGRAM, http, APPS[Platform.INSTAGRAM]).authorize_url("s3")
    assert instagram.startswith("https://api.instagram.com/oauth/authorize?")
    assert "instagram_business_content_publish" in parse_qs(urlsplit(instagram).query)["scope"][0]


@pytest.mark.parametrize("platform", list(Platform))
async def test_code_exchange_gives_a_token_the_api_accepts(platform, http) -> None:
    _, grant = await connected(platform, http)
    assert grant.access_token and grant.access_expires_in and grant.access_expires_in > 0
    assert (await api_call(http, platform, grant.access_token)).status_code == 200
    assert (await api_call(http, platform, grant.access_token + "x")).status_code in (400, 401)


async def test_tiktok_refresh_rotates_and_the_old_refresh_token_stops_working(http, app) -> None:
    client, grant = await connected(Platform.TIKTOK, http)
    assert grant.refresh_token and grant.refresh_expires_in and grant.remote_user_id == "open-acme"
    assert set(grant.scopes) >= {"video.publish"}
    renewed = await client.refresh(held(grant))
    assert renewed.refresh_token and renewed.refresh_token != grant.refresh_token
    with pytest.raises(OAuthError) as raised:
        await client.refresh(held(grant))  # the old one, once more
    assert (raised.value.failure, raised.value.code) == (OAuthFailure.INVALID_GRANT, "invalid_grant")
    assert (await client.refresh(held(renewed))).access_token
    assert app.state.sandbox.oauth.calls["tiktok.refresh"] == 3


async def test_google_keeps_its_refresh_token(http) -> None:
    client, grant = await connected(Platform.YOUTUBE, http)
    assert grant.refresh_token
    renewed = await client.refresh(held(grant))
    assert renewed.refresh_token is None and renewed.access_token != grant.access_token
    assert (await client.refresh(held(grant))).access_token  # the same refresh token still works
    assert (await api_call(http, Platform.YOUTUBE, renewed.access_token)).status_code == 200


async def test_instagram_long_lived_token_refreshes_itself(http) -> None:
    client, grant = await connected(Platform.INSTAGRAM, http, account="17841400000000001")
    assert grant.refresh_token is None and grant.remote_user_id == "17841400000000001"
    assert grant.access_expires_in == 60 * 86400
    renewed = await client.refresh(held(grant))
    assert renewed.access_token != grant.access_token
    assert (await api_call(http, Platform.INSTAGRAM, renewed.access_token)).status_code == 200


async def test_revoked_authorization_is_invalid_grant_on_every_platform(http, app) -> None:
    for platform in Platform:
        client, grant = await connected(platform, http)
        app.state.sandbox.oauth.revoke(platform.value, "acme")
        with pytest.raises(OAuthError) as raised:
            await client.refresh(held(grant))
        assert raised.value.failure is OAuthFailure.INVALID_GRANT, platform


async def test_a_used_code_cannot_be_exchanged_again(http) -> None:
    client = client_for(Platform.YOUTUBE, http)
    code = await sandbox_authorization_code(client, http, "acme")
    await client.exchange_code(code)
    with pytest.raises(OAuthError) as raised:
        await client.exchange_code(code)
    assert raised.value.failure is OAuthFailure.INVALID_GRANT and code not in str(raised.value)


@pytest.mark.parametrize("platform, operation", [
    (Platform.TIKTOK, "tiktok.oauth_token"),
    (Platform.YOUTUBE, "youtube.oauth_token"),
    (Platform.INSTAGRAM, "instagram.oauth_refresh"),
])
async def test_server_errors_and_temporary_unavailability_are_transient(platform, operation, http, app) -> None:
    client, grant = await connected(platform, http)
    store = app.state.sandbox.oauth
    for reply in (Response("busy", 503, headers={"Retry-After": "30"}),
                  JSONResponse({"error": "temporarily_unavailable"}, 200 if platform is Platform.TIKTOK else 400)):
        if platform is Platform.INSTAGRAM and reply.status_code == 400:
            reply = JSONResponse({"error": {"message": "Please retry", "type": "OAuthException", "code": 2,
                                            "is_transient": True}}, 500 - 100)
        store.faults = Answer(operation, reply)
        with pytest.raises(OAuthError) as raised:
            await client.refresh(held(grant))
        assert raised.value.failure is OAuthFailure.TRANSIENT, (platform, reply.status_code)
    store.faults = sandbox.Faults()
    assert (await client.refresh(held(grant))).access_token  # nothing was lost


async def test_a_wrong_client_secret_is_rejected_not_invalid_grant(http) -> None:
    for platform in (Platform.TIKTOK, Platform.YOUTUBE):
        good = APPS[platform]
        _, grant = await connected(platform, http)
        wrong = client_for(platform, http, OAuthApp(good.client_id, "not-the-secret", good.redirect_uri))
        with pytest.raises(OAuthError) as raised:
            await wrong.refresh(held(grant))
        assert raised.value.failure is OAuthFailure.REJECTED, platform
        assert "not-the-secret" not in str(raised.value)


async def test_transport_failures_are_transient_and_name_no_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        client = oauth_client(Platform.INSTAGRAM, http, APPS[Platform.INSTAGRAM], ROOT)
        credential = Credential("IGAAsecret-token", None, None, None, datetime.now(timezone.utc), 1)
        with pytest.raises(OAuthError) as raised:
            await client.refresh(credential)
    assert raised.value.failure is OAuthFailure.TRANSIENT
    assert "IGAAsecret-token" not in str(raised.value) and "http" not in raised.value.message


async def test_platform_error_text_echoing_a_token_is_scrubbed(http, app) -> None:
    client, grant = await connected(Platform.TIKTOK, http)
    app.state.sandbox.oauth.faults = Answer("tiktok.oauth_token", JSONResponse(
        {"error": "invalid_grant", "error_description": f"refresh token {grant.refresh_token} is revoked"}))
    with pytest.raises(OAuthError) as raised:
        await client.refresh(held(grant))
    assert grant.refresh_token not in str(raised.value) and "[redacted]" in raised.value.message


async def test_instagram_token_in_query_strings_is_redacted_in_httpx_logs(http, caplog) -> None:
    client, grant = await connected(Platform.INSTAGRAM, http)
    caplog.set_level(logging.DEBUG)
    renewed = await client.refresh(held(grant))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refresh_access_token" in logged, "httpx logs the request line"
    assert grant.access_token not in logged and renewed.access_token not in logged
