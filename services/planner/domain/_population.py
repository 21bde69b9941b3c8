"""What is known of audiences in general: busy hours per platform, levels per content type.

Published industry studies agree on the broad shape (a lunch and an evening peak on working
days, later and flatter weekends, nights empty) and disagree on the details, which is why these
figures only start an account's estimate: its own engagement takes over as it comes in.
Curves are relative (1.0 = the platform's busiest hour) and in local time.
"""

from __future__ import annotations

from types import MappingProxyType

from contracts import ContentType, Platform

# fmt: off
_WEEKDAY_HOURS = MappingProxyType({
    Platform.TIKTOK: (0.45, 0.30, 0.20, 0.15, 0.12, 0.15, 0.25, 0.40, 0.50, 0.55, 0.60, 0.70,
                      0.80, 0.75, 0.70, 0.72, 0.78, 0.85, 0.92, 1.00, 1.00, 0.95, 0.80, 0.60),
    Platform.INSTAGRAM: (0.30, 0.20, 0.12, 0.10, 0.10, 0.15, 0.30, 0.50, 0.65, 0.70, 0.80, 0.95,
                         1.00, 0.90, 0.75, 0.70, 0.75, 0.85, 0.92, 0.95, 0.90, 0.80, 0.60, 0.45),
    Platform.YOUTUBE: (0.35, 0.25, 0.15, 0.10, 0.10, 0.12, 0.20, 0.30, 0.40, 0.45, 0.50, 0.55,
                       0.65, 0.75, 0.85, 0.95, 1.00, 0.98, 0.95, 0.92, 0.85, 0.75, 0.60, 0.45),
})
_WEEKEND_HOURS = MappingProxyType({
    Platform.TIKTOK: (0.55, 0.40, 0.30, 0.20, 0.15, 0.12, 0.15, 0.25, 0.40, 0.55, 0.70, 0.80,
                      0.85, 0.85, 0.82, 0.80, 0.82, 0.85, 0.90, 0.95, 1.00, 0.98, 0.85, 0.70),
    Platform.INSTAGRAM: (0.40, 0.30, 0.20, 0.12, 0.10, 0.10, 0.15, 0.30, 0.50, 0.75, 0.90, 1.00,
                         0.95, 0.85, 0.75, 0.70, 0.70, 0.75, 0.80, 0.85, 0.80, 0.70, 0.55, 0.45),
    Platform.YOUTUBE: (0.40, 0.30, 0.20, 0.12, 0.10, 0.10, 0.15, 0.25, 0.40, 0.60, 0.80, 0.90,
                       0.95, 1.00, 0.98, 0.95, 0.92, 0.90, 0.85, 0.82, 0.78, 0.70, 0.55, 0.45),
})
# Monday first
_DAY_FACTORS = MappingProxyType({
    Platform.TIKTOK: (0.95, 1.05, 1.05, 1.05, 0.98, 0.90, 0.88),
    Platform.INSTAGRAM: (0.98, 1.05, 1.05, 1.02, 0.98, 0.88, 0.85),
    Platform.YOUTUBE: (0.95, 0.98, 1.00, 1.02, 1.05, 1.02, 0.98),
})
# fmt: on

# Interactions (likes, comments, shares, saves) per follower a day after posting, at the
# platform's busiest hour: typical published engagement rates by followers.
_LEVELS = MappingProxyType({
    Platform.TIKTOK: MappingProxyType({
        ContentType.VIDEO: 0.055, ContentType.REEL: 0.055, ContentType.IMAGE: 0.045,
        ContentType.STORY: 0.03,
    }),
    Platform.INSTAGRAM: MappingProxyType({
        ContentType.VIDEO: 0.028, ContentType.REEL: 0.035, ContentType.IMAGE: 0.022,
        ContentType.STORY: 0.012,
    }),
    Platform.YOUTUBE: MappingProxyType({
        ContentType.VIDEO: 0.030, ContentType.REEL: 0.040, ContentType.IMAGE: 0.010,
        ContentType.STORY: 0.010,
    }),
})

WEEKEND = frozenset({5, 6})


def population_curve(platform: Platform, content_type: ContentType) -> list[float]:
    """Expected engagement rate per local hour of the week for an account nobody knows yet."""
    level = _LEVELS[platform][content_type]
    weekday, weekend, days = _WEEKDAY_HOURS[platform], _WEEKEND_HOURS[platform], _DAY_FACTORS[platform]
    return [
        level * days[day] * (weekend if day in WEEKEND else weekday)[hour]
        for day in range(7)
        for hour in range(24)
    ]


def level_of(platform: Platform, content_type: ContentType) -> float:
    return _LEVELS[platform][content_type]
