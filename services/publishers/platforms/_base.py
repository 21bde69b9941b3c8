"""The interface every platform client implements, its results, and the error they all raise."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import httpx
import orjson

from contracts import (
    ErrorClass,
    ObservedState,
    Platform,
    PublishError,
    PublishRequested,
    RemoteHandle,
    normalise_hashtags,
)

REDACTED = "[redacted]"


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
    """

    def __init__(
        self,
        error_class: ErrorClass,
        code: str,
        message: str,
        retry_after: float | None = None,
        *,
        handle: RemoteHandle | None = None,
    ):
        super().__init__(f"{error_class.value} {code}: {message}")
        self.error_class = error_class
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.handle = handle

    def to_contract(self) -> PublishError:
        return PublishError(
            error_class=self.error_class,
            code=self.code,
            message=self.message,
            retry_after_sec=max(0.0, self.retry_after) if self.retry_after is not None else None,
        )

    def redacted(self, secret: str) -> "PlatformError":
        return PlatformError(self.error_class, self.code, self.message.replace(secret, REDACTED),
                             self.retry_after, handle=self.handle)


class PlatformClient(Protocol):
    platform: Platform

    async def publish(self, request: PublishRequested, token: str) -> Accepted | Published: ...

    async def check_status(self, handle: RemoteHandle, token: str) -> StatusReport: ...


@contextmanager
def classified(token: str) -> Iterator[None]:
    """Turn transport failures into retryable PlatformErrors, and keep the token out of messages."""
    try:
        yield
    except PlatformError as error:
        if token and token in error.message:
            raise error.redacted(token) from None
        raise
    except httpx.UnsupportedProtocol as exc:
        raise PlatformError(ErrorClass.PERMANENT, "unsupported_url", _scrub(exc, token)) from None
    except httpx.TransportError as exc:
        raise PlatformError(ErrorClass.RETRYABLE, "transport_error", _scrub(exc, token)) from None


def _scrub(exc: Exception, token: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(token, REDACTED) if token else text


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
    """A reply outside the platform's documented shapes: 5xx, 429 and garbled 2xx retry."""
    status = response.status_code
    if status < 300:
        return PlatformError(ErrorClass.RETRYABLE, "invalid_response", f"{what}: unreadable reply")
    if status == 429:
        return PlatformError(ErrorClass.RATE_LIMITED, "http_429", f"{what}: too many requests",
                             retry_after_seconds(response) or 60.0)
    if status >= 500:
        return PlatformError(ErrorClass.RETRYABLE, f"http_{status}", f"{what}: server error {status}",
                             retry_after_seconds(response))
    if status == 401:
        return PlatformError(ErrorClass.AUTH, "http_401", f"{what}: unauthorized")
    return PlatformError(ErrorClass.PERMANENT, f"http_{status}", f"{what}: unexpected reply {status}")


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds, whether given as a number or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


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
