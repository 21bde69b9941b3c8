"""What is known of one media item, and whether it fits a rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from contracts import MediaRef

from ._limits import MediaRule
from ._problems import Problem, Reason

_BY_EXTENSION = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
    ".webp": "image/webp", ".gif": "image/gif", ".heic": "image/heic",
}
_UNKNOWN = {"", "application/octet-stream", "binary/octet-stream"}


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """What the event declares, or the publisher learnt fetching it; None = not known."""

    mime: str | None = None
    size_bytes: int | None = None
    duration_sec: float | None = None
    width: int | None = None
    height: int | None = None
    remote: bool = True

    @property
    def kind(self) -> str | None:
        major = self.mime.split("/")[0] if self.mime else ""
        return major if major in ("video", "image") else None


def normal_mime(value: str | None) -> str | None:
    """`type/subtype` in lower case without parameters; None when it says nothing."""
    mime = (value or "").split(";")[0].strip().lower()
    return None if mime in _UNKNOWN else mime


def declared_facts(media: MediaRef) -> MediaFacts:
    """The declared MIME type, else the one the URL's extension implies."""
    mime = normal_mime(media.mime_type)
    if mime is None:
        suffix = PurePosixPath(unquote(urlsplit(str(media.url)).path)).suffix.lower()
        mime = _BY_EXTENSION.get(suffix)
    return MediaFacts(mime, media.size_bytes, media.duration_sec, media.width, media.height,
                      remote=media.url.scheme in ("http", "https"))


def check_item(rule: MediaRule, facts: MediaFacts, field: str, target: str | None) -> list[Problem]:
    """Every way `facts` breaks `rule`; facts that are not known are not held against it."""
    problems: list[Problem] = []

    def add(reason: str, name: str, message: str) -> None:
        problems.append(Problem(reason, f"{field}.{name}", f"{rule.name}: {message}", target))

    if rule.remote_only and not facts.remote:
        add(Reason.INVALID_MEDIA, "url", "must be an http(s) URL the platform can download")
    if facts.kind and facts.kind != rule.kind:
        add(Reason.INVALID_MEDIA, "mimeType", f"needs {'a video' if rule.kind == 'video' else 'an image'}, "
                                              f"not {facts.mime}")
    elif facts.mime and not rule.accepts_mime(facts.mime):
        add(Reason.INVALID_MEDIA, "mimeType",
            f"{facts.mime} is not accepted (accepted: {', '.join(sorted(rule.mime_types))})")
    if rule.max_bytes is not None and facts.size_bytes is not None and facts.size_bytes > rule.max_bytes:
        add(Reason.MEDIA_TOO_LARGE, "sizeBytes", f"{facts.size_bytes} bytes is over the {rule.max_bytes} allowed")
    if facts.duration_sec is not None:
        low, high = rule.min_seconds, rule.max_seconds
        if (low is not None and facts.duration_sec < low) or (high is not None and facts.duration_sec > high):
            add(Reason.DURATION, "durationSec",
                f"{facts.duration_sec:g} s is outside {_range(low, high, 's')}")
    if facts.width and facts.height:
        problems.extend(_geometry(rule, facts, field, target))
    return problems


def _geometry(rule: MediaRule, facts: MediaFacts, field: str, target: str | None) -> list[Problem]:
    width, height = facts.width or 0, facts.height or 0
    problems = []
    aspect = width / height
    if (rule.min_aspect is not None and aspect < rule.min_aspect - 1e-9) or (
            rule.max_aspect is not None and aspect > rule.max_aspect + 1e-9):
        problems.append(Problem(
            Reason.ASPECT_RATIO, f"{field}.width",
            f"{rule.name}: {width}x{height} (aspect {aspect:.3g}) is outside "
            f"{_range(rule.min_aspect, rule.max_aspect, '')} width/height", target))
    sides = (width, height)
    too_small = rule.min_side is not None and min(sides) < rule.min_side
    too_big = rule.max_side is not None and max(sides) > rule.max_side
    if too_small or too_big:
        problems.append(Problem(Reason.RESOLUTION, f"{field}.width",
                                f"{rule.name}: {width}x{height} is outside "
                                f"{_range(rule.min_side, rule.max_side, ' px')} per side", target))
    if rule.max_width is not None and width > rule.max_width:
        problems.append(Problem(Reason.RESOLUTION, f"{field}.width",
                                f"{rule.name}: {width} px wide is over {rule.max_width} px", target))
    if rule.max_short_side is not None and min(sides) > rule.max_short_side:
        problems.append(Problem(Reason.RESOLUTION, f"{field}.width",
                                f"{rule.name}: {width}x{height} is over {rule.max_short_side}p", target))
    return problems


def _range(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low:g}–{high:g}{unit}"
    return f"≥ {low:g}{unit}" if low is not None else f"≤ {high:g}{unit}"
