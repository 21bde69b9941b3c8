"""The platform's media rules, applied to what fetching the media revealed (its real size)."""

from __future__ import annotations

from contracts import ErrorClass, PublishRequested
from services.validation import fetched_media_problems

from ._base import PlatformError
from ._media import MediaStream


def check_fetched(request: PublishRequested, index: int, stream: MediaStream) -> None:
    """A permanent error, with the rule's reason, before any byte is sent to the platform."""
    problems = fetched_media_problems(request, index, size_bytes=stream.size, content_type=stream.content_type)
    if problems:
        raise PlatformError(ErrorClass.PERMANENT, problems[0].reason, "; ".join(p.message for p in problems))
