"""Media is read safely: https only, public addresses only (every one a name resolves to),
redirects checked hop by hop, a size limit, local files only below their roots and in pieces."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from contracts import ErrorClass, MediaRef
from services.publishers.platforms import MediaPolicy, PlatformError, address_allowed, check_url, media_client
from services.publishers.platforms._media import checked_addresses, open_media
from services.runtime import AsgiServer

STRICT = MediaPolicy()
SANDBOX = MediaPolicy.sandbox()


def resolver(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]
    return resolve


async def read_all(http: httpx.AsyncClient, url: str, policy: MediaPolicy, **kwargs) -> bytes:
    async with open_media(http, MediaRef(url=url), policy, **kwargs) as stream:
        return b"".join([piece async for piece in stream.chunks])


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1",
])
def test_non_public_addresses_are_refused(address):
    assert not address_allowed(address, STRICT)


def test_public_addresses_pass_and_the_sandbox_mode_allows_loopback_only():
    assert address_allowed("93.184.216.34", STRICT) and address_allowed("2606:4700::1111", STRICT)
    assert address_allowed("127.0.0.1", SANDBOX) and address_allowed("::1", SANDBOX)
    assert not address_allowed("10.0.0.1", SANDBOX) and not address_allowed("169.254.169.254", SANDBOX)


@pytest.mark.parametrize("url, code", [
    ("http://cdn.example.com/v.mp4", "media_url_refused"),
    ("ftp://cdn.example.com/v.mp4", "media_url_refused"),
    ("https://user:pw@cdn.example.com/v.mp4", "media_url_refused"),
    ("https://127.0.0.1/v.mp4", "media_address_refused"),
    ("https://[::ffff:169.254.169.254]/latest/meta-data", "media_address_refused"),
    ("https://localhost:8443/v.mp4", "media_address_refused"),
])
def test_urls_are_checked_before_any_request(url, code):
    with pytest.raises(PlatformError) as raised:
        check_url(url, STRICT)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, code)


async def test_every_address_a_name_resolves_to_is_checked():
    policy = MediaPolicy(resolve=resolver({"cdn.example": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(PlatformError) as raised:
        await checked_addresses("cdn.example", 443, policy)
    assert raised.value.code == "media_address_refused"


async def test_the_check_happens_when_connecting_so_a_name_cannot_point_inside():
    # the URL passes (a name); the connect-time guard sees where it really leads
    policy = MediaPolicy(resolve=resolver({"cdn.example": ["169.254.169.254"]}))
    async with media_client(policy) as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, "https://cdn.example/v.mp4", policy)
    assert raised.value.code == "media_address_refused"


def media_host() -> Starlette:
    async def video(request):
        return Response(b"\7" * 300_000, media_type="video/mp4")

    async def hop(request):
        return RedirectResponse(request.query_params["to"], status_code=302)

    return Starlette(routes=[Route("/v.mp4", video), Route("/hop", hop)])


async def test_redirects_are_followed_by_hand_and_every_hop_checked_again():
    async with AsyncExitStack() as stack:
        server = AsgiServer(media_host(), "127.0.0.1", 0)
        await server.start()
        stack.push_async_callback(server.stop)
        port = server.port
        # names resolve to the local server (loopback is allowed here, as in the sandbox mode)
        policy = MediaPolicy.sandbox(resolve=resolver({
            "cdn.test": ["127.0.0.1"], "evil.test": ["127.0.0.1", "10.0.0.7"]}))
        http = await stack.enter_async_context(media_client(policy, timeout=5))
        base = f"http://cdn.test:{port}"

        assert len(await read_all(http, f"{base}/hop?to=/v.mp4", policy)) == 300_000
        for target, code in [(f"http://evil.test:{port}/v.mp4", "media_address_refused"),
                             ("http://10.0.0.7/v.mp4", "media_address_refused"),
                             ("file:///etc/passwd", "media_url_refused")]:
            with pytest.raises(PlatformError) as raised:
                await read_all(http, f"{base}/hop?to={target}", policy)
            assert raised.value.code == code, target
        two_hops = f"{base}/hop?to=" + quote(f"{base}/hop?to=/v.mp4", safe="")
        assert len(await read_all(http, two_hops, policy)) == 300_000
        few = MediaPolicy.sandbox(resolve=policy.resolve, max_redirects=1)
        with pytest.raises(PlatformError) as raised:
            await read_all(http, two_hops, few)
        assert raised.value.code == "media_too_many_redirects"


async def test_size_limits_hold_for_the_declared_length_and_for_the_bytes_read():
    async def endless():
        for _ in range(10):
            yield b"\0" * 100_000

    def host(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/declared.mp4":
            return httpx.Response(200, headers={"Content-Length": "5000000000"}, content=b"")
        return httpx.Response(200, content=endless())  # no length given

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        policy = MediaPolicy(max_bytes=500_000)
        for path in ("/declared.mp4", "/streamed.mp4"):
            with pytest.raises(PlatformError) as raised:
                await read_all(http, f"https://cdn.example{path}", policy)
            assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_too_large")


async def test_local_files_only_below_their_roots_and_streamed_in_pieces(tmp_path: Path):
    root, outside = tmp_path / "media", tmp_path / "private"
    root.mkdir(), outside.mkdir()
    clip = root / "clip.mp4"
    clip.write_bytes(os.urandom(2_500_000))
    (outside / "secret.mp4").write_bytes(b"secret")
    (root / "escape.mp4").symlink_to(outside / "secret.mp4")
    policy = MediaPolicy().with_roots(root)

    async with httpx.AsyncClient() as http:
        async with open_media(http, MediaRef(url=clip.as_uri()), policy, read_size=1_000_000) as stream:
            pieces = [piece async for piece in stream.chunks]
        assert stream.size == 2_500_000 and [len(p) for p in pieces] == [1_000_000, 1_000_000, 500_000]
        assert b"".join(pieces) == clip.read_bytes()
        assert await read_all(http, clip.as_uri(), policy, offset=2_000_000) == clip.read_bytes()[2_000_000:]
        for url in ((outside / "secret.mp4").as_uri(), (root / "escape.mp4").as_uri()):
            with pytest.raises(PlatformError) as raised:
                await read_all(http, url, policy)
            assert raised.value.code == "media_path_refused"
        with pytest.raises(PlatformError) as raised:
            await read_all(http, clip.as_uri(), MediaPolicy())  # no roots: no local files at all
        assert raised.value.code == "media_path_refused"


async def test_a_trusted_host_is_not_checked_and_the_sandbox_mode_trusts_the_sandbox(monkeypatch):
    policy = MediaPolicy(resolve=resolver({"sandbox": ["172.18.0.5"], "other": ["172.18.0.6"]}),
                         trusted_hosts=("sandbox",))
    assert await checked_addresses("sandbox", 8090, policy) == ["172.18.0.5"]
    with pytest.raises(PlatformError):
        await checked_addresses("other", 8090, policy)

    from services.publishers.app import media_policy
    from services.runtime import Settings

    monkeypatch.setenv("AUTOPOST_SANDBOX_URL", "http://sandbox:8090")
    sandboxed = media_policy(Settings.from_env())
    assert (sandboxed.allow_http, sandboxed.trusted_hosts) == (True, ("sandbox",))
    monkeypatch.delenv("AUTOPOST_SANDBOX_URL")
    real = media_policy(Settings.from_env())
    assert (real.allow_http, real.allow_loopback, real.trusted_hosts) == (False, False, ())
