"""The planner's strategy and platform limits, as the settings ask."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from contracts import Platform
from services.runtime import PlannerSettings

from .domain import (
    DEFAULT_LIMITS,
    Exploration,
    ExplorationSettings,
    HeuristicStrategy,
    LearnedStrategy,
    PlatformLimits,
    Strategy,
)


def strategy_for(settings: PlannerSettings) -> Strategy:
    if settings.strategy == "heuristic":
        return HeuristicStrategy()
    if settings.strategy != "learned":
        raise ValueError(f"unknown planner strategy {settings.strategy!r}: learned or heuristic")
    return LearnedStrategy(exploration=ExplorationSettings(
        mode=Exploration(settings.exploration), budget=settings.exploration_budget))


def limits_for(settings: PlannerSettings) -> Mapping[Platform, PlatformLimits]:
    caps = {Platform(name): cap for name, cap in settings.daily_caps}
    limits = {}
    for platform, default in DEFAULT_LIMITS.items():
        limit = default
        if settings.min_spacing_seconds is not None:
            limit = replace(limit, min_spacing_seconds=settings.min_spacing_seconds)
        if platform in caps:
            limit = replace(limit, daily_cap=caps[platform])
        limits[platform] = limit
    return MappingProxyType(limits)
