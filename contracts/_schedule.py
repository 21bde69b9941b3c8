"""The original spec's scheduling shapes, and how an event asks for its time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, field_validator, model_validator

from ._base import WireModel
from ._common import ContentType, Platform

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_BY_PREFIX = {day[:3]: day for day in WEEKDAYS}


class AudienceData(WireModel):
    """When the audience is there: IANA timezone, local hours (0-23) and weekdays."""

    timezone: str = Field(min_length=1, max_length=64)
    activity_hours: list[Annotated[int, Field(ge=0, le=23)]] = Field(min_length=1, max_length=24)
    peak_days: list[str] = Field(default_factory=list, max_length=7)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {name!r}") from None
        return name

    @field_validator("activity_hours")
    @classmethod
    def _sorted_hours(cls, hours: list[int]) -> list[int]:
        return sorted(set(hours))

    @field_validator("peak_days", mode="before")
    @classmethod
    def _weekday_names(cls, days: object) -> object:
        if not isinstance(days, list):
            return days
        names: list[str] = []
        for day in days:
            if not isinstance(day, str) or day.strip().lower()[:3] not in _WEEKDAY_BY_PREFIX:
                raise ValueError(f"{day!r} is not a weekday name")
            text = day.strip().lower()
            full = _WEEKDAY_BY_PREFIX[text[:3]]
            if text not in (full, full[:3]):
                raise ValueError(f"{day!r} is not a weekday name")
            if full not in names:
                names.append(full)
        return names


class BestTime(WireModel):
    hour: int = Field(ge=0, le=23)
    engagement_rate: float = Field(ge=0, le=1)


class HistoricalPerformance(WireModel):
    best_times: list[BestTime] = Field(default_factory=list, max_length=168)


class ScheduleInput(WireModel):
    """The original spec's input to `generateOptimalSchedule`."""

    platform: Platform
    audience_data: AudienceData
    content_type: ContentType
    historical_performance: HistoricalPerformance = Field(default_factory=HistoricalPerformance)


class ScheduleSlot(WireModel):
    """The original spec's output: one slot to post at."""

    timestamp: AwareDatetime
    platform: Platform
    content_type: ContentType
    expected_engagement: float = Field(ge=0)


class OptimalWithin(WireModel):
    """Let the planner choose, inside an optional window."""

    mode: Literal["optimal"] = "optimal"
    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "OptimalWithin":
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("notAfter must be later than notBefore")
        return self


class AtTime(WireModel):
    mode: Literal["at"] = "at"
    scheduled_time: AwareDatetime


class AsSoonAsPossible(WireModel):
    mode: Literal["asap"] = "asap"


ScheduleRequest = Annotated[OptimalWithin | AtTime | AsSoonAsPossible, Field(discriminator="mode")]


def latest_start(request: OptimalWithin | AtTime | AsSoonAsPossible) -> datetime | None:
    """The time after which the request can no longer be honoured, if it has one."""
    if isinstance(request, AtTime):
        return request.scheduled_time
    if isinstance(request, OptimalWithin):
        return request.not_after
    return None
