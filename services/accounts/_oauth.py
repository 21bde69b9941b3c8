"""OAuth code exchange and refresh, one client per platform (platforms.md §1.1, §2.1, §3.1).

    client = oauth_client(Platform.TIKTOK, http, app, sandbox_root=None)
    url = client.authorize_url(state)            # where a person grants access
    grant = await client.exchange_code(code)     # TokenGrant, naming who signed in
    grant = await client.refresh(credential)     # TokenGrant, or OAuthError

A code exchange's `remote_user_id` is the login's identity: TikTok's `open_id` and Instagram's
user id from the token reply; Google's reply names nobody, so the YouTube client reads the
login's channel (`channels.list part=id mine=true`, one API unit) and gives its id.

Every failure is an `OAuthError`: INVALID_GRANT (reconnect), TRANSIENT (later) or REJECTED (the
app's configuration). Messages never carry a token, a code or the client secret. Use an httpx
client that is NOT traced: token URLs and bodies carry secrets.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import unquote, urlencode

import httpx
import orjson

from contracts import Platform
from services.runtime import OAuthApp, retry_after_seconds

from ._errors import OAuthError, OAuthFailure
from ._model import Credential, TokenGrant
from ._redact import redact_http_logs, scrub


class OAuthClient(Protocol):
    platform: Platform
    sandbox_root: str | None  # set when the endpoints are the sandbox's

    def authorize_url(self, state: str, **extra: str) -> str: ...

    async def exchange_code(self, code: str) -> TokenGrant: ...

    async def refresh(self, credential: Credential) -> TokenGrant: ...


# (real host, path); in the sandbox every path sits under `<sandbox>/<platform>`
_TIKTOK = {"authorize": ("https://www.tiktok.com", "/v2/auth/authorize/"),
           "token": ("https://open.tiktokapis.com", "/v2/oauth/token/")}
_INSTAGRAM = {"authorize": ("https://api.instagram.com", "/oauth/authorize"),
              "code": ("https://api.instagram.com", "/oauth/access_token"),
              "exchange": ("https://graph.instagram.com", "/access_token"),
              "refresh": ("https://graph.instagram.com", "/refresh_access_token")}
_GOOGLE = {"authorize": ("https://accounts.google.com", "/o/oauth2/v2/auth"),
           "token": ("https://oauth2.googleapis.com", "/token"),
           "channels": ("https://www.googleapis.com", "/youtube/v3/channels")}  # who signed in

# the last ones read engagement (video.list: a post's counts, user.info.stats: followers;
# the insights): a user may untick them and still post, and then no engagement is collected
TIKTOK_SCOPES = ("user.info.basic", "video.publish", "video.upload", "video.list", "user.info.stats")
INSTAGRAM_SCOPES = ("instagram_business_basic", "instagram_business_content_publish",
                    "instagram_business_manage_insights")
GOOGLE_SCOPES = ("https://www.googleapis.com/auth/youtube.upload",
                 "https://www.googleapis.com/auth/youtube.readonly")

_TRANSIENT_CODES = {"server_error", "temporarily_unavailable"}


class _Base:
    platform: Platform
    endpoints: dict[str, tuple[str, str]]

    def __init__(self, http: httpx.AsyncClient, app: OAuthApp, sandbox_root: str | None = None):
        self.http, self.app = http, app
        self.sandbox_root = f"{sandbox_root.rstrip('/')}/{self.platform.value}" if sandbox_root else None
        redact_http_logs()

    def url(self, name: str) -> str:
        host, path = self.endpoints[name]
        return (self.sandbox_root or host) + path

    async def _send(self, method: str, name: str, *secrets: str | None, what: str = "token endpoint",
                    **kwargs: Any) -> tuple[int, Any]:
        """(status, decoded JSON body or None); transport failures are TRANSIENT, scrubbed."""
        try:
            response = await self.http.request(method, self.url(name), **kwargs)
        except httpx.TimeoutException:
            raise OAuthError(OAuthFailure.TRANSIENT, "timeout", f"{self.platform.value} {what} timed out") from None
        except httpx.TransportError as exc:
            raise OAuthError(OAuthFailure.TRANSIENT, "transport_error",
                             f"{self.platform.value} {what} unreachable ({type(exc).__name__})") from None
        try:
            body = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            body = None
        if response.status_code >= 500 or response.status_code == 429:
            raise OAuthError(OAuthFailure.TRANSIENT, f"http_{response.status_code}",
                             f"{self.platform.value} {what} answered {response.status_code}",
                             retry_after_seconds(response))
        return response.status_code, body

    def _secrets(self, *values: str | None) -> tuple[str | None, ...]:
        return (self.app.client_secret, *values)


def _oauth2_error(platform: Platform, status: int, body: Any, secrets: tuple[str | None, ...]) -> OAuthError:
    """An RFC 6749 error reply (`error`, `error_description`), as TikTok and Google send them."""
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error) if isinstance(error, str) and error else f"http_{status}"
    description = scrub(str(body.get("error_description") or "") if isinstance(body, dict) else "", *secrets)
    if code == "invalid_grant":
        failure = OAuthFailure.INVALID_GRANT
    elif code in _TRANSIENT_CODES:
        failure = OAuthFailure.TRANSIENT
    else:
        failure = OAuthFailure.REJECTED
    message = f"{platform.value} refused the token request: {code}" + (f" ({description})" if description else "")
    return OAuthError(failure, code, message[:500])


def _lifetime(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _required_token(platform: Platform, body: Any, key: str = "access_token") -> str:
    if not isinstance(body, dict) or not isinstance(body.get(key), str) or not body[key]:
        raise OAuthError(OAuthFailure.TRANSIENT, "invalid_response", f"{platform.value} token reply without {key}")
    return body[key]


class _TokenEndpoint(_Base):
    """An RFC 6749 token endpoint that exchanges codes and refreshes (TikTok's and Google's)."""

    client_param = "client_id"
    scope_separator = " "
    refresh_lifetime_key = "refresh_token_expires_in"

    async def exchange_code(self, code: str) -> TokenGrant:
        return await self._token({"grant_type": "authorization_code", "code": self._decoded(code),
                                  "redirect_uri": self.app.redirect_uri}, code)

    async def refresh(self, credential: Credential) -> TokenGrant:
        if not credential.refresh_token:
            raise OAuthError(OAuthFailure.INVALID_GRANT, "no_refresh_token",
                             f"{self.platform.value}: no refresh token stored")
        return await self._token({"grant_type": "refresh_token", "refresh_token": credential.refresh_token},
                                 credential.refresh_token)

    def _decoded(self, code: str) -> str:
        return code

    def _user_id(self, body: dict[str, Any]) -> str | None:
        return None

    async def _token(self, form: dict[str, str], secret: str) -> TokenGrant:
        form = {self.client_param: self.app.client_id, "client_secret": self.app.client_secret, **form}
        status, body = await self._send("POST", "token", data=form)
        # TikTok may report an error inside HTTP 200 (its sandbox does for refreshes): read the body
        if status != 200 or not isinstance(body, dict) or body.get("error"):
            raise _oauth2_error(self.platform, status, body, self._secrets(secret))
        return TokenGrant(
            access_token=_required_token(self.platform, body),
            refresh_token=body.get("refresh_token") or None,  # Google: normally only on the code exchange
            access_expires_in=_lifetime(body, "expires_in"),
            refresh_expires_in=_lifetime(body, self.refresh_lifetime_key),
            scopes=tuple(s for s in str(body.get("scope") or "").split(self.scope_separator) if s),
            remote_user_id=self._user_id(body),
        )


class TikTokOAuth(_TokenEndpoint):
    platform = Platform.TIKTOK
    endpoints = _TIKTOK
    client_param = "client_key"
    scope_separator = ","
    refresh_lifetime_key = "refresh_expires_in"

    def authorize_url(self, state: str, **extra: str) -> str:
        query = {"client_key": self.app.client_id, "scope": ",".join(TIKTOK_SCOPES), "response_type": "code",
                 "redirect_uri": self.app.redirect_uri, "state": state, **extra}
        return f"{self.url('authorize')}?{urlencode(query)}"

    def _decoded(self, code: str) -> str:
        return unquote(code)  # TikTok hands the code URL-encoded and wants it decoded

    def _user_id(self, body: dict[str, Any]) -> str | None:
        return str(body["open_id"]) if body.get("open_id") else None


class InstagramOAuth(_Base):
    """Instagram Login: code → short-lived token (1 h) → long-lived (60 days), refreshed in place."""

    platform = Platform.INSTAGRAM
    endpoints = _INSTAGRAM

    def authorize_url(self, state: str, **extra: str) -> str:
        query = {"client_id": self.app.client_id, "redirect_uri": self.app.redirect_uri,
                 "response_type": "code", "scope": ",".join(INSTAGRAM_SCOPES), "state": state, **extra}
        return f"{self.url('authorize')}?{urlencode(query)}"

    async def exchange_code(self, code: str) -> TokenGrant:
        code = code.removesuffix("#_")  # Instagram appends `#_` to the redirect
        form = {"client_id": self.app.client_id, "client_secret": self.app.client_secret,
                "grant_type": "authorization_code", "redirect_uri": self.app.redirect_uri, "code": code}
        status, body = await self._send("POST", "code", data=form)
        short = body["data"][0] if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"] \
            else body
        if status != 200 or not isinstance(short, dict) or not short.get("access_token"):
            raise self._error(status, body, code)
        short_token = str(short["access_token"])
        status, body = await self._send("GET", "exchange", short_token, params={
            "grant_type": "ig_exchange_token", "client_secret": self.app.client_secret,
            "access_token": short_token})
        if status != 200:
            raise self._error(status, body, short_token)
        permissions = short.get("permissions") or []
        if isinstance(permissions, str):
            permissions = permissions.split(",")
        return TokenGrant(
            access_token=_required_token(self.platform, body),
            access_expires_in=_lifetime(body, "expires_in"),
            scopes=tuple(str(p) for p in permissions if p),
            remote_user_id=str(short["user_id"]) if short.get("user_id") else None,
        )

    async def refresh(self, credential: Credential) -> TokenGrant:
        token = credential.access_token
        status, body = await self._send("GET", "refresh", token, params={
            "grant_type": "ig_refresh_token", "access_token": token})
        if status != 200:
            raise self._error(status, body, token)
        return TokenGrant(access_token=_required_token(self.platform, body),
                          access_expires_in=_lifetime(body, "expires_in"))

    def _error(self, status: int, body: Any, secret: str) -> OAuthError:
        """Graph errors (`error.code`) or api.instagram.com's flat `error_type`/`error_message`."""
        error = body.get("error") if isinstance(body, dict) else None
        flat = isinstance(body, dict) and "error_type" in body  # api.instagram.com's own shape
        if isinstance(error, dict):
            code, text = error.get("code"), str(error.get("message") or "")
        elif flat:
            code, text = body.get("code"), str(body.get("error_message") or "")
        else:
            code, text = None, ""
        label = f"graph_{code}" if code is not None else f"http_{status}"
        if isinstance(error, dict) and error.get("is_transient") or code in (1, 2, 4, 17, 341):
            failure = OAuthFailure.TRANSIENT
        elif code in (190, 102) or (flat and status == 400):
            failure = OAuthFailure.INVALID_GRANT  # expired, revoked or unknown token or code
        else:
            failure = OAuthFailure.REJECTED
        message = f"instagram refused the token request: {label}"
        if text:
            message += f" ({scrub(text, *self._secrets(secret))})"
        return OAuthError(failure, label, message[:500])


class GoogleOAuth(_TokenEndpoint):
    platform = Platform.YOUTUBE
    endpoints = _GOOGLE
    channel_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)  # seconds before each further try

    def authorize_url(self, state: str, **extra: str) -> str:
        query = {"client_id": self.app.client_id, "redirect_uri": self.app.redirect_uri,
                 "response_type": "code", "scope": " ".join(GOOGLE_SCOPES),
                 # offline + consent: the only way to be given a refresh token
                 "access_type": "offline", "prompt": "consent", "state": state, **extra}
        return f"{self.url('authorize')}?{urlencode(query)}"

    async def exchange_code(self, code: str) -> TokenGrant:
        """The tokens, and as `remote_user_id` the id of the channel they are for: Google's
        reply names nobody, and videos go to the channel of whoever signed in."""
        grant = await super().exchange_code(code)
        return replace(grant, remote_user_id=await self.channel_id(grant.access_token))

    async def channel_id(self, access_token: str) -> str:
        """`channels.list part=id mine=true`: the channel this token uploads to (one API unit a
        call). It needs a read scope (`youtube.readonly`); `youtube.upload` alone is refused.
        Transient failures are tried again: the code is spent, a new one means signing in again."""
        delays = iter(self.channel_retry_delays)
        while True:
            try:
                return await self._channel_id(access_token)
            except OAuthError as error:
                delay = next(delays, None)
                # the day's units do not come back in seconds
                if delay is None or error.failure is not OAuthFailure.TRANSIENT or error.code == "quotaExceeded":
                    raise
                await asyncio.sleep(max(delay, min(error.retry_after or 0.0, 10.0)))

    async def _channel_id(self, access_token: str) -> str:
        status, body = await self._send("GET", "channels", what="channels.list",
                                        params={"part": "id", "mine": "true"},
                                        headers={"Authorization": f"Bearer {access_token}"})
        items = body.get("items") if status == 200 and isinstance(body, dict) else None
        if items == [] or status == 200 and isinstance(body, dict) and "items" not in body:
            raise OAuthError(OAuthFailure.REJECTED, "no_channel",
                             "this Google login has no YouTube channel to post to: sign in with the "
                             "Google account (or brand account) that owns the channel")
        channel = items[0].get("id") if isinstance(items, list) and items and isinstance(items[0], dict) else None
        if isinstance(channel, str) and channel:
            return channel
        raise self._channel_error(status, body, access_token)

    def _channel_error(self, status: int, body: Any, token: str) -> OAuthError:
        """A Data API error (`error.errors[].reason`, platforms.md §3.5) reading the channel."""
        error = body.get("error") if isinstance(body, dict) else None
        errors = error.get("errors") if isinstance(error, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        reason = str(first.get("reason") or "") or (f"http_{status}" if status != 200 else "invalid_response")
        text = scrub(str(error.get("message") or ""), *self._secrets(token)) if isinstance(error, dict) else ""
        message = f"youtube could not tell which channel this login is (channels.list: {reason}"
        message += f", {text})" if text else ")"
        if reason == "insufficientPermissions" or status == 403 and "scope" in text:
            message += ("; autopost reads the channel to know whom it posts for, which needs the "
                        "youtube.readonly permission: connect again and leave it granted")
        if reason in ("quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded", "backendError") \
                or status == 200:
            failure = OAuthFailure.TRANSIENT
        else:
            failure = OAuthFailure.REJECTED
        return OAuthError(failure, reason, message[:500])


_CLIENTS: dict[Platform, type[_Base]] = {
    Platform.TIKTOK: TikTokOAuth, Platform.INSTAGRAM: InstagramOAuth, Platform.YOUTUBE: GoogleOAuth}


def oauth_client(platform: Platform, http: httpx.AsyncClient, app: OAuthApp,
                 sandbox_root: str | None = None) -> OAuthClient:
    return _CLIENTS[Platform(platform)](http, app, sandbox_root)


def oauth_http_client(timeout: float = 15.0) -> httpx.AsyncClient:
    """The client for token endpoints: deliberately not instrumented (URLs and bodies carry secrets)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False)
