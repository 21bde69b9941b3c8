"""What validation answers: machine-readable problems, and the rejection they add up to."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import ContractError


class Reason:
    """Reason codes, shared by submit-time rejections and publisher-side permanent errors."""

    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    INVALID_MEDIA = "invalid_media"  # media type or MIME the platform does not take, or a bad source
    MEDIA_COUNT = "media_count_out_of_range"
    MEDIA_TOO_LARGE = "media_too_large"
    DURATION = "duration_out_of_range"
    ASPECT_RATIO = "aspect_ratio_out_of_range"
    RESOLUTION = "resolution_out_of_range"
    CAPTION_TOO_LONG = "caption_too_long"
    TOO_MANY_HASHTAGS = "too_many_hashtags"
    TOO_MANY_MENTIONS = "too_many_mentions"
    TITLE_TOO_LONG = "title_too_long"
    DESCRIPTION_TOO_LONG = "description_too_long"
    TAGS_TOO_LONG = "tags_too_long"


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: `reason` code, the `field` it is about, a sentence for people.

    `target` is `platform:accountId` when the rule is one platform's; `field` is a path in the
    content event (`caption`, `targets.1.hashtags`, `media.0.sizeBytes`).
    """

    reason: str
    field: str
    message: str
    target: str | None = None

    def to_detail(self) -> dict[str, str | None]:
        return {"field": self.field, "type": self.reason, "message": self.message, "target": self.target}


def rejection_for(problems: list[Problem]) -> ContractError:
    """One ContractError for a set of problems: the first problem's reason, every problem in details."""
    if not problems:
        raise ValueError("no problems to reject for")
    summary = "; ".join(f"{p.target + ': ' if p.target else ''}{p.message}" for p in problems[:5])
    if len(problems) > 5:
        summary += f"; and {len(problems) - 5} more"
    return ContractError(problems[0].reason, summary, [p.to_detail() for p in problems])
