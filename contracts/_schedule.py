"""The original spec's scheduling shapes, and how an event asks for its time."""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, field_validator, model_validator

from ._base import WireModel
from ._common import ContentType, Platform

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_BY_PREFIX = {day[:3]: day for day in WEEKDAYS}


@lru_cache(maxsize=1024)
def zone_info(name: str) -> ZoneInfo:
    """The zone, kept: ZoneInfo holds few zones strongly and reads the others' files again."""
    return ZoneInfo(name)


def _known_zone(name: str) -> str:
    try:
        zone_info(name)
    # OSError: a folder of the zone database ("US", "Europe") is read as a file, and Python
    # before 3.13 says IsADirectoryError, which would pass for an outage
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA timezone {name!r}") from None
    return name


def _plannable(moment: datetime) -> datetime:
    """A time a plan may ask for: 9999-12-31 and its like overflow the planner's calendar."""
    if not 2000 <= moment.year <= 2999:
        raise ValueError(f"{moment.isoformat()} is not a time to plan for (years 2000 to 2999)")
    return moment


# an aware time in an event's schedule or blackouts
PlanTime = Annotated[AwareDatetime, AfterValidator(_plannable)]


def _weekday_names(days: object) -> object:
    """Full lower-case weekday names, each once; "Tue" and "tuesday" both read as tuesday."""
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


class AudienceData(WireModel):
    """When the audience is there: IANA timezone, local hours (0-23) and weekdays."""

    timezone: str = Field(min_length=1, max_length=64)
    activity_hours: list[Annotated[int, Field(ge=0, le=23)]] = Field(min_length=1, max_length=24)
    peak_days: list[str] = Field(default_factory=list, max_length=7)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return _known_zone(name)

    @field_validator("activity_hours")
    @classmethod
    def _sorted_hours(cls, hours: list[int]) -> list[int]:
        return sorted(set(hours))

    @field_validator("peak_days", mode="before")
    @classmethod
    def _days(cls, days: object) -> object:
        return _weekday_names(days)


class BestTime(WireModel):
    hour: int = Field(ge=0, le=23)
    engagement_rate: float = Field(ge=0, le=1)


class HistoricalPerformance(WireModel):
    best_times: list[BestTime] = Field(default_factory=list, max_length=168)


class Blackout(WireModel):
    """A time nothing may be posted in, in one of two shapes.

    - absolute: `{"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z"}`, aware
      times, `end` excluded;
    - recurring, in local wall-clock time: `{"localStart": "22:00", "localEnd": "07:00",
      "weekdays": ["saturday", "sunday"]}` starts on each listed weekday (every day when there
      are none) and ends at `localEnd`, on the next day when `localEnd` is not after
      `localStart`. Local means `timezone` when given, else the audience's (UTC without one).
      Read on the wall clock, it follows daylight-saving changes.
    """

    model_config = ConfigDict(extra="forbid")

    start: PlanTime | None = None
    end: PlanTime | None = None
    local_start: time | None = None
    local_end: time | None = None
    weekdays: list[str] = Field(default_factory=list, max_length=7)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str | None) -> str | None:
        return name if name is None else _known_zone(name)

    @field_validator("weekdays", mode="before")
    @classmethod
    def _days(cls, days: object) -> object:
        return _weekday_names(days)

    @model_validator(mode="after")
    def _one_shape(self) -> "Blackout":
        absolute = self.start is not None or self.end is not None
        recurring = self.local_start is not None or self.local_end is not None
        if absolute == recurring:
            raise ValueError("a blackout has either start and end, or localStart and localEnd")
        if absolute:
            if self.start is None or self.end is None:
                raise ValueError("an absolute blackout needs both start and end")
            if self.end <= self.start:
                raise ValueError("blackout end must be later than its start")
            if self.weekdays or self.timezone:
                raise ValueError("weekdays and timezone belong to recurring blackouts (localStart)")
        else:
            if self.local_start is None or self.local_end is None:
                raise ValueError("a recurring blackout needs both localStart and localEnd")
            if self.local_start == self.local_end:
                raise ValueError("localEnd must differ from localStart")
            if self.local_start.tzinfo or self.local_end.tzinfo:
                raise ValueError("localStart and localEnd are wall-clock times, without an offset")
        return self


class ScheduleInput(WireModel):
    """The original spec's input to `generateOptimalSchedule` (and `autopost plan`)."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    audience_data: AudienceData
    content_type: ContentType
    historical_performance: HistoricalPerformance = Field(default_factory=HistoricalPerformance)
    blackouts: list[Blackout] = Field(default_factory=list, max_length=100)


class ScheduleSlot(WireModel):
    """The original spec's output: one slot to post at."""

    timestamp: AwareDatetime
    platform: Platform
    content_type: ContentType
    expected_engagement: float = Field(ge=0)


class OptimalWithin(WireModel):
    """Let the planner choose, inside an optional window."""

    mode: Literal["optimal"] = "optimal"
    not_before: PlanTime | None = None
    not_after: PlanTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "OptimalWithin":
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("notAfter must be later than notBefore")
        return self


class AtTime(WireModel):
    mode: Literal["at"] = "at"
    scheduled_time: PlanTime


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
