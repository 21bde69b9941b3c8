"""The interface every platform client implements, its results, and the error they all raise."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
import httpx
import orjson

from contracts import (
    EngagementFigures,
    ErrorClass,
    ObservedState,
    Platform,
    PublishError,
    PublishRequested,
    RemoteHandle,
    normalise_hashtags,
)
from services.runtime import retry_after_seconds

if TYPE_CHECKING:
    from ..limits import EndpointLimits
    from ._journal import Journal

REDACTED = "[redacted]"
T = TypeVar("T")


@dataclass(frozen=True)
class Accepted:
    """The platform took it and is processing; the poller follows it."""

    handle: RemoteHandle


@dataclass(frozen=True)
class Published:
    """Live now."""

    handle: RemoteHandle
    url: str


@dataclass(frozen=True)
class StatusReport:
    state: ObservedState
    url: str | None = None
    error: PublishError | None = None
    detail: str | None = None


class PlatformError(Exception):
    """Every failure talking to a platform, classified so the queue knows what to do next.

    `handle` is set when the failure came after the platform created something (a publish id,
    a container, an upload session), so a caller can keep it rather than create a second one.
    `maybe_processed` is set when the request may have reached the platform and been carried
    out although no answer came back (a timeout, a dropped connection): repeating a call that
    creates something is then unsafe. `pending` (with RETRYABLE) says the platform is still
    processing what it was sent: the queue comes back after `retry_after` without spending an
    attempt, and the next try resumes from the handle.
    """

    def __init__(
        self,
        error_class: ErrorClass,
        code: str,
        message: str,
        retry_after: float | None = None,
        *,
        handle: RemoteHandle | None = None,
        maybe_processed: bool = False,
        pending: bool = False,
    ):
        super().__init__(f"{error_class.value} {code}: {message}")
        self.error_class = error_class
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.handle = handle
        self.maybe_processed = maybe_processed
        self.pending = pending

    def to_contract(self) -> PublishError:
        return PublishError(
            error_class=self.error_class,
            code=self.code,
            message=self.message,
            retry_after_sec=max(0.0, self.retry_after) if self.retry_after is not None else None,
            pending=True if self.pending else None,
        )

    def redacted(self, secret: str) -> "PlatformError":
        return PlatformError(self.error_class, self.code, self.message.replace(secret, REDACTED),
                             self.retry_after, handle=self.handle, maybe_processed=self.maybe_processed,
                             pending=self.pending)


class PlatformClient(Protocol):
    """`publish` records every remote object in `journal` the moment the platform returns it,
    and starts by reading it back: a second call for the same target resumes or checks the
    remote state instead of posting again. `account_id` keys the per-account rate caps."""

    platform: Platform
    limits: "EndpointLimits"  # its per-account caps; they also tell which partitions went elsewhere

    async def publish(self, request: PublishRequested, token: str,
                      journal: "Journal | None" = None) -> Accepted | Published: ...

    async def check_status(self, handle: RemoteHandle, token: str,
                           account_id: str | None = None) -> StatusReport: ...

    async def fetch_engagement(
        self, handle: RemoteHandle, token: str, account_id: str, url: str | None = None
    ) -> EngagementFigures:
        """A published post's figures and the account's audience size, as of now."""
        ...

    async def read_engagement(
        self, handle: RemoteHandle, token: str, account_id: str, url: str | None = None
    ) -> tuple[EngagementFigures, str | None]:
        """`fetch_engagement`, with the post's URL when the read found one `url` did not give
        (TikTok's public id after a long moderation), for the queue to keep."""
        ...


@contextmanager
def classified(token: str) -> Iterator[None]:
    """Turn transport failures into retryable PlatformErrors, and keep the token out of messages."""
    try:
        yield
    except PlatformError as error:
        if token and token in error.message:
            raise error.redacted(token) from None
        raise
    except httpx.TransportError as exc:
        error = transport_failure(exc)
        raise (error.redacted(token) if token else error) from None


@contextmanager
def engagement_refusals(platform: str, permission_codes: Callable[[str], bool]) -> Iterator[None]:
    """An engagement read the account's grant does not cover (a scope unticked, an insight not
    given) fails for good: reconnecting the account, the answer to a rejected token, would
    take it out of service for its posting too, and grant nothing more."""
    try:
        yield
    except PlatformError as error:
        if error.error_class is not ErrorClass.AUTH or not permission_codes(error.code):
            raise
        raise PlatformError(ErrorClass.PERMANENT, "engagement_not_permitted",
                            f"{platform} does not let this account's grant read engagement "
                            f"({error.code}): {error.message}") from None


def transport_failure(exc: httpx.TransportError) -> PlatformError:
    """A request that got no answer. Only one that never left is sure not to have arrived."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return PlatformError(ErrorClass.PERMANENT, "unsupported_url", text)
    code = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport_error"
    return PlatformError(ErrorClass.RETRYABLE, code, text, maybe_processed=not never_sent(exc))


def never_sent(exc: httpx.TransportError) -> bool:
    """No connection was made (refused, no such host, connect timeout) or none came free from
    the pool: the request never left. httpx-aiohttp raises ConnectTimeout for every aiohttp
    connection error, a disconnect after the request was written too, so its cause decides."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


async def send(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP request; transport failures come back as PlatformErrors (see `transport_failure`),
    and so does an answer httpx cannot read (a 3xx whose Location is no URL: httpx parses it even
    when it does not follow it), which arrived after the request was taken."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise transport_failure(exc) from None
    except httpx.InvalidURL as exc:
        raise PlatformError(ErrorClass.RETRYABLE, "invalid_response", f"unreadable reply: {exc}",
                            maybe_processed=True) from None


def release_response(response: httpx.Response) -> None:
    """Let a read response go when its last reference does, with its request and the body in it.

    httpx's response and its stream refer to each other, so without this a response, its
    request and the upload chunk in that request (megabytes) wait for the garbage collector:
    finished chunks pile up beside the uploads at once, however few those are. Call it once
    the response's body is read (`send` reads it); its `content` stays readable."""
    response.stream = httpx.ByteStream(b"")


@dataclass(frozen=True)
class RetryRules:
    """How a client repeats one call in place before handing the failure to the queue.

    Only calls that are safe to repeat go through `with_retries` (reads, chunk re-sends, and
    creations whose orphans publish nothing). A server wait longer than `max_inline_wait` goes
    back to the queue as it is, so the account's work is not held up in this process.
    """

    attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 4.0
    max_inline_wait: float = 5.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, tries: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(tries-1))]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (tries - 1)))


def repeatable(error: PlatformError, rules: RetryRules, *, if_processed: bool = True) -> bool:
    """Whether `error` may be retried in place: transient, with a short enough server wait.

    `if_processed=False` refuses failures whose request may have been carried out.
    """
    if error.maybe_processed and not if_processed:
        return False
    if error.error_class is ErrorClass.RETRYABLE:
        return (error.retry_after or 0.0) <= rules.max_inline_wait
    if error.error_class is ErrorClass.RATE_LIMITED:
        return error.retry_after is not None and error.retry_after <= rules.max_inline_wait
    return False


async def with_retries(rules: RetryRules, call: Callable[[], Awaitable[T]], *,
                       if_processed: bool = True) -> T:
    """`call()`, repeated up to `rules.attempts` times while its failure is `repeatable`."""
    tries = 0
    while True:
        tries += 1
        try:
            return await call()
        except PlatformError as error:
            if tries >= rules.attempts or not repeatable(error, rules, if_processed=if_processed):
                raise
            wait = error.retry_after if error.retry_after is not None else rules.delay(tries)
            await rules.sleep(wait)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None when there is none or it is not JSON."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def unexpected_response(response: httpx.Response, what: str) -> PlatformError:
    """A reply outside the platform's documented shapes: 5xx, 429 and garbled 2xx retry. A 2xx
    was taken by the platform, which may have done what it was asked: maybe processed."""
    status = response.status_code
    if status < 300:
        return PlatformError(ErrorClass.RETRYABLE, "invalid_response", f"{what}: unreadable reply",
                             maybe_processed=True)
    if status == 429:
        return PlatformError(ErrorClass.RATE_LIMITED, "http_429", f"{what}: too many requests",
                             retry_after_seconds(response) or 60.0)
    if status >= 500:
        return PlatformError(ErrorClass.RETRYABLE, f"http_{status}", f"{what}: server error {status}",
                             retry_after_seconds(response))
    if status == 401:
        return PlatformError(ErrorClass.AUTH, "http_401", f"{what}: unauthorized")
    return PlatformError(ErrorClass.PERMANENT, f"http_{status}", f"{what}: unexpected reply {status}")


def caption_text(caption: str, hashtags: list[str]) -> str:
    """Caption, then the hashtags as `#tag`, separated by spaces (TikTok and Instagram)."""
    tags = " ".join(normalise_hashtags(hashtags))
    return " ".join(part for part in (caption.strip(), tags) if part)


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def require_kind(handle: RemoteHandle, kind: str) -> None:
    if handle.kind != kind:
        raise PlatformError(ErrorClass.PERMANENT, "unknown_handle",
                            f"expected a {kind} handle, got {handle.kind}")


def count(value: Any) -> int | None:
    """A platform's count, given as a number or (Google) a numeric string; None when absent."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
