"""How a slot is valued: the original heuristic, industry best times, and the learned estimate.

A strategy turns what is known of an account into `SlotScores` over the local hours of the
week; the search (`_slot_search`) and the rules (`_rules`) are the same for all of them.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Protocol

import numpy as np

from contracts import WEEKDAYS, AudienceData, BestTime, ContentType, HistoricalPerformance, Platform

from ._estimate import Estimate, LearningSettings, Prior, Reading, estimate, prior_for
from ._hour_of_week import HOURS_PER_DAY, HOURS_PER_WEEK
from ._hour_scores import hour_scores
from ._population import population_curve
from ._slot_search import NOT_A_CANDIDATE, SlotScores


@dataclass(frozen=True, slots=True)
class ScoringRequest:
    """What a strategy may know when it values the hours of one target."""

    platform: Platform
    content_type: ContentType
    audience: AudienceData  # the event's, or the platform's default
    audience_given: bool  # False: `audience` is the default
    history: HistoricalPerformance
    now_epoch: float
    readings: Sequence[Reading] = ()  # the account's own engagement, newest knowledge
    # identifies `readings` (they change only when the key does), so estimates can be reused;
    # a new key for the account (platform, account_id) supersedes the old one
    readings_key: Hashable | None = None
    seed: int = 0  # for strategies that draw: the same request draws the same
    account_id: str = ""


class Strategy(Protocol):
    name: str

    def scores(self, request: ScoringRequest) -> SlotScores: ...


class HeuristicStrategy:
    """The original `generateOptimalSchedule`: active hours of peak days, ranked by best times.

    Through the common search it gives the very slot `generate_optimal_schedule` gives, and it
    keeps the planner's rules on top.
    """

    name = "heuristic"

    def scores(self, request: ScoringRequest) -> SlotScores:
        audience, history = request.audience, request.history
        return _heuristic_scores(
            tuple(audience.activity_hours), tuple(audience.peak_days),
            tuple((b.hour, b.engagement_rate) for b in history.best_times), request.audience_given)


@lru_cache(maxsize=4096)
def _heuristic_scores(
    hours: tuple[int, ...], peak_days: tuple[str, ...], best_times: tuple[tuple[int, float], ...],
    audience_given: bool,
) -> SlotScores:
    scores = hour_scores(HistoricalPerformance.model_construct(
        best_times=[BestTime.model_construct(hour=h, engagement_rate=r) for h, r in best_times]))
    expected = np.tile(np.asarray(scores, dtype=np.float64), 7)
    active = np.zeros(HOURS_PER_DAY, dtype=bool)
    active[list(hours)] = True
    any_day = np.where(np.tile(active, 7), expected, NOT_A_CANDIDATE)
    peak = np.ones(7, dtype=bool)
    if peak_days:
        peak[:] = False
        peak[[WEEKDAYS.index(d) for d in peak_days]] = True
    peak_only = np.where(np.repeat(peak, HOURS_PER_DAY), any_day, NOT_A_CANDIDATE)
    # The original scored a time it did not choose by its hour, and 0 without audience data:
    # it could not tell which local hour that was.
    fixed = None if audience_given else np.zeros(HOURS_PER_WEEK)
    for array in (expected, any_day, peak_only):
        array.setflags(write=False)
    return SlotScores(tiers=(peak_only, any_day), expected=expected, fixed=fixed, fallback=0.0)


class IndustryTimesStrategy:
    """Fixed industry best times: the platform's population curve, the same for everyone."""

    name = "industry"

    def scores(self, request: ScoringRequest) -> SlotScores:
        curve = _industry_curve(request.platform, request.content_type)
        return SlotScores(tiers=(curve,), expected=curve)


@lru_cache(maxsize=32)
def _industry_curve(platform: Platform, content_type: ContentType) -> np.ndarray:
    curve = np.asarray(population_curve(platform, content_type))
    curve.setflags(write=False)
    return curve


class Exploration(str, Enum):
    THOMPSON = "thompson"  # draw each hour from its posterior, take the best draw
    UCB = "ucb"  # take the best upper confidence bound
    GREEDY = "greedy"  # take the best expected engagement (no exploration)


@dataclass(frozen=True)
class ExplorationSettings:
    mode: Exploration = Exploration.UCB
    # The most expected engagement one post of a new account may give up to explore: only
    # slots whose expected engagement is within this share of the best allowed one are tried.
    budget: float = 0.5
    scale: float = 2.0  # widens (>1) or narrows (<1) the posterior draws / the UCB bonus
    # Exploration grows in over an account's first readings: before any feedback it would
    # only cost, since nothing can be learnt from a post until its engagement comes back.
    warmup_readings: int = 5
    # ... and fades as they accumulate (budget and scale × 1 / (1 + readings / this)): early,
    # finding a peak the prior missed pays back over every later post; once the account's
    # hours are known, a post given up to explore is mostly cost. 0: it never fades.
    decay_readings: float = 15.0

    def __post_init__(self) -> None:
        if self.decay_readings < 0:
            raise ValueError("decay_readings must not be negative")
        if not 0 <= self.budget < 1:
            raise ValueError("the exploration budget is a share of a slot's engagement, in [0, 1)")
        if self.scale < 0:
            raise ValueError("the exploration scale must not be negative")


@dataclass
class LearnedStrategy:
    """Per account × platform × hour of the week: prior, evidence, posterior (`_estimate`)."""

    learning: LearningSettings = field(default_factory=LearningSettings)
    exploration: ExplorationSettings = field(default_factory=ExplorationSettings)
    # what the estimates kept for later plans may hold: about 6.5 kB each (UCB, greedy), 233 kB
    # with the factor Thompson draws need; the planner pod's limit is 256 MiB, and the
    # service's readings cache holds up to 48 MiB (`ReadingsCache.max_bytes`)
    cache_bytes: int = 32 * 2 ** 20
    name: str = "learned"

    def __post_init__(self) -> None:
        self._estimates = _EstimateCache(self.cache_bytes)

    def estimate_for(self, request: ScoringRequest) -> Estimate:
        """The posterior for the request; reused while its prior and `readings_key` hold."""
        key = _prior_key(request)
        if not request.readings:
            # the prior alone: the same for every account of that prior, at any time (its
            # covariance, the prior's, is made only if drawn from: nothing large is kept)
            found = self._estimates.get((key,))
            if found is None:
                found = self._posterior(key, request)
                self._estimates.put((key,), found)
            return found
        if request.readings_key is None:
            return self._posterior(key, request)
        # decay moves with time: an estimate from readings is good for an hour
        version = (request.readings_key, request.now_epoch // 3600)
        account = (request.platform, request.account_id)
        cache_key = (key, account, *version)
        found = self._estimates.get(cache_key, account, version)
        if found is None or (self._draws(found) and not found.can_draw):
            found = self._keep(cache_key, self._posterior(key, request), account, version)
        return found

    def scores(self, request: ScoringRequest) -> SlotScores:
        posterior = self.estimate_for(request)
        expected = posterior.expected
        exploration = self.exploration
        mode, budget = exploration.mode, exploration.budget
        scale = exploration.scale * min(1.0, posterior.readings / max(exploration.warmup_readings, 1))
        if exploration.decay_readings:
            fading = 1.0 / (1.0 + posterior.readings / exploration.decay_readings)
            scale, budget = scale * fading, budget * fading
        if mode is Exploration.GREEDY or scale == 0:
            return SlotScores(tiers=(expected,), expected=expected)
        if mode is Exploration.THOMPSON:
            draw = posterior.draw(_normal_draws(request.seed))
            choice = posterior.mean + scale * (draw - posterior.mean)
        else:
            choice = posterior.mean + scale * posterior.spread
        slack = -math.log(1.0 - budget) if budget > 0 else 0.0
        return SlotScores(tiers=(choice,), expected=expected, mean=posterior.mean, slack=slack)

    def _draws(self, posterior: Estimate) -> bool:
        """Whether `scores` draws from it (Thompson, once there are readings: see there)."""
        return (self.exploration.mode is Exploration.THOMPSON and self.exploration.scale > 0
                and posterior.readings > 0)

    def _keep(self, cache_key: tuple, posterior: Estimate, account: Hashable, version: Hashable) -> Estimate:
        kept = posterior.kept(draws=self._draws(posterior))
        self._estimates.put(cache_key, kept, account, version)
        return kept

    def _posterior(self, key: tuple, request: ScoringRequest) -> Estimate:
        return estimate(_prior(key, self.learning), request.readings, request.content_type,
                        request.platform, request.now_epoch, self.learning)


@lru_cache(maxsize=4096)
def _prior(key: tuple, learning: LearningSettings) -> Prior:
    platform, content_type, audience, best_times = key
    return prior_for(platform, content_type, audience.activity_hours, audience.peak_days, best_times, learning)


def _prior_key(request: ScoringRequest) -> tuple:
    audience = request.audience
    # best times of one hour reported twice count as their mean, like the heuristic's scores
    rates: dict[int, list[float]] = {}
    for best in request.history.best_times:
        rates.setdefault(best.hour, []).append(best.engagement_rate)
    best_times = tuple(sorted((h, sum(r) / len(r)) for h, r in rates.items()))
    return (request.platform, request.content_type, _AudienceKey.of(audience), best_times)


@dataclass(frozen=True, slots=True)
class _AudienceKey:
    """The hashable part of an audience the prior depends on (AudienceData holds lists)."""

    activity_hours: tuple[int, ...]
    peak_days: tuple[str, ...]

    @classmethod
    def of(cls, audience: AudienceData) -> "_AudienceKey":
        return cls(tuple(audience.activity_hours), tuple(audience.peak_days))


class _EstimateCache:
    """Estimates kept for later plans, the least recently used dropped first once they hold
    more than `max_bytes` (counted as their arrays and a fixed overhead each).

    An entry made from an account's readings belongs to that account (its key holds it) and to
    one `version` of them (its readings key and hour): once the account asks with another,
    nothing will ask for the older ones, and they are dropped at once.
    """

    # an entry beyond its arrays (measured, tracemalloc): the Estimate, its array headers, the
    # key (the prior's, the readings key) and its node, the account's record
    OVERHEAD = 2_500

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        # key → (estimate, bytes counted, account)
        self._entries: OrderedDict[Hashable, tuple[Estimate, int, Hashable]] = OrderedDict()
        self._accounts: dict[Hashable, tuple[Hashable, set[Hashable]]] = {}  # → (version, keys)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, account: Hashable = None, version: Hashable = None) -> Estimate | None:
        if account is not None:
            self._supersede(account, version)
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def _supersede(self, account: Hashable, version: Hashable) -> None:
        """Drop the account's estimates made from readings other than `version`."""
        held = self._accounts.get(account)
        if held is not None and held[0] != version:
            for old in held[1]:
                self.bytes -= self._entries.pop(old)[1]
            del self._accounts[account]

    def put(self, key: Hashable, estimate: Estimate, account: Hashable = None,
            version: Hashable = None) -> None:
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.bytes -= previous[1]
        size = estimate.nbytes + self.OVERHEAD
        self._entries[key] = (estimate, size, account)
        self.bytes += size
        if account is not None:
            self._supersede(account, version)
            self._accounts.setdefault(account, (version, set()))[1].add(key)
        while self.bytes > self.max_bytes and self._entries:
            old, (_, dropped, owner) = self._entries.popitem(last=False)
            self.bytes -= dropped
            if owner is not None:
                keys = self._accounts[owner][1]
                keys.discard(old)
                if not keys:
                    del self._accounts[owner]


def _normal_draws(seed: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(seed)).standard_normal(HOURS_PER_WEEK)


def seed_for(*parts: object) -> int:
    """A stable seed from stable parts (ids, times): a replayed plan draws the same."""
    return random.Random(repr(parts)).getrandbits(64)
