"""An account's engagement per local hour of the week: prior, evidence, posterior.

The model, in log space (engagement is multiplicative: a good hour is good by a factor):

    log rate(day, hour, type) = prior(day, hour) + level + day effect(day)
                                + profile(kind of day, hour) + interaction(day, hour)
                                + content type(type) + noise

- prior: the population curve of the platform and content type, raised on the audience's
  active hours and peak days, moved by the history's best times;
- level: how much more or less this account engages than the prior says;
- day effect: how much better one weekday is than the others;
- profile: the account's own shape of a working day and of a weekend day, smoothed over
  neighbouring hours, each kind borrowing a little from the other;
- interaction: what one hour of one day says beyond that, shrunk hard;
- content type: how much better or worse one of its content types engages than the
  population's ratio between types says (a type posted more at some hours must not make
  those hours look better);
- noise: post-to-post variation, its variance learnt too.

Each part is shrunk to 0 by its own prior variance: where data is thin the prior speaks, where
it is dense the data does. Because a reading on a Tuesday evening informs the evening of every
working day, a few dozen posts are enough to find an account's hours.

Historical best times count as pseudo-readings at their hour on every day, in the prior's mean:
they place the account's hours and its level, but leave the level as uncertain as for anyone
(they may be old, or another account's of the brand): its own readings correct the level
quickly, for all hours at once, instead of bending the profile at the hours it posted at.
Readings lose weight with age (`half_life_days`), so a shifting audience is followed. A reading
taken early (1 h) is projected to the reference age along the population's accumulation curve
and weighs less. `expected` is corrected by what the account's mature posts of the type earned
against the posterior itself (`_calibration`). Rates are per audience member, so a growing
audience does not make later hours look better. Readings are pooled per hour of the week and
content type before the Gaussian process update, so the cost grows with the hours posted at,
not with the readings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from contracts import WEEKDAYS, ContentType, Platform

from ._hour_of_week import HOURS_PER_DAY, HOURS_PER_WEEK
from ._population import WEEKEND, level_of, population_curve

_SECONDS_PER_DAY = 86_400.0
_RATE_FLOOR = 1e-5  # a post with no interaction at all still says "low", not "minus infinity"
_KIND = np.array([1 if day in WEEKEND else 0 for day in range(7)])  # 0 working day, 1 weekend


@dataclass(frozen=True)
class LearningSettings:
    # How far an account may be from the prior, as standard deviations on the log scale of
    # its parts (the prior covariance of the Gaussian process over the 168 hours):
    level_sd: float = 0.6  # the whole account (all hours together)
    day_sd: float = 0.12  # one weekday against the others
    profile_sd: float = 0.5  # the shape of its working days / weekends, hour by hour
    profile_hours: float = 1.5  # ... smooth over this many hours
    other_kind_share: float = 0.5  # how alike the working-day and weekend shapes are
    interaction_sd: float = 0.1  # one hour of one day on its own
    # how far the account's level for one content type may be from what the population's
    # ratio between types says (accounts' content types engage differently, each their own way)
    content_type_sd: float = 0.25
    noise_sd: float = 0.25  # prior post-to-post spread (log scale); learnt from repeats
    noise_strength: float = 4.0  # pseudo-readings behind that prior spread
    half_life_days: float = 28.0  # readings lose weight with age: audiences drift
    # best times and audience data, folded into the prior's mean
    best_time_weight: float = 0.35  # pseudo-readings per reported best time, per weekday
    # an active hour the best times leave out was not among the best: it counts as this
    # share of their mean rate (as in the heuristic), with this weight per weekday
    unlisted_share: float = 0.8
    unlisted_weight: float = 0.1
    best_time_strength: float = 1.0  # pseudo-readings behind the population shape, per hour
    population_weight: float = 0.5  # how much of the population's hour shape to believe
    activity_bonus: float = 0.4  # log factor for the audience's active hours
    peak_day_bonus: float = 0.12  # log factor for its peak days
    reference_age_seconds: float = 86_400.0  # estimates are of engagement at this age
    accumulation_seconds: float = 6 * 3600.0  # engagement builds like 1 - exp(-age / this)
    # What the account's posts earned against what the posterior expects at their hours
    # corrects `expected` where the log-normal mean misses (shrunk to no correction by this many).
    calibration_strength: float = 10.0
    # a reading counts for that once it has reached this share of its engagement at the
    # reference age: a story's last one (23 h, its figures end at 24 h) does, a 1 h one does not
    calibration_maturity: float = 0.95

    def __hash__(self) -> int:
        # the settings key several caches on every plan: hash the fields once
        found = self.__dict__.get("_hash")
        if found is None:
            found = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", found)
        return found


@dataclass(frozen=True, slots=True)
class Reading:
    """A post's engagement as evidence: its most mature reading, normalised by audience size."""

    how: int  # local hour of the week it went out at
    epoch: float  # when it went out (UTC epoch seconds)
    rate: float  # interactions per audience member at `age_seconds`
    age_seconds: float
    content_type: ContentType
    # what the planner expected of the post when it chose it: the record, not evidence (that
    # estimate's error of level is learnt from the reading itself, see `_calibration`)
    expected: float | None = None


class Estimate:
    """Posterior per hour of the week (read-only arrays of 168), and draws from it.

    A draw needs the Cholesky factor of the posterior covariance (168 x 168, 226 kB): it is made
    from `covariance` at the first draw, and the covariance let go. `kept` is the estimate as a
    cache should hold it: the arrays, and the factor only if later plans draw.
    """

    __slots__ = ("mean", "spread", "expected", "readings", "_covariance", "_factor")

    def __init__(self, mean: np.ndarray, spread: np.ndarray, expected: np.ndarray,
                 readings: int, covariance: Callable[[], np.ndarray] | None,
                 factor: np.ndarray | None = None):
        self.mean = mean  # posterior mean of log rate
        self.spread = spread  # posterior standard deviation of that mean
        self.expected = expected  # expected engagement rate of a post at that hour (calibrated)
        self.readings = readings
        self._covariance = covariance  # the full posterior covariance, made when a draw needs it
        self._factor = factor  # its Cholesky factor, made at the first draw

    @property
    def can_draw(self) -> bool:
        return self._factor is not None or self._covariance is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays it holds (some, as a prior's mean, may be shared)."""
        held = self.mean.nbytes + self.spread.nbytes + self.expected.nbytes
        return held if self._factor is None else held + self._factor.nbytes

    def kept(self, draws: bool) -> "Estimate":
        """The same estimate without the posterior covariance; with the factor draws need if
        `draws`, else unable to draw."""
        return Estimate(self.mean, self.spread, self.expected, self.readings, None,
                        self._draw_factor() if draws else None)

    def draw(self, normal: np.ndarray) -> np.ndarray:
        """One joint draw of the 168 log rates, from 168 standard normal numbers."""
        return self.mean + self._draw_factor() @ normal

    def _draw_factor(self) -> np.ndarray:
        if self._factor is None:
            if self._covariance is None:
                raise ValueError("this estimate was kept without its covariance: it cannot draw")
            # jitter: the posterior covariance is only positive semi-definite in floats
            self._factor = np.linalg.cholesky(self._covariance() + 1e-9 * np.eye(HOURS_PER_WEEK))
            self._factor.setflags(write=False)
            self._covariance = None
        return self._factor


def accumulated(age_seconds: float, settings: LearningSettings) -> float:
    """Share of a post's eventual engagement reached at `age_seconds` (population curve)."""
    return 1.0 - math.exp(-max(age_seconds, 0.0) / settings.accumulation_seconds)


@lru_cache(maxsize=4)
def _smoothing(hours: float) -> np.ndarray:
    """24 x 24: how alike hours h and h' of the same kind of day are (wraps at midnight)."""
    hour = np.arange(HOURS_PER_DAY)
    distance = (hour[:, None] - hour[None, :] + 12) % 24 - 12
    matrix = np.exp(-0.5 * (distance / hours) ** 2)
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=4)
def prior_covariance(settings: LearningSettings) -> np.ndarray:
    """168 x 168 prior covariance of an account's log rates around the prior mean."""
    how = np.arange(HOURS_PER_WEEK)
    day, hour = how // HOURS_PER_DAY, how % HOURS_PER_DAY
    kind = _KIND[day]
    same_day = day[:, None] == day[None, :]
    kinds = np.where(kind[:, None] == kind[None, :], 1.0, settings.other_kind_share)
    profile = kinds * _smoothing(settings.profile_hours)[hour[:, None], hour[None, :]]
    covariance = (settings.level_sd ** 2
                  + settings.day_sd ** 2 * same_day
                  + settings.profile_sd ** 2 * profile
                  + settings.interaction_sd ** 2 * np.eye(HOURS_PER_WEEK))
    covariance.setflags(write=False)
    return covariance


@lru_cache(maxsize=16)
def _population_log(platform: Platform, content_type: ContentType) -> np.ndarray:
    curve = np.log(np.asarray(population_curve(platform, content_type)))
    curve.setflags(write=False)
    return curve


@dataclass(frozen=True, slots=True)
class Prior:
    """What is believed of an account before its own readings."""

    mean: np.ndarray  # log rate per hour of the week


def prior_for(
    platform: Platform, content_type: ContentType, activity_hours: Sequence[int],
    peak_days: Sequence[str], best_times: Sequence[tuple[int, float]], settings: LearningSettings,
) -> Prior:
    """The population's curve, raised on the audience's active hours and peak days, moved by
    the history's best times.

    `best_times` are (hour, mean rate) pairs, one per hour. They speak of an hour on every
    day alike, so a level and an hour profile capture them: the level is their average
    distance from the curve, each hour's share of the rest is smoothed over neighbouring hours
    and shrunk by `best_time_strength`. An active hour they leave out counts as
    `unlisted_share` of their mean rate: it was not among the best. All but the population's
    curve is per hour of the day or per day, so this works on 24 and 7 values.
    """
    active = set(activity_hours)
    # the hours next to an active one are half active: audiences do not stop on the hour
    bonus = settings.activity_bonus
    hours = np.array([bonus if h in active else bonus / 2 if (h - 1) % 24 in active or (h + 1) % 24 in active
                      else 0.0 for h in range(HOURS_PER_DAY)])
    peaks = {WEEKDAYS.index(day) for day in peak_days}
    if best_times:
        weights, logs, total = _best_time_evidence(best_times, active, settings)
        daily = _population_daily(platform, content_type, settings.population_weight)
        gap = logs - daily - hours - settings.peak_day_bonus * len(peaks) / 7
        level = float(np.dot(weights, gap)) / total
        smooth = _smoothing(settings.profile_hours)
        hours += level + np.dot(weights * (gap - level), smooth) / (
            settings.best_time_strength + np.dot(weights, smooth))
    mean = _population_shape(platform, content_type, settings.population_weight) + hours[_HOUR_OF]
    if peaks:
        mean += settings.peak_day_bonus * _PEAK_DAYS[frozenset(peaks)]
    return Prior(mean)


def _best_time_evidence(
    best_times: Sequence[tuple[int, float]], active: set[int], settings: LearningSettings
) -> tuple[np.ndarray, np.ndarray, float]:
    """(weight, log rate) per hour of the day, as pseudo-readings of every weekday, and the
    total weight."""
    rates = dict(best_times)
    # a reported rate is a mean; the model's log scale is of medians (log-normal noise)
    to_median = 0.5 * settings.noise_sd ** 2
    unlisted = math.log(max(settings.unlisted_share * sum(rates.values()) / len(rates), _RATE_FLOOR))
    listed, other = settings.best_time_weight, settings.unlisted_weight
    weights = [listed if h in rates else other if h in active else 0.0 for h in range(HOURS_PER_DAY)]
    logs = [(math.log(max(rates[h], _RATE_FLOOR)) if h in rates else unlisted) - to_median
            for h in range(HOURS_PER_DAY)]
    return np.array(weights), np.array(logs), sum(weights)


@lru_cache(maxsize=64)
def _population_shape(platform: Platform, content_type: ContentType, weight: float) -> np.ndarray:
    """The population's log curve: its level kept, its shape believed `weight` much."""
    population = _population_log(platform, content_type)
    shape = population.max() + weight * (population - population.max())
    shape.setflags(write=False)
    return shape


@lru_cache(maxsize=64)
def _population_daily(platform: Platform, content_type: ContentType, weight: float) -> np.ndarray:
    """What that curve says of each hour of the day, on average over the week."""
    daily = _population_shape(platform, content_type, weight).reshape(7, HOURS_PER_DAY).mean(axis=0)
    daily.setflags(write=False)
    return daily


_HOUR_OF = np.arange(HOURS_PER_WEEK) % HOURS_PER_DAY
_TYPE_INDEX = {t: i for i, t in enumerate(ContentType)}
_TYPES = len(_TYPE_INDEX)
_BINS = HOURS_PER_WEEK * _TYPES  # (hour of week, content type)


class _PeakDays(dict):
    """Peak days (a frozenset of weekday numbers) → 168 ones on those days, made once each."""

    def __missing__(self, days: frozenset[int]) -> np.ndarray:
        found = np.repeat([1.0 if d in days else 0.0 for d in range(7)], HOURS_PER_DAY)
        found.setflags(write=False)
        self[days] = found
        return found


_PEAK_DAYS = _PeakDays()


def estimate(
    prior: Prior,
    readings: Sequence[Reading],
    content_type: ContentType,
    platform: Platform,
    now_epoch: float,
    settings: LearningSettings,
) -> Estimate:
    """The posterior for a post of `content_type`, from the prior and the readings.

    The readings update a Gaussian process over the 168 hours with `prior_covariance`, so an
    hour next to well-known ones is known a little, not as well as they are.
    """
    mean = prior.mean
    noise_var = settings.noise_sd ** 2
    type_var = settings.content_type_sd ** 2  # the target type's own level is uncertain too
    if not readings:
        variance = _prior_variance(settings) + type_var
        covariance = lambda: prior_covariance(settings) + type_var  # noqa: E731
    else:
        base = prior_covariance(settings)
        hows, logs, ws, types, maturity = _evidence(readings, content_type, platform, now_epoch, settings)
        # readings are pooled per hour and content type: a type's own level is shared by its
        # posts, so a type posted more at one hour must not make that hour look better
        bins = hows * _TYPES + types
        weights = np.bincount(bins, ws, _BINS)
        sums = np.bincount(bins, ws * logs, _BINS)
        noise_var = _noise_variance(bins, logs, ws, weights, sums, settings)
        seen = np.flatnonzero(weights > 0)
        averages = sums[seen] / weights[seen]
        seen_hows, seen_types = seen // _TYPES, seen % _TYPES
        same_type = seen_types[:, None] == seen_types[None, :]
        # a bin's average of readings of weight w has variance noise / sum(w)
        system = base[np.ix_(seen_hows, seen_hows)] + type_var * same_type + np.diag(noise_var / weights[seen])
        cross = base[seen_hows]  # (seen, 168)
        if type_var:
            cross = cross + type_var * (seen_types == _TYPE_INDEX[content_type])[:, None]
        solved = np.linalg.solve(system, np.column_stack([averages - mean[seen_hows], cross]))
        mean = mean + cross.T @ solved[:, 0]
        posterior = base + type_var - cross.T @ solved[:, 1:]
        variance = np.diag(posterior).copy()
        covariance = lambda: posterior  # noqa: E731
    variance = np.maximum(variance, 0.0)
    # Log-normal: a post's engagement around the hour's median has mean exp(noise / 2). The
    # hour's own uncertainty would add exp(variance / 2), but a chosen slot is the best-looking
    # one, whose estimate is biased up by about as much: both are left out.
    expected = np.exp(mean + 0.5 * noise_var)
    if readings:
        expected *= _calibration(expected, hows, logs, ws, types == _TYPE_INDEX[content_type],
                                 maturity, settings)
    return Estimate(mean, np.sqrt(variance), expected, len(readings), covariance)


@lru_cache(maxsize=4)
def _prior_variance(settings: LearningSettings) -> np.ndarray:
    variance = np.diag(prior_covariance(settings)).copy()
    variance.setflags(write=False)
    return variance


def _calibration(
    expected: np.ndarray, hows: np.ndarray, logs: np.ndarray, ws: np.ndarray, same_type: np.ndarray,
    maturity: np.ndarray, settings: LearningSettings,
) -> float:
    """What the account's mature posts of the estimate's type earned over what the posterior
    expects at their hours (`expected` before this correction), shrunk towards 1.

    Against the posterior, not what was expected when a post was planned: that estimate's error
    of level (a new account's prior) has since been learnt by the posterior from these very
    readings, so dividing by it applied the account's level twice. A reading counts once it
    is near its engagement at the reference age, projected the rest of the way as in the update
    (`_evidence`), so a story's last reading, at 23 h, counts as a 24 h one; an early reading
    does not, as the accumulation curve, not the account, would set most of it. Only the
    estimate's own type: the others' levels are the posterior's guess through the population's
    ratio, not what it expects of them.
    """
    used = same_type & (maturity >= settings.calibration_maturity)
    weights = ws[used]
    ratios = np.exp(logs[used]) / expected[hows[used]]
    strength = settings.calibration_strength
    return float((strength + np.dot(weights, ratios)) / (strength + weights.sum()))


def _noise_variance(
    bins: np.ndarray, logs: np.ndarray, ws: np.ndarray, weights: np.ndarray, sums: np.ndarray,
    settings: LearningSettings,
) -> float:
    """Post-to-post variance from readings that share a bin (free of any model's fit)."""
    squares = np.bincount(bins, ws * logs * logs, _BINS)
    seen = weights > 0
    scatter = float((squares[seen] - sums[seen] ** 2 / weights[seen]).sum())
    counts = np.bincount(bins, minlength=_BINS)
    repeats = float((counts[seen] - 1).sum())
    mean_weight = float(ws.mean())
    # the scatter is in weighted units: divide by the mean weight to compare with counts
    return (settings.noise_strength * settings.noise_sd ** 2 + max(scatter, 0.0) / mean_weight) / (
        settings.noise_strength + repeats)


def _evidence(
    readings: Sequence[Reading], content_type: ContentType, platform: Platform,
    now_epoch: float, settings: LearningSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hour of week, projected log rate, weight, content type index, share of the reference
    age's engagement reached) per reading."""
    reference = accumulated(settings.reference_age_seconds, settings)
    target_level = level_of(platform, content_type)
    count = len(readings)
    hows = np.empty(count, dtype=np.intp)
    logs = np.empty(count)
    ws = np.empty(count)
    types = np.empty(count, dtype=np.intp)
    maturity = np.empty(count)
    half_life = settings.half_life_days * _SECONDS_PER_DAY
    for i, reading in enumerate(readings):
        reached = max(accumulated(reading.age_seconds, settings), 1e-6)
        # another content type of the same account: scale by the population's ratio
        scale = reference / reached * target_level / level_of(platform, reading.content_type)
        hows[i] = reading.how
        types[i] = _TYPE_INDEX[reading.content_type]
        logs[i] = math.log(max(reading.rate, _RATE_FLOOR) * scale)
        since = max(now_epoch - reading.epoch, 0.0)
        maturity[i] = reached / reference
        ws[i] = min(maturity[i], 1.0) * 0.5 ** (since / half_life)
    return hows, logs, ws, types, maturity
