"""Engagement figures turned into what the estimate learns from."""

from __future__ import annotations

from contracts import ContentType, EngagementFigures

from ._estimate import Reading


def engagement_rate(figures: EngagementFigures) -> float | None:
    """Interactions per audience member: growth of the audience must not fake a good hour.

    None when the platform gave no audience size to normalise by, or no count at all (a
    YouTube video with its likes hidden and comments off): unknown is not zero engagement.
    """
    if not figures.audience_size:
        return None
    if all(count is None for count in (figures.likes, figures.comments, figures.shares, figures.saves)):
        return None
    return figures.interactions / figures.audience_size


def reading_from(
    how: int, published_epoch: float, figures: EngagementFigures, age_seconds: float,
    content_type: ContentType,
) -> Reading | None:
    rate = engagement_rate(figures)
    if rate is None:
        return None
    return Reading(how=how, epoch=published_epoch, rate=rate, age_seconds=age_seconds,
                   content_type=content_type)
