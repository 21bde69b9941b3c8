"""The media stream is what it says: its announced size is the exact length delivered (a host
that sends more or fewer bytes is a permanent `media_size_mismatch`, never a silently cut
upload), hosts are asked for the body unencoded, a fetch has an overall time budget, IPv6 forms
embedding an IPv4 address are checked by that address, a busy host is retried, and a local path
with a NUL byte is refused."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest

from contracts import ErrorClass, MediaRef
from services.publishers.platforms import MediaPolicy, PlatformError, address_allowed
from services.publishers.platforms._media import fill, open_media

STRICT = MediaPolicy()
SANDBOX = MediaPolicy.sandbox()


async def read_all(http: httpx.AsyncClient, media: MediaRef | str, policy: MediaPolicy = STRICT,
                   **kwargs) -> tuple[int | None, bytes]:
    media = MediaRef(url=media) if isinstance(media, str) else media
    async with open_media(http, media, policy, **kwargs) as stream:
        return stream.size, b"".join([piece async for piece in stream.chunks])


def pieces(total: int, piece: int = 100_000):
    async def body():
        for start in range(0, total, piece):
            yield b"\1" * min(piece, total - start)
    return body()


# -- 1. the announced size is the exact length --------------------------------------------------

async def test_hosts_are_asked_for_the_body_unencoded_and_a_gzipped_length_is_not_taken_as_the_size():
    seen: list[str | None] = []
    raw = b"\0" * 3_000_000
    packed = gzip.compress(raw)

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return httpx.Response(200, headers={"Content-Encoding": "gzip", "Content-Length": str(len(packed))},
                              content=packed)

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        size, body = await read_all(http, "https://cdn.example/v.mp4")
    assert seen == ["identity"]
    # the compressed length is not the body's: not announced as its size
    assert size != len(packed) and len(body) == 3_000_000


async def test_more_bytes_than_the_declared_size_is_a_permanent_mismatch_even_read_exactly_to_the_size():
    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pieces(3_000_000))  # chunked: no Content-Length

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        media = MediaRef(url="https://cdn.example/v.mp4", size_bytes=1_000_000)
        with pytest.raises(PlatformError) as raised:
            await read_all(http, media)
        assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_size_mismatch")
        assert "1000000" in raised.value.message
        # an uploader that reads exactly `size` bytes (TikTok's last chunk) learns it too
        with pytest.raises(PlatformError) as raised:
            async with open_media(http, media, STRICT) as stream:
                buffer = bytearray()
                await fill(stream.chunks, buffer, stream.size)
        assert raised.value.code == "media_size_mismatch"


async def test_fewer_bytes_than_the_content_length_is_a_permanent_mismatch():
    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "1000000"}, content=pieces(600_000))

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, MediaRef(url="https://cdn.example/v.mp4", size_bytes=1_000_000))
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_size_mismatch")
    assert "1000000" in raised.value.message and "600000" in raised.value.message


async def test_an_exact_length_passes_from_the_start_and_from_an_offset():
    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": "1000000"}, content=pieces(1_000_000, 300_000))

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        assert await read_all(http, "https://cdn.example/v.mp4") == (1_000_000, b"\1" * 1_000_000)
        size, body = await read_all(http, "https://cdn.example/v.mp4", offset=450_000)
        assert (size, len(body)) == (1_000_000, 550_000)


async def test_a_fetch_that_takes_longer_than_its_budget_is_a_retryable_timeout():
    async def trickle():
        for _ in range(100):
            await asyncio.sleep(0.05)
            yield b"\1"

    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, "https://cdn.example/v.mp4", MediaPolicy(fetch_seconds=0.3))
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.RETRYABLE, "media_timeout")


# -- 2. IPv6 forms embedding an IPv4 address -------------------------------------------------

@pytest.mark.parametrize("address", [
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",  # NAT64 (RFC 6052, 8215)
    "::a9fe:a9fe", "::a00:1", "::7f00:1",  # IPv4-compatible (deprecated)
    "::ffff:0:a9fe:a9fe", "::ffff:0:a00:1",  # IPv4-translated (SIIT)
])
def test_ipv6_forms_embedding_a_non_public_ipv4_are_refused(address):
    assert not address_allowed(address, STRICT)


def test_ipv6_forms_embedding_a_public_ipv4_pass_and_loopback_v6_stays_loopback():
    assert address_allowed("64:ff9b::5db8:d822", STRICT)  # 93.184.216.34 through NAT64
    assert address_allowed("::1", SANDBOX) and not address_allowed("::1", STRICT)
    assert address_allowed("64:ff9b::7f00:1", SANDBOX)  # loopback is what the sandbox allows
    assert not address_allowed("64:ff9b::a00:1", SANDBOX)


# -- 3. a busy host is retried; a NUL in a local path is refused -------------------------------

@pytest.mark.parametrize("status", [429, 408])
async def test_a_busy_or_timed_out_media_host_is_retryable_with_its_retry_after(status):
    def host(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Retry-After": "17"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(host)) as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, "https://cdn.example/v.mp4")
    assert (raised.value.error_class, raised.value.code, raised.value.retry_after) == (
        ErrorClass.RETRYABLE, "media_unavailable", 17.0)


async def test_a_404_stays_permanent():
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))) as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, "https://cdn.example/v.mp4")
    assert raised.value.error_class == ErrorClass.PERMANENT


async def test_a_local_path_with_a_nul_byte_is_a_permanent_refusal(tmp_path):
    policy = MediaPolicy().with_roots(tmp_path)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as raised:
            await read_all(http, f"file://{tmp_path}/clip%00.mp4", policy)
    assert (raised.value.error_class, raised.value.code) == (ErrorClass.PERMANENT, "media_path_refused")


async def test_a_local_file_that_grows_past_its_size_is_a_mismatch(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\1" * 1000)
    policy = MediaPolicy().with_roots(tmp_path)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as raised:
            async with open_media(http, MediaRef(url=clip.as_uri()), policy, read_size=400) as stream:
                first = await anext(stream.chunks)
                with clip.open("ab") as handle:
                    handle.write(b"\2" * 500)
                rest = [piece async for piece in stream.chunks]
                assert len(first) + sum(map(len, rest)) == 1000  # not reached
    assert raised.value.code == "media_size_mismatch"
