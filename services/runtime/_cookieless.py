"""HTTP clients that keep no cookies, on either layer (httpx's jar and aiohttp's).

One client serves every account of a platform: a cookie one account's reply set would go out
with the next account's request. Platform APIs authenticate by bearer token and need none.
Not keeping them also saves httpx a cookie-jar round per request (a quarter of its own cost
per request: building urllib's request and response stand-ins for `http.cookiejar`).
"""

from __future__ import annotations

import aiohttp
import aiohttp.abc
import httpx
from httpx_aiohttp import AiohttpTransport


class _NoCookies(httpx.Cookies):
    """Always empty: keeps nothing from a reply, adds nothing to a request."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


_NO_COOKIES = _NoCookies()


class CookielessClient(httpx.AsyncClient):
    """An httpx client whose cookie jar stays empty (cookies passed per request still go)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value: object) -> None:
        pass


def cookieless_transport(max_connections: int, *,
                         resolver: aiohttp.abc.AbstractResolver | None = None) -> AiohttpTransport:
    """httpx's API on an aiohttp pool of `max_connections` whose session keeps no cookies
    (made on first use, inside the running loop, as aiohttp requires); idle connections are
    kept as httpx's own pool keeps them (5 s)."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=max_connections, resolver=resolver, keepalive_timeout=5.0,
                                         ssl=httpx.create_ssl_context())
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(client=session)
