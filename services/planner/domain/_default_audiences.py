"""Who we assume is watching when an event brings no audience data."""

from __future__ import annotations

from types import MappingProxyType

from contracts import AudienceData, Platform

# UTC, every day: without audience data we know neither where nor which days. The hours are
# the commonly published busy hours of each platform (lunch and evening).
DEFAULT_AUDIENCES = MappingProxyType({
    Platform.TIKTOK: AudienceData(timezone="UTC", activity_hours=[12, 18, 19, 20, 21, 22]),
    Platform.INSTAGRAM: AudienceData(timezone="UTC", activity_hours=[11, 12, 13, 19, 20, 21]),
    Platform.YOUTUBE: AudienceData(timezone="UTC", activity_hours=[14, 15, 16, 17, 18, 19, 20]),
})
