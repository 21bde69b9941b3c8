"""A client shared by every account keeps no cookies: one account's reply must not set what the
next account's request sends (neither httpx's jar nor aiohttp's)."""

from __future__ import annotations

from aiohttp import web

from services.runtime import CookielessClient, cookieless_transport


async def _serve() -> tuple[web.AppRunner, str]:
    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="set")
        response.set_cookie("session", "account-a")
        return response

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", ""))

    app = web.Application()
    app.router.add_get("/set", set_cookie)
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def test_a_reply_s_cookie_is_not_sent_with_the_next_request():
    runner, base = await _serve()
    try:
        async with CookielessClient(transport=cookieless_transport(4)) as client:
            assert (await client.get(f"{base}/set")).headers["set-cookie"].startswith("session=")
            assert not client.cookies
            assert (await client.get(f"{base}/echo")).text == ""
            # one given for a request still goes with it
            assert (await client.get(f"{base}/echo", headers={"Cookie": "x=1"})).text == "x=1"
    finally:
        await runner.cleanup()


async def test_a_plain_client_would_have_sent_it():
    """The test above can fail: the same server, through the usual clients, gets it back."""
    import httpx
    from httpx_aiohttp import AiohttpTransport

    runner, base = await _serve()
    try:
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            await client.get(f"{base}/set")
            assert (await client.get(f"{base}/echo")).text == "session=account-a"
    finally:
        await runner.cleanup()
