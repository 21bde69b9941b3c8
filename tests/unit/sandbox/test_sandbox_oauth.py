"""The sandbox's OAuth and its token gate: issued tokens are the account, expired ones are refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import sandbox

ROOT = "http://sandbox"
SECRET = sandbox.SandboxSettings().oauth_client_secret


def make(**settings) -> tuple[httpx.AsyncClient, object]:
    app = sandbox.create_app(sandbox.SandboxSettings(processing_seconds=0, **settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT), app


async def tiktok_token(http: httpx.AsyncClient, user: str) -> dict:
    redirect = "https://app.example/cb"
    reply = await http.get("/tiktok/v2/auth/authorize/", params={
        "client_key": "ck", "response_type": "code", "redirect_uri": redirect, "state": "st",
        "scope": "video.publish", "sandbox_user": user})
    assert reply.status_code == 302
    location = reply.headers["location"]
    assert location.startswith(redirect + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st"]
    token = await http.post("/tiktok/v2/oauth/token/", data={
        "client_key": "ck", "client_secret": SECRET, "code": query["code"][0],
        "grant_type": "authorization_code", "redirect_uri": redirect})
    assert token.status_code == 200, token.text
    return token.json()


async def test_an_issued_token_acts_as_its_account():
    client, _ = make()
    async with client as http:
        body = await tiktok_token(http, "alice")
        assert body["access_token"].startswith("act.") and body["token_type"] == "Bearer"
        assert body["expires_in"] == 7200 and body["refresh_expires_in"] == 180 * 86400
        info = await http.post("/tiktok/v2/post/publish/creator_info/query/",
                               headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.json()["data"]["creator_username"] == "alice"


async def test_the_call_log_names_the_account_an_issued_token_stands_for():
    # the rate-cap benchmark reads one account's calls from it, with tokens the OAuth issued
    client, _ = make(require_issued_tokens=True)
    async with client as http:
        token = (await tiktok_token(http, "alice"))["access_token"]
        await http.post("/tiktok/v2/post/publish/creator_info/query/", headers={"Authorization": f"Bearer {token}"})
        calls = (await http.get("/_sandbox/calls", params={"platform": "tiktok", "accountId": "alice"})).json()
    assert [c["path"] for c in calls] == ["/tiktok/v2/post/publish/creator_info/query/"]


async def test_expired_and_unknown_issued_tokens_get_each_platform_s_refusal():
    client, app = make()
    async with client as http:
        token = (await tiktok_token(http, "alice"))["access_token"]
        app.state.sandbox.oauth.expire_access("tiktok", "alice")
        tiktok = await http.post("/tiktok/v2/post/publish/creator_info/query/",
                                 headers={"Authorization": f"Bearer {token}"})
        instagram = await http.get("/instagram/v25.0/1/content_publishing_limit",
                                   params={"access_token": "IGAAnot-issued"})
        youtube = await http.get("/youtube/youtube/v3/videos", params={"part": "status", "id": "v"},
                                 headers={"Authorization": "Bearer ya29.not-issued"})
    assert (tiktok.status_code, tiktok.json()["error"]["code"]) == (401, "access_token_invalid")
    assert (instagram.status_code, instagram.json()["error"]["code"]) == (400, 190)
    assert (youtube.status_code, youtube.json()["error"]["errors"][0]["reason"]) == (401, "authError")


async def test_a_token_of_another_platform_is_not_accepted():
    client, _ = make()
    async with client as http:
        token = (await tiktok_token(http, "alice"))["access_token"]
        reply = await http.get("/youtube/youtube/v3/videos", params={"part": "status", "id": "v"},
                               headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401


@pytest.mark.parametrize("strict, status", [(False, 200), (True, 401)])
async def test_only_issued_tokens_when_required(strict, status):
    client, _ = make(require_issued_tokens=strict)
    async with client as http:
        reply = await http.post("/tiktok/v2/post/publish/creator_info/query/",
                                headers={"Authorization": "Bearer sandbox:alice"})
    assert reply.status_code == status


async def test_authorize_needs_a_user_and_a_redirect():
    client, _ = make()
    async with client as http:
        no_user = await http.get("/youtube/o/oauth2/v2/auth", params={
            "client_id": "c", "response_type": "code", "redirect_uri": "https://a/cb"})
        no_redirect = await http.get("/youtube/o/oauth2/v2/auth", params={
            "client_id": "c", "response_type": "code", "sandbox_user": "u"})
    assert no_user.status_code == no_redirect.status_code == 400


async def test_google_gives_no_refresh_token_without_offline_access():
    client, _ = make()
    async with client as http:
        reply = await http.get("/youtube/o/oauth2/v2/auth", params={
            "client_id": "c", "response_type": "code", "redirect_uri": "https://a/cb", "sandbox_user": "u"})
        code = parse_qs(urlsplit(reply.headers["location"]).query)["code"][0]
        token = await http.post("/youtube/token", data={
            "client_id": "c", "client_secret": SECRET, "code": code, "grant_type": "authorization_code",
            "redirect_uri": "https://a/cb"})
    assert token.status_code == 200 and "refresh_token" not in token.json()


async def test_control_routes_expire_and_revoke_over_http():
    client, _ = make()
    async with client as http:
        body = await tiktok_token(http, "alice")
        assert (await http.post("/_sandbox/oauth/expire", params={"platform": "tiktok", "accountId": "alice"})
                ).json() == {"tokens": 1}
        refreshed = await http.post("/tiktok/v2/oauth/token/", data={
            "client_key": "ck", "client_secret": SECRET, "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"]})
        assert refreshed.json()["access_token"]
        assert (await http.post("/_sandbox/oauth/revoke", params={"platform": "tiktok", "accountId": "alice"})
                ).json()["tokens"] >= 2
        dead = await http.post("/tiktok/v2/oauth/token/", data={
            "client_key": "ck", "client_secret": SECRET, "grant_type": "refresh_token",
            "refresh_token": refreshed.json()["refresh_token"]})
        calls = (await http.get("/_sandbox/oauth/calls")).json()
    assert (dead.status_code, dead.json()["error"]) == (200, "invalid_grant")  # in HTTP 200, as TikTok does
    assert calls == {"tiktok.exchange": 1, "tiktok.refresh": 2}
