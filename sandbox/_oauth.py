"""Fake OAuth for the three platforms (platforms.md §1.1, §2.1, §3.1), and the gate that checks
the access tokens it issued on every API call.

Paths are the real ones under each platform's mount: `/tiktok/v2/auth/authorize/` and
`/tiktok/v2/oauth/token/`; `/instagram/oauth/authorize`, `/instagram/oauth/access_token`,
`/instagram/access_token`, `/instagram/refresh_access_token`; `/youtube/o/oauth2/v2/auth` and
`/youtube/token`. Authorize pages sign in the user named by `sandbox_user` and redirect straight
back with a code (no real platform has that parameter). Refresh behaves as on each platform:
TikTok rotates its refresh token and the old one stops working; Google keeps its refresh token;
Instagram refreshes the long-lived token itself, once it is a day old.

The gate lets an issued, unexpired access token through as the account's `sandbox:<id>` token
(the identity the fakes use), answers an expired or unknown issued token with the platform's
401, and passes other tokens on unless `require_issued_tokens` is set.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ._http import json_response, read_params
from ._store import Faults, SandboxSettings, now

CODE_TTL = 600.0
_LIFETIMES = {  # (access, refresh) seconds
    "tiktok": (2 * 3600.0, 180 * 86400.0),
    "instagram": (60 * 86400.0, None),  # the long-lived token; the short-lived one lives an hour
    "youtube": (3599.0, None),
}
_ACCESS_PREFIXES = {"tiktok": "act.", "instagram": "IGAA", "youtube": "ya29."}
_SHORT_PREFIX = "IGQV"


@dataclass
class Issued:
    platform: str
    account_id: str
    expires_at: float | None
    issued_at: float
    scopes: str = ""


@dataclass
class Code:
    platform: str
    account_id: str
    redirect_uri: str
    scopes: str
    offline: bool
    expires_at: float


@dataclass
class OAuthStore:
    codes: dict[str, Code] = field(default_factory=dict)
    access: dict[str, Issued] = field(default_factory=dict)
    refresh: dict[str, Issued] = field(default_factory=dict)
    short_lived: dict[str, Issued] = field(default_factory=dict)  # Instagram's one-hour tokens
    calls: Counter[str] = field(default_factory=Counter)  # "tiktok.refresh", "youtube.exchange", ...
    faults: Faults = field(default_factory=Faults)

    def account_for(self, platform: str, token: str) -> str | None:
        """The account an issued, unexpired access token of `platform` belongs to."""
        issued = self.access.get(token)
        if issued is None or issued.platform != platform or _expired(issued):
            return None
        return issued.account_id

    def tokens_of(self, platform: str, account_id: str) -> dict[str, list[str]]:
        """Every token issued to an account (tests look for them in logs and messages)."""
        def mine(table: dict[str, Issued]) -> list[str]:
            return [t for t, i in table.items() if i.platform == platform and i.account_id == account_id]
        return {"access": mine(self.access), "refresh": mine(self.refresh), "short": mine(self.short_lived)}

    def expire_access(self, platform: str, account_id: str) -> int:
        """Expire the account's access tokens now (as time passing would); refresh still works."""
        count = 0
        for issued in self.access.values():
            if issued.platform == platform and issued.account_id == account_id:
                issued.expires_at, count = now() - 1, count + 1
        return count

    def revoke(self, platform: str, account_id: str) -> int:
        """The user removed the app: every token of the account stops working."""
        count = 0
        for table in (self.access, self.refresh, self.short_lived):
            for token in [t for t, i in table.items() if i.platform == platform and i.account_id == account_id]:
                del table[token]
                count += 1
        return count


def _expired(issued: Issued) -> bool:
    return issued.expires_at is not None and now() >= issued.expires_at


class OAuthApi:
    def __init__(self, store: OAuthStore, settings: SandboxSettings):
        self.store, self.settings = store, settings

    def routes(self) -> list[BaseRoute]:
        """Listed before the platforms' own mounts: Instagram's `/{version}/{node}` would match these."""
        return [
            Route("/tiktok/v2/auth/authorize/", self.authorize("tiktok", "client_key"), methods=["GET"]),
            Route("/tiktok/v2/oauth/token/", self.tiktok_token, methods=["POST"]),
            Route("/instagram/oauth/authorize", self.authorize("instagram", "client_id"), methods=["GET"]),
            Route("/instagram/oauth/access_token", self.instagram_code, methods=["POST"]),
            Route("/instagram/access_token", self.instagram_exchange, methods=["GET"]),
            Route("/instagram/refresh_access_token", self.instagram_refresh, methods=["GET"]),
            Route("/youtube/o/oauth2/v2/auth", self.authorize("youtube", "client_id"), methods=["GET"]),
            Route("/youtube/token", self.google_token, methods=["POST"]),
            Route("/_sandbox/oauth/expire", self.control(self.store.expire_access), methods=["POST"]),
            Route("/_sandbox/oauth/revoke", self.control(self.store.revoke), methods=["POST"]),
            Route("/_sandbox/oauth/calls", self.calls, methods=["GET"]),
        ]

    # -- authorize: sign the named user in, redirect back with a code -------------------------

    def authorize(self, platform: str, client_param: str):
        async def handler(request: Request) -> Response:
            params = request.query_params
            user, redirect = params.get("sandbox_user"), params.get("redirect_uri")
            if not params.get(client_param) or params.get("response_type") != "code" or not redirect:
                return json_response({"error": "invalid_request",
                                      "error_description": f"{client_param}, response_type=code and "
                                                           "redirect_uri are required"}, 400)
            if not user:
                return json_response({"error": "invalid_request",
                                      "error_description": "the sandbox signs in the user named by sandbox_user"},
                                     400)
            code = secrets.token_urlsafe(24)
            if platform == "tiktok":
                code += "*0!"  # TikTok's codes need URL-decoding before the exchange
            self.store.codes[code] = Code(platform, user, redirect, params.get("scope", ""),
                                          offline=platform != "youtube" or params.get("access_type") == "offline",
                                          expires_at=now() + CODE_TTL)
            query = urlencode({"code": code, "state": params.get("state", ""), "scopes": params.get("scope", "")})
            suffix = "#_" if platform == "instagram" else ""  # Instagram appends this to its redirect
            return RedirectResponse(f"{redirect}{'&' if '?' in redirect else '?'}{query}{suffix}", 302)

        return handler

    def _take_code(self, platform: str, params: dict[str, str]) -> Code | None:
        code = self.store.codes.pop(params.get("code", ""), None)  # single use
        if code is None or code.platform != platform or now() > code.expires_at:
            return None
        return code if code.redirect_uri == params.get("redirect_uri") else None

    def _issue(self, platform: str, account_id: str, scopes: str, *, table: dict[str, Issued] | None = None,
               lifetime: float | None = None, prefix: str | None = None) -> tuple[str, int]:
        """A new access token and its lifetime in seconds."""
        seconds = lifetime or self.settings.access_token_seconds or _LIFETIMES[platform][0]
        token = (prefix or _ACCESS_PREFIXES[platform]) + secrets.token_urlsafe(32)
        (self.store.access if table is None else table)[token] = Issued(
            platform, account_id, now() + seconds, now(), scopes)
        return token, int(seconds)

    def _issue_refresh(self, platform: str, account_id: str, scopes: str) -> tuple[str, int | None]:
        seconds = _LIFETIMES[platform][1]
        token = ("rft." if platform == "tiktok" else "1//") + secrets.token_urlsafe(40)
        self.store.refresh[token] = Issued(platform, account_id, now() + seconds if seconds else None, now(), scopes)
        return token, int(seconds) if seconds else None

    # -- TikTok ------------------------------------------------------------------------------

    async def _token_request(self, platform: str, request: Request) -> tuple[dict[str, str], str | None]:
        """The form of a code exchange or refresh, counted as one or the other."""
        params = await read_params(request)
        grant_type = params.get("grant_type")
        self.store.calls[f"{platform}.{'refresh' if grant_type == 'refresh_token' else 'exchange'}"] += 1
        return params, grant_type

    async def tiktok_token(self, request: Request) -> Response:
        if fault := await self.store.faults.before("tiktok.oauth_token", request):
            return fault
        params, grant_type = await self._token_request("tiktok", request)
        if params.get("client_secret") != self.settings.oauth_client_secret or not params.get("client_key"):
            return _tiktok_error("invalid_client", "Client key or secret is invalid.", 401)
        if grant_type == "authorization_code":
            code = self._take_code("tiktok", params)
            if code is None:
                return _tiktok_error("invalid_grant", "Authorization code is expired or invalid.", 400)
            return self._tiktok_pair(code.account_id, code.scopes)
        if grant_type == "refresh_token":
            old = self.store.refresh.pop(params.get("refresh_token", ""), None)  # rotation: dead from now on
            if old is None or old.platform != "tiktok" or _expired(old):
                # HTTP 200 with an error body, as TikTok's sandbox answers refreshes
                return _tiktok_error("invalid_grant", "Refresh token is invalid or expired.", 200)
            return self._tiktok_pair(old.account_id, old.scopes)
        return _tiktok_error("unsupported_grant_type", "grant_type is not supported.", 400)

    def _tiktok_pair(self, account_id: str, scopes: str) -> Response:
        access, expires_in = self._issue("tiktok", account_id, scopes)
        refresh, refresh_expires_in = self._issue_refresh("tiktok", account_id, scopes)
        return json_response({
            "open_id": f"open-{account_id}", "scope": scopes, "access_token": access, "expires_in": expires_in,
            "refresh_token": refresh, "refresh_expires_in": refresh_expires_in, "token_type": "Bearer",
        })

    # -- Instagram ---------------------------------------------------------------------------

    async def instagram_code(self, request: Request) -> Response:
        if fault := await self.store.faults.before("instagram.oauth_code", request):
            return fault
        params = await read_params(request)
        self.store.calls["instagram.exchange"] += 1
        if params.get("client_secret") != self.settings.oauth_client_secret:
            return _instagram_flat_error("Invalid Client Secret")
        code = self._take_code("instagram", params) if params.get("grant_type") == "authorization_code" else None
        if code is None:
            return _instagram_flat_error("Invalid authorization code")
        token, _ = self._issue("instagram", code.account_id, code.scopes, table=self.store.short_lived,
                               lifetime=3600.0, prefix=_SHORT_PREFIX)
        return json_response({"data": [{"access_token": token, "user_id": code.account_id,
                                        "permissions": code.scopes}]})

    async def instagram_exchange(self, request: Request) -> Response:
        if fault := await self.store.faults.before("instagram.oauth_exchange", request):
            return fault
        params = request.query_params
        if params.get("grant_type") != "ig_exchange_token" or \
                params.get("client_secret") != self.settings.oauth_client_secret:
            return _graph_oauth_error(101, "Error validating client secret.")
        short = self.store.short_lived.pop(params.get("access_token", ""), None)
        if short is None or _expired(short):
            return _graph_oauth_error(190, "Invalid OAuth access token - Cannot parse access token")
        return self._long_lived(short.account_id, short.scopes)

    async def instagram_refresh(self, request: Request) -> Response:
        if fault := await self.store.faults.before("instagram.oauth_refresh", request):
            return fault
        params = request.query_params
        self.store.calls["instagram.refresh"] += 1
        old = self.store.access.get(params.get("access_token", ""))
        if params.get("grant_type") != "ig_refresh_token" or old is None or old.platform != "instagram" \
                or _expired(old):
            return _graph_oauth_error(190, "Error validating access token: Session has expired.", 463)
        if now() - old.issued_at < self.settings.instagram_refresh_min_age:
            return _graph_oauth_error(100, "(#100) The access token must be at least 24 hours old to refresh.")
        return self._long_lived(old.account_id, old.scopes)

    def _long_lived(self, account_id: str, scopes: str) -> Response:
        token, expires_in = self._issue("instagram", account_id, scopes)
        return json_response({"access_token": token, "token_type": "bearer", "expires_in": expires_in})

    # -- Google ------------------------------------------------------------------------------

    async def google_token(self, request: Request) -> Response:
        if fault := await self.store.faults.before("youtube.oauth_token", request):
            return fault
        params, grant_type = await self._token_request("youtube", request)
        if params.get("client_secret") != self.settings.oauth_client_secret or not params.get("client_id"):
            return json_response({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        if grant_type == "authorization_code":
            code = self._take_code("youtube", params)
            if code is None:
                return _google_invalid_grant("Malformed auth code.")
            access, expires_in = self._issue("youtube", code.account_id, code.scopes)
            body = {"access_token": access, "expires_in": expires_in, "scope": code.scopes, "token_type": "Bearer"}
            if code.offline:  # no refresh token without access_type=offline, as on Google
                body["refresh_token"] = self._issue_refresh("youtube", code.account_id, code.scopes)[0]
            return json_response(body)
        if grant_type == "refresh_token":
            held = self.store.refresh.get(params.get("refresh_token", ""))  # Google does not rotate it
            if held is None or held.platform != "youtube" or _expired(held):
                return _google_invalid_grant("Token has been expired or revoked.")
            access, expires_in = self._issue("youtube", held.account_id, held.scopes)
            return json_response({"access_token": access, "expires_in": expires_in, "scope": held.scopes,
                                  "token_type": "Bearer"})
        return json_response({"error": "unsupported_grant_type"}, 400)

    # -- control -----------------------------------------------------------------------------

    def control(self, action):
        async def handler(request: Request) -> Response:
            platform, account = request.query_params.get("platform"), request.query_params.get("accountId")
            if not platform or not account:
                return json_response({"error": "platform and accountId are required"}, 400)
            return json_response({"tokens": action(platform, account)})

        return handler

    async def calls(self, request: Request) -> Response:
        return json_response(dict(self.store.calls))


def _tiktok_error(code: str, description: str, status: int) -> Response:
    return json_response({"error": code, "error_description": description,
                          "log_id": secrets.token_hex(16).upper()}, status)


def _instagram_flat_error(message: str) -> Response:
    return json_response({"error_type": "OAuthException", "code": 400, "error_message": message}, 400)


def _graph_oauth_error(code: int, message: str, subcode: int | None = None) -> Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": secrets.token_urlsafe(9)}
    if subcode is not None:
        error["error_subcode"] = subcode
    return json_response({"error": error}, 400)


def _google_invalid_grant(description: str) -> Response:
    return json_response({"error": "invalid_grant", "error_description": description}, 400)


# -- the gate ---------------------------------------------------------------------------------

_GATED = ("tiktok", "instagram", "youtube")
_OAUTH_PATHS = {"/tiktok/v2/auth/authorize/", "/tiktok/v2/oauth/token/", "/instagram/oauth/authorize",
                "/instagram/oauth/access_token", "/instagram/access_token", "/instagram/refresh_access_token",
                "/youtube/o/oauth2/v2/auth", "/youtube/token"}


class TokenGate:
    """Checks API calls' access tokens against those the fake OAuth issued (see the module doc)."""

    def __init__(self, app: ASGIApp, store: OAuthStore, settings: SandboxSettings):
        self.app, self.store, self.settings = app, store, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        platform = scope["path"].split("/", 2)[1] if scope["type"] == "http" else ""
        if platform not in _GATED or scope["path"] in _OAUTH_PATHS:
            return await self.app(scope, receive, send)
        headers = list(scope["headers"])
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        found = _token_in(headers, query)
        if found is None:  # no token at all: the fake answers that itself
            return await self.app(scope, receive, send)
        where, scheme, token = found
        account = self.store.account_for(platform, token)
        if account is None:
            if token.startswith((*_ACCESS_PREFIXES.values(), _SHORT_PREFIX)) or self.settings.require_issued_tokens:
                return await _refusal(platform)(scope, receive, send)
            return await self.app(scope, receive, send)
        identity = f"sandbox:{account}"
        if where == "header":
            headers = [(k, f"{scheme} {identity}".encode() if k == b"authorization" else v) for k, v in headers]
            scope = {**scope, "headers": headers}
        else:
            query = [(k, identity if k == "access_token" else v) for k, v in query]
            scope = {**scope, "query_string": urlencode(query).encode()}
        await self.app(scope, receive, send)


def _token_in(headers: list[tuple[bytes, bytes]], query: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    for key, value in headers:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() in ("bearer", "oauth") and token.strip():
                return "header", scheme, token.strip()
    for key, value in query:
        if key == "access_token" and value:
            return "query", "", value
    return None


def _refusal(platform: str) -> Response:
    """What each platform answers to an expired or unknown access token."""
    if platform == "tiktok":
        return json_response({"data": {}, "error": {
            "code": "access_token_invalid", "message": "The access token is invalid or not found in the request.",
            "log_id": secrets.token_hex(16).upper()}}, 401)
    if platform == "instagram":
        return json_response({"error": {
            "message": "Error validating access token: Session has expired.", "type": "OAuthException",
            "code": 190, "error_subcode": 463, "fbtrace_id": secrets.token_urlsafe(9)}}, 400)
    return json_response({"error": {
        "code": 401, "message": "Request had invalid authentication credentials.",
        "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                    "location": "Authorization", "locationType": "header"}],
        "status": "UNAUTHENTICATED"}}, 401)
