"""Reading a post's media safely: what kind it is, and its bytes as a stream (https or file://).

A media URL comes from an upstream event, so the publisher must not become a way into the
network it runs in (SSRF) or onto its disk:
- remote media is https only, and every address its host resolves to must be public (no
  private, loopback, link-local, multicast or reserved ranges, IPv4-mapped forms included);
  the check runs when the connection is made (`GuardedResolver`), so a DNS answer cannot
  change between check and connect;
- redirects are followed by hand, each hop checked again, at most `max_redirects`;
- a size limit holds for the declared length and for the bytes actually read;
- the size a stream announces is the exact length it delivers: hosts are asked for the body
  unencoded (`Accept-Encoding: identity`), an encoded body's `Content-Length` is not taken as
  its size, and a stream that goes on past its size, or ends short of it, fails
  (`media_size_mismatch`) before its last bytes are handed over, so no upload is cut silently;
- one fetch may wait on its host `MediaPolicy.fetch_seconds` in all (`media_timeout`, retryable);
- local files only under the configured roots, streamed in pieces, never read whole.
The sandbox mode (`MediaPolicy.sandbox()`) allows plain http and loopback, for the local fakes;
`trusted_hosts` names hosts whose addresses are not checked (the sandbox on a private network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from contracts import ContentType, ErrorClass, MediaRef, PublishRequested

from services.runtime import CookielessClient, cookieless_transport, retry_after_seconds

from ._base import PlatformError, transport_failure

READ_SIZE = 1024 * 1024
VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".m4v": "video/mp4", ".mkv": "video/x-matroska"}
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
               ".webp": "image/webp", ".gif": "image/gif"}
REDIRECTS = {301, 302, 303, 307, 308}
# what one media fetch may spend waiting on its host in all (headers and body, the time the
# upload itself takes not counted): a host trickling bytes must not hold an upload place forever
FETCH_SECONDS = 3600.0
# IPv6 prefixes whose last 32 bits are an IPv4 address (checked as that address)
EMBEDDED_IPV4 = tuple(ipaddress.IPv6Network(n) for n in (
    "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
    "64:ff9b:1::/48",  # NAT64, local-use prefix (RFC 8215)
    "::/96",  # IPv4-compatible (deprecated, RFC 4291); :: and ::1 are themselves
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
))

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class MediaPolicy:
    allow_http: bool = False  # plain http: the sandbox mode only
    allow_loopback: bool = False  # 127.0.0.0/8 and ::1: the sandbox mode only
    max_bytes: int = 10 * 1024 ** 3
    max_redirects: int = 5
    local_roots: tuple[Path, ...] = ()  # local files only below these; none: no local files
    trusted_hosts: tuple[str, ...] = ()  # names whose addresses are not checked (a known media host)
    resolve: Resolver = field(default=system_resolver, compare=False)
    fetch_seconds: float = FETCH_SECONDS  # one fetch's whole wait on its host

    @classmethod
    def sandbox(cls, **changes: Any) -> "MediaPolicy":
        return cls(allow_http=True, allow_loopback=True, **changes)

    def with_roots(self, *roots: Path | str) -> "MediaPolicy":
        return replace(self, local_roots=self.local_roots + tuple(Path(r).resolve() for r in roots))


def refused(code: str, message: str) -> PlatformError:
    return PlatformError(ErrorClass.PERMANENT, code, message)


# -- addresses and URLs ----------------------------------------------------------------------

def address_allowed(address: str, policy: MediaPolicy) -> bool:
    """Public unicast only; loopback when the policy allows it. Embedded IPv4 is checked too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += [a for a in (ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())) if a is not None]
        if ip not in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")) and any(
                ip in network for network in EMBEDDED_IPV4):
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    for candidate in candidates:
        if candidate.is_loopback:
            if not policy.allow_loopback:
                return False
        elif not candidate.is_global or candidate.is_multicast:
            return False
    return True


def check_url(url: str, policy: MediaPolicy) -> tuple[str, int]:
    """Scheme, credentials and literal addresses of one URL (no DNS); (host, port) if fine."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise refused("media_url_refused", f"media must be fetched over https, not {scheme or 'no scheme'}")
    if parts.username or parts.password:
        raise refused("media_url_refused", "media URLs must not carry credentials")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise refused("media_url_refused", "media URL has no host")
    if host in policy.trusted_hosts:
        pass
    elif host == "localhost" or host.endswith(".localhost"):
        if not policy.allow_loopback:
            raise refused("media_address_refused", "media host is loopback")
    else:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass  # a name: its addresses are checked when connecting
        else:
            if not address_allowed(host, policy):
                raise refused("media_address_refused", f"media host {host} is not a public address")
    return host, parts.port or (443 if scheme == "https" else 80)


async def checked_addresses(host: str, port: int, policy: MediaPolicy) -> list[str]:
    """Every address `host` resolves to, all of them allowed, or a permanent refusal."""
    try:
        addresses = await policy.resolve(host, port)
    except OSError as exc:
        raise PlatformError(ErrorClass.RETRYABLE, "media_unavailable",
                            f"cannot resolve the media host: {exc}") from None
    if not addresses:
        raise PlatformError(ErrorClass.RETRYABLE, "media_unavailable", "the media host has no address")
    if host.rstrip(".").lower() in policy.trusted_hosts:
        return addresses
    if bad := [a for a in addresses if not address_allowed(a, policy)]:
        raise refused("media_address_refused", f"media host resolves to a non-public address ({bad[0]})")
    return addresses


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for media: every address a name resolves to is checked before a
    connection is made, so a DNS answer cannot change between check and connect. (aiohttp
    does not resolve literal addresses; `check_url` has checked those, on every hop.)"""

    def __init__(self, policy: MediaPolicy):
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = await checked_addresses(host, port, self.policy)
        return [ResolveResult(hostname=host, host=a, port=port, proto=0, flags=socket.AI_NUMERICHOST,
                              family=socket.AF_INET6 if ":" in a else socket.AF_INET) for a in addresses]

    async def close(self) -> None:
        pass


def media_client(policy: MediaPolicy, *, timeout: float = 30.0, max_connections: int = 50,
                 wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None
                 ) -> httpx.AsyncClient:
    """The client media is fetched with: redirects off (followed by hand), every name checked
    when connecting (`GuardedResolver`), on aiohttp's pool like the platform calls. `wrap`
    layers a transport over it (tracing)."""
    transport: httpx.AsyncBaseTransport = cookieless_transport(max_connections, resolver=GuardedResolver(policy))
    if wrap is not None:
        transport = wrap(transport)
    return CookielessClient(transport=transport, follow_redirects=False, trust_env=False,
                            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


# -- kinds -------------------------------------------------------------------------------------

def mime_type(media: MediaRef) -> str:
    """The declared type, else one guessed from the extension."""
    if media.mime_type:
        return media.mime_type.split(";")[0].strip().lower()
    suffix = PurePosixPath(unquote(urlsplit(str(media.url)).path)).suffix.lower()
    return VIDEO_TYPES.get(suffix) or IMAGE_TYPES.get(suffix) or "application/octet-stream"


def is_video(media: MediaRef, content_type: ContentType) -> bool:
    """Video or image: the media's type when known, else what the content type implies."""
    kind = mime_type(media).split("/")[0]
    if kind in ("video", "image"):
        return kind == "video"
    return content_type in (ContentType.VIDEO, ContentType.REEL)


def check_kind(request: PublishRequested, platform: str) -> bool:
    """Whether the first media is a video; a permanent error when it contradicts the content type."""
    video = is_video(request.media[0], request.content_type)
    wants = {ContentType.VIDEO: True, ContentType.REEL: True, ContentType.IMAGE: False}.get(
        request.content_type, video)
    if video != wants:
        raise PlatformError(ErrorClass.PERMANENT, "media_type_mismatch",
                            f"{platform}: {request.content_type.value} content needs "
                            f"{'a video' if wants else 'an image'}")
    return video


def is_remote(media: MediaRef) -> bool:
    return media.url.scheme in {"http", "https"}


def local_path(media: MediaRef) -> Path:
    parts = urlsplit(str(media.url))
    return Path(url2pathname(unquote(parts.path)))


# -- bytes -------------------------------------------------------------------------------------

@dataclass
class MediaStream:
    size: int | None  # None when the host does not say
    content_type: str
    chunks: AsyncIterator[bytes]  # from `offset` on


@asynccontextmanager
async def open_media(http: httpx.AsyncClient, media: MediaRef, policy: MediaPolicy, *,
                     offset: int = 0, max_bytes: int | None = None,
                     read_size: int = READ_SIZE) -> AsyncIterator[MediaStream]:
    """The media's bytes from `offset` on, as a stream; every failure is a PlatformError."""
    limit = min(policy.max_bytes, max_bytes) if max_bytes is not None else policy.max_bytes
    if is_remote(media):
        budget = _Budget(policy.fetch_seconds)
        async with _fetch(http, str(media.url), policy, budget) as response:
            length = response.headers.get("content-length")
            encoded = response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")
            # an encoded body's length is not the decoded body's: then only the declared size
            size = int(length) if length and length.isdigit() and not encoded else media.size_bytes
            if size is not None and size > limit:
                raise refused("media_too_large", f"media is {size} bytes, the limit is {limit}")
            chunks = budget.timed(response.aiter_bytes(read_size))
            if size is not None:
                chunks = _exact(chunks, size)
            yield MediaStream(size, mime_type(media), _limited(_skip(chunks, offset), limit - offset))
        return
    path = _allowed_local_path(media, policy)
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise PlatformError(ErrorClass.PERMANENT, "media_unavailable",
                            f"cannot read local media: {exc.strerror}") from None
    try:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise refused("media_too_large", f"media is {size} bytes, the limit is {limit}")
        if offset:
            await asyncio.to_thread(handle.seek, offset)
        yield MediaStream(size, mime_type(media), _exact(_read_file(handle, read_size), size, offset))
    finally:
        handle.close()


@asynccontextmanager
async def _fetch(http: httpx.AsyncClient, url: str, policy: MediaPolicy,
                 budget: "_Budget") -> AsyncIterator[httpx.Response]:
    """GET `url`, following redirects by hand, each hop checked; the 200 response, streaming.
    The body is asked for unencoded, so its `Content-Length` is its length."""
    for _ in range(policy.max_redirects + 1):
        check_url(url, policy)
        request = http.build_request("GET", url, headers={"Accept-Encoding": "identity"})
        try:
            response = await budget.wait(http.send(request, stream=True, follow_redirects=False))
        except httpx.TransportError as exc:
            failure = transport_failure(exc)
            raise PlatformError(failure.error_class, "media_unavailable", f"media host: {failure.message}") from None
        try:
            location = response.headers.get("location")
            if response.status_code in REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if response.status_code != 200:
                status = response.status_code
                retryable = status >= 500 or status in (408, 429)  # down, timed out or busy: later
                raise PlatformError(ErrorClass.RETRYABLE if retryable else ErrorClass.PERMANENT,
                                    "media_unavailable", f"media host answered {status}",
                                    retry_after_seconds(response) if retryable else None)
            try:
                yield response
            except httpx.TransportError as exc:
                failure = transport_failure(exc)
                raise PlatformError(failure.error_class, "media_unavailable",
                                    f"media host: {failure.message}") from None
            return
        finally:
            await response.aclose()
    raise refused("media_too_many_redirects", f"media redirected more than {policy.max_redirects} times")


def _allowed_local_path(media: MediaRef, policy: MediaPolicy) -> Path:
    path = local_path(media)
    if "\0" in str(path):
        raise refused("media_path_refused", "local media path contains a NUL byte")
    try:
        real = path.resolve(strict=True)
    except ValueError:  # another path the OS cannot name
        raise refused("media_path_refused", "local media path is not a valid path") from None
    except (OSError, RuntimeError):
        raise PlatformError(ErrorClass.PERMANENT, "media_unavailable", "cannot read local media: no such file") from None
    if not any(real.is_relative_to(root) for root in policy.local_roots):
        raise refused("media_path_refused", "local media is outside the allowed folders")
    return real


class _Budget:
    """The time one fetch may wait on its host, spent across its waits (not between them)."""

    def __init__(self, seconds: float):
        self.left = seconds

    async def wait(self, step: Awaitable[Any]) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(max(self.left, 0.0)):
                return await step
        except TimeoutError:
            raise PlatformError(ErrorClass.RETRYABLE, "media_timeout",
                                "the media host took too long to deliver the media") from None
        finally:
            self.left -= loop.time() - started

    async def timed(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        while True:
            try:
                piece = await self.wait(anext(chunks))
            except StopAsyncIteration:
                return
            yield piece


async def _exact(chunks: AsyncIterator[bytes], size: int, start: int = 0) -> AsyncIterator[bytes]:
    """The stream, holding to `size` bytes in all (`start` of them before it): more, or fewer
    at its end, is a permanent `media_size_mismatch`. The piece that reaches `size` is handed
    over only once the stream has been seen to end there, so an uploader that reads exactly
    `size` bytes still learns of bytes past it."""
    seen = start
    held: bytes | None = None
    async for piece in chunks:
        if not piece:
            continue
        seen += len(piece)
        if held is not None or seen > size:
            raise PlatformError(ErrorClass.PERMANENT, "media_size_mismatch",
                                f"the media was announced as {size} bytes but more arrived "
                                f"(at least {seen})")
        if seen == size:
            held = piece  # the last, if the stream ends here
            continue
        yield piece
    if seen < size:
        raise PlatformError(ErrorClass.PERMANENT, "media_size_mismatch",
                            f"the media was announced as {size} bytes but only {seen} arrived")
    if held is not None:
        yield held


async def _read_file(handle, read_size: int) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(handle.read, read_size):
        yield piece


async def _skip(chunks: AsyncIterator[bytes], offset: int) -> AsyncIterator[bytes]:
    """Drop the first `offset` bytes (a resumed upload re-reads a host that ignores ranges)."""
    async for piece in chunks:
        if offset >= len(piece):
            offset -= len(piece)
            continue
        yield piece[offset:] if offset else piece
        offset = 0


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for piece in chunks:
        seen += len(piece)
        if seen > limit:
            raise refused("media_too_large", "media is larger than the limit")
        yield piece


async def fill(chunks: AsyncIterator[bytes], buffer: bytearray, size: int) -> bool:
    """Read into `buffer` until it holds at least `size` bytes; False if the stream ends first."""
    while len(buffer) < size:
        try:
            buffer += await anext(chunks)
        except StopAsyncIteration:
            return False
    return True


def head_bytes(buffer: bytearray, size: int) -> bytes:
    """The first `size` bytes of `buffer`, copied once, to send as an upload chunk.

    `bytes(buffer[:size])` copies twice (the slice is a bytearray of its own): with chunks of
    tens of MB, the second copy is a chunk more at an upload's peak (YouTube and TikTok)."""
    with memoryview(buffer) as view:
        return bytes(view[:size])
