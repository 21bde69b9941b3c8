"""Offline evaluation of the timing strategies on synthetic accounts whose truth stays hidden.

    python benchmarks/timing.py [--json] [--accounts 240] [--weeks 12] [--seed 7]
                                [--noise 0.15] [--drift-hours 1.0] [--platform-spread 0.5]

Brands have an account on each platform. Every account has a hidden engagement curve in its
local time (a lunch and an evening peak, a different weekend shape, day-to-day differences;
its brand's broad shape, with its platform's peaks somewhat apart), a timezone from around the
world (daylight-saving changes fall inside the twelve weeks), a level of its own, post-to-post
noise, a curve that drifts over the weeks and an audience that grows. Content events arrive at
random times with windows of one to seven days; like upstream events, they carry the brand's
audience data and history (from its Instagram analytics: when followers are online, the hours
it used to post at; some brands have no history). Every strategy plans the same events through
the planner's own code (`plan_content`, with the platform limits):

- `heuristic`: the original generateOptimalSchedule ranking (active hours, peak days, bestTimes);
- `industry`: fixed industry best times (the population curve of the platform);
- `random`: a random allowed slot of the window;
- `learned`: the learned strategy. It sees what a planner would: the event, and an hour and a
  day after each of its own posts, that post's engagement (counts, with the audience size,
  noisy). Never the curves.
- `oracle`: the same search with the true expected engagement, the yardstick.

Engagement is the true expected 24-hour engagement of each chosen slot (audience size × rate
at that local hour and week), so the comparison is free of the draw of noise. Prints per
strategy the share of the oracle's engagement per week and overall, and how calibrated the
learned strategy's `expectedEngagement` is against the engagement it then observed. The
world's assumptions are the constants below (and the flags); see
docs/decisions/planner-learning.md.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts import WEEKDAYS, ContentSubmitted, ContentType, Platform  # noqa: E402
from services.planner.domain import (  # noqa: E402
    DEFAULT_LIMITS,
    HOURS_PER_WEEK,
    AccountReadings,
    HeuristicStrategy,
    IndustryTimesStrategy,
    LearnedStrategy,
    PlanningContext,
    PlanningRejected,
    Reading,
    ScoringRequest,
    SlotScores,
    level_of,
    local_hour_of_week,
    plan_content,
)

START = datetime(2026, 2, 23, tzinfo=timezone.utc)  # a Monday; US, EU, AU, NZ, CL clocks change
WEEK = 7 * 86_400.0
READING_AGES = (3600.0, 86_400.0)
ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Mexico_City", "America/Sao_Paulo", "America/Santiago", "America/St_Johns",
    "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Istanbul",
    "Africa/Lagos", "Africa/Johannesburg", "Asia/Dubai", "Asia/Tehran", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Jakarta", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
    "Australia/Adelaide", "Pacific/Auckland",
)
POSTS_PER_WEEK = {Platform.TIKTOK: (6, 12), Platform.INSTAGRAM: (4, 8), Platform.YOUTUBE: (2, 4)}
CONTENT = {
    Platform.TIKTOK: (ContentType.VIDEO, ContentType.IMAGE),
    Platform.INSTAGRAM: (ContentType.REEL, ContentType.IMAGE, ContentType.VIDEO),
    Platform.YOUTUBE: (ContentType.VIDEO, ContentType.REEL),
}
LEVEL = {Platform.TIKTOK: 0.05, Platform.INSTAGRAM: 0.03, Platform.YOUTUBE: 0.03}
WINDOW_DAYS = ((1, 0.3), (2, 0.25), (3, 0.25), (7, 0.2))
PLATFORM_SPREAD = 0.5  # hours one platform's peaks sit from the brand's, standard deviation
DRIFT_HOURS = 1.0  # standard deviation of how far a peak moves over the whole run
NEW_ACCOUNTS = 0.2  # share of accounts with no history (no bestTimes) when the run starts
NOISE = 0.15


# -- the hidden truth --------------------------------------------------------------------------

@dataclass
class Bump:
    centre: float  # local hour
    height: float
    width: float
    drift: float  # hours moved over the whole run


@dataclass
class Account:
    id: str
    platform: Platform
    zone: ZoneInfo
    brand: int  # accounts of one brand share their audience data (an event's is per brand)
    level: float
    weekday: list[Bump]
    weekend: list[Bump]
    floor: float
    day_factors: list[float]
    followers: float
    growth: float  # per week
    noise: float  # log sd of post-to-post variation
    accumulation: float  # seconds: engagement builds like 1 - exp(-age / this)
    online_lag: float  # hours by which its followers' online peaks follow its engagement peaks
    content_types: dict[ContentType, float]  # what it posts, and how each engages (factor)
    weeks: int

    def curve(self, week: float) -> np.ndarray:
        """True expected 24-hour engagement rate per local hour of the week, at `week`."""
        progress = min(max(week / self.weeks, 0.0), 1.0)
        hours = np.arange(24) + 0.5
        shapes = []
        for bumps in (self.weekday, self.weekend):
            shape = np.full(24, self.floor)
            for b in bumps:
                centre = b.centre + b.drift * progress
                distance = (hours - centre + 12) % 24 - 12
                shape += b.height * (1 + 0.15 * (progress - 0.5) * np.sign(b.drift)) * np.exp(
                    -0.5 * (distance / b.width) ** 2)
            shapes.append(shape)
        days = [shapes[1] if d >= 5 else shapes[0] for d in range(7)]
        curve = np.concatenate([self.day_factors[d] * days[d] for d in range(7)])
        return self.level * curve / curve.max()

    def audience(self, epoch: float) -> float:
        return self.followers * (1 + self.growth) ** ((epoch - START.timestamp()) / WEEK)

    def reached(self, age: float) -> float:
        return 1 - math.exp(-age / self.accumulation)


def make_accounts(rng: random.Random, count: int, weeks: int) -> list[Account]:
    """Brands with an account on each platform: one audience, but each platform's own hours.

    A brand's accounts share a timezone and the broad shape of their days; on each platform the
    peaks sit somewhat apart (PLATFORM_SPREAD), as audiences of one brand use the platforms at
    different times of day.
    """
    accounts: list[Account] = []
    while len(accounts) < count:
        lunch = (rng.uniform(11, 14), rng.uniform(0.3, 0.9), rng.uniform(1.5, 3.0))
        evening = (rng.uniform(17.5, 22.5), rng.uniform(0.5, 1.0), rng.uniform(1.8, 3.5))
        morning = (rng.uniform(7, 9), rng.uniform(0.2, 0.6), rng.uniform(1.0, 2.0)) if rng.random() < 0.3 else None
        brunch = (rng.uniform(10, 13), rng.uniform(0.3, 0.9), rng.uniform(1.5, 3.0))
        zone = ZoneInfo(rng.choice(ZONES))
        for platform in Platform:
            if len(accounts) < count:
                accounts.append(_account(rng, len(accounts), platform, zone, lunch, evening, morning, brunch, weeks))
    return accounts


def _account(rng: random.Random, index: int, platform: Platform, zone: ZoneInfo, lunch, evening, morning,
             brunch, weeks: int) -> Account:
    def bump(shape, drift: float) -> Bump:
        centre, height, width = shape
        return Bump(centre + rng.gauss(0, PLATFORM_SPREAD), height * rng.uniform(0.8, 1.25), width, drift)

    weekday = [bump(lunch, rng.gauss(0, DRIFT_HOURS)), bump(evening, rng.gauss(0, DRIFT_HOURS))]
    if morning:
        weekday.append(bump(morning, 0.0))
    shift = rng.uniform(0.5, 2.0)
    evening_now = weekday[1]
    weekend = [bump(brunch, weekday[0].drift),
               Bump(evening_now.centre + shift, evening_now.height * rng.uniform(0.6, 1.2),
                    evening_now.width * rng.uniform(0.9, 1.4), evening_now.drift)]
    weekend_factor = rng.uniform(0.7, 1.15)
    day_factors = [1 + rng.gauss(0, 0.08) for _ in range(5)] + [weekend_factor * (1 + rng.gauss(0, 0.05))
                                                                  for _ in range(2)]
    return Account(
        id=f"sim-{platform.value}-{index}", platform=platform, zone=zone, brand=index // 3,
        level=LEVEL[platform] * math.exp(rng.gauss(0, 0.5)), weekday=weekday, weekend=weekend,
        floor=rng.uniform(0.05, 0.2), day_factors=day_factors,
        followers=math.exp(rng.uniform(math.log(2_000), math.log(500_000))),
        growth=rng.uniform(0.0, 0.04), noise=NOISE * rng.uniform(0.6, 1.4),
        accumulation=rng.uniform(3, 9) * 3600, online_lag=rng.uniform(0.5, 2.5), weeks=weeks,
        # content types engage differently; roughly as the population does, each account its own way
        content_types={t: level_of(platform, t) / level_of(platform, CONTENT[platform][0])
                       * math.exp(rng.gauss(0, 0.2)) for t in CONTENT[platform]},
    )


def audience_data(account: Account, rng: random.Random) -> dict:
    """What the account's analytics say: when its followers are online, on which days.

    Followers are online most a little after the hours that earn most (a post needs its first
    hour to be picked up), so those hours lag behind the engagement curve; the list is coarse.
    """
    start = account.curve(0.0).reshape(7, 24)
    hour = np.arange(24)
    online = np.interp((hour - account.online_lag) % 24, hour, start[:5].mean(axis=0), period=24)
    hours = [h for h in range(24) if online[h] >= 0.7 * online.max()]
    if rng.random() < 0.5 and len(hours) > 2:
        hours.remove(rng.choice(hours))
    if rng.random() < 0.5:
        hours.append(rng.randrange(8, 23))
    days = list(np.argsort(-start.sum(axis=1))[: rng.choice((2, 3))])
    if rng.random() < 0.3:
        days[rng.randrange(len(days))] = rng.randrange(7)
    return {"timezone": account.zone.key, "activityHours": sorted(set(hours)),
            "peakDays": sorted({WEEKDAYS[int(d)] for d in days}, key=WEEKDAYS.index)}


def best_times(account: Account, rng: random.Random) -> list[dict]:
    """The history: the hours the account used to post at, two months before, and their rates.

    Some habits were good hours (the account had learnt a little), others just convenient
    ones in the working day or the evening; each rate is the mean of a few noisy posts.
    A new account (NEW_ACCOUNTS of them) has no history at all.
    """
    if rng.random() < NEW_ACCOUNTS:
        return []
    before = account.curve(-8 * account.weeks / 12).reshape(7, 24).mean(axis=0)
    good = sorted(range(24), key=lambda h: -before[h] * rng.uniform(0.7, 1.3))[:8]
    habits: set[int] = set()
    for _ in range(rng.randint(2, 5)):
        habits.add(rng.choice(good) if rng.random() < 0.5 else rng.randrange(8, 23))
    return [{"hour": h, "engagementRate": round(float(before[h] * math.exp(rng.gauss(0, 0.25))), 5)}
            for h in sorted(habits)]


# -- the strategies that are not the planner's own -------------------------------------------

class RandomStrategy:
    name = "random"

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def scores(self, request: ScoringRequest) -> SlotScores:
        draws = self.rng.random(HOURS_PER_WEEK)
        return SlotScores(tiers=(draws,), expected=np.zeros(HOURS_PER_WEEK))


class OracleStrategy:
    """Knows the true curve: the best any strategy could do with the same search and rules."""

    name = "oracle"

    def __init__(self, accounts: dict[str, Account]):
        self.accounts = accounts

    def scores(self, request: ScoringRequest) -> SlotScores:
        account = self.accounts[request.account_id]
        week = (request.now_epoch - START.timestamp()) / WEEK + 0.2
        curve = account.curve(week)
        return SlotScores(tiers=(curve,), expected=curve)


# -- the run -------------------------------------------------------------------------------------

@dataclass
class Event:
    arrival: float
    account: Account
    payload: dict


@dataclass
class Outcome:
    weekly: list[float]
    calibration: list[tuple[float, float, int]] = field(default_factory=list)  # (expected, observed, week)


def make_events(accounts: list[Account], weeks: int, rng: random.Random) -> list[Event]:
    """Each account's content events. Their audience data and history are the brand's, as
    upstream systems send them: from the analytics of the brand's Instagram account, or of its
    first account when it has none there."""
    brands: dict[int, tuple[dict, list[dict]]] = {}
    for account in sorted(accounts, key=lambda a: (a.brand, a.platform is not Platform.INSTAGRAM)):
        if account.brand not in brands:
            brands[account.brand] = (audience_data(account, rng), best_times(account, rng))
    events = []
    for account in accounts:
        audience, history = brands[account.brand]
        low, high = POSTS_PER_WEEK[account.platform]
        for week in range(weeks):
            for n in range(rng.randint(low, high)):
                arrival = START.timestamp() + (week + rng.random()) * WEEK
                days = rng.choices([d for d, _ in WINDOW_DAYS], [w for _, w in WINDOW_DAYS])[0]
                opens = datetime.fromtimestamp(arrival, timezone.utc)
                events.append(Event(arrival, account, {
                    "upstreamId": f"{account.id}-w{week}-{n}",
                    "targets": [{"platform": account.platform.value, "accountId": account.id}],
                    "media": [{"url": "https://cdn.example.com/clip.mp4"}],
                    "contentType": rng.choice(list(account.content_types)).value,
                    "schedule": {"mode": "optimal", "notBefore": opens.isoformat(),
                                 "notAfter": (opens + timedelta(days=days)).isoformat()},
                    "audienceData": audience,
                    "historicalPerformance": {"bestTimes": history},
                }))
    events.sort(key=lambda e: e.arrival)
    return events


def run(strategy, events: list[Event], weeks: int, rng: random.Random, learns: bool) -> Outcome:
    context = PlanningContext(strategy=strategy, limits=DEFAULT_LIMITS, readings={})
    readings: dict[tuple, dict[str, Reading]] = defaultdict(dict)
    versions: dict[tuple, int] = defaultdict(int)
    pending: list[tuple[float, int, tuple]] = []  # (when it can be read, tie-break, details)
    weekly = [0.0] * weeks
    outcome = Outcome(weekly)
    counter = 0
    for event in events:
        while pending and pending[0][0] <= event.arrival:
            _, _, (key, target, reading, expected, final) = heapq.heappop(pending)
            held = readings[key].get(target)
            if held is None or held.age_seconds < reading.age_seconds:
                readings[key][target] = reading
                versions[key] += 1
                context.readings[key] = AccountReadings(tuple(readings[key].values()), versions[key])
            if final:
                week = min(int((reading.epoch - START.timestamp()) // WEEK), weeks - 1)
                outcome.calibration.append((expected, reading.rate, week))
        submitted = ContentSubmitted.model_validate(event.payload)
        try:
            planned = plan_content(submitted, datetime.fromtimestamp(event.arrival, timezone.utc), context)
        except PlanningRejected:
            continue
        account = event.account
        (target,) = planned.targets
        epoch = target.scheduled_time.timestamp()
        week_of_post = (epoch - START.timestamp()) / WEEK
        how = local_hour_of_week(epoch, account.zone)
        true_rate = float(account.curve(week_of_post)[how]) * account.content_types[submitted.content_type]
        arrival_week = min(int((event.arrival - START.timestamp()) // WEEK), weeks - 1)
        weekly[arrival_week] += account.audience(epoch) * true_rate
        if not learns:
            continue
        realised = true_rate * math.exp(rng.gauss(0, account.noise) - account.noise ** 2 / 2)
        key = (account.platform, account.id)
        for age in READING_AGES:
            audience = account.audience(epoch + age)
            count = np.random.default_rng(rng.getrandbits(32)).poisson(
                audience * realised * account.reached(age))
            counter += 1
            reading = Reading(how=how, epoch=epoch, rate=count / round(audience), age_seconds=age,
                              content_type=submitted.content_type, expected=target.expected_engagement)
            heapq.heappush(pending, (epoch + age, counter, (
                key, str(target.target_id), reading, target.expected_engagement, age == READING_AGES[-1])))
    return outcome


def calibration_report(pairs: list[tuple[float, float, int]], weeks: int, bins: int = 10) -> dict:
    if not pairs:
        return {}
    expected = np.array([e for e, _, _ in pairs])
    observed = np.array([o for _, o, _ in pairs])
    week = np.array([w for _, _, w in pairs])
    order = np.argsort(expected)
    table = []
    for chunk in np.array_split(order, bins):
        table.append({"expected": round(float(expected[chunk].mean()), 5),
                      "observed": round(float(observed[chunk].mean()), 5), "posts": int(len(chunk))})
    slope = float(np.polyfit(expected, observed, 1)[0]) if len(pairs) > 2 else None
    errors = [abs(row["observed"] - row["expected"]) / row["observed"] for row in table if row["observed"]]
    return {
        "posts": len(pairs),
        "meanExpected": round(float(expected.mean()), 5),
        "meanObserved": round(float(observed.mean()), 5),
        "observedOverExpected": round(float(observed.mean() / expected.mean()), 3),
        "slope": round(slope, 3) if slope is not None else None,
        "meanRelativeErrorByDecile": round(float(np.mean(errors)), 3) if errors else None,
        "observedOverExpectedByWeek": [
            round(float(observed[week == w].mean() / expected[week == w].mean()), 3) if (week == w).any() else None
            for w in range(weeks)],
        "deciles": table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=240)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise", type=float, default=NOISE, help="post-to-post log spread")
    parser.add_argument("--drift-hours", type=float, default=DRIFT_HOURS, help="peak drift over the run, sd")
    parser.add_argument("--platform-spread", type=float, default=PLATFORM_SPREAD,
                        help="hours a brand's platforms' peaks sit apart, sd (0: one audience)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    world_settings = {"NOISE": args.noise, "DRIFT_HOURS": args.drift_hours, "PLATFORM_SPREAD": args.platform_spread}
    globals().update(world_settings)

    started = time.perf_counter()
    world = random.Random(args.seed)
    accounts = make_accounts(world, args.accounts, args.weeks)
    events = make_events(accounts, args.weeks, world)
    strategies = {
        "oracle": (OracleStrategy({a.id: a for a in accounts}), False),
        "heuristic": (HeuristicStrategy(), False),
        "industry": (IndustryTimesStrategy(), False),
        "random": (RandomStrategy(args.seed), False),
        "learned": (LearnedStrategy(), True),
    }
    outcomes = {name: run(s, events, args.weeks, random.Random(args.seed + 1), learns)
                for name, (s, learns) in strategies.items()}
    oracle = outcomes["oracle"].weekly
    report: dict = {"accounts": args.accounts, "weeks": args.weeks, "events": len(events),
                    "seed": args.seed, "world": {**world_settings, "NEW_ACCOUNTS": NEW_ACCOUNTS},
                    "strategies": {}}
    for name, outcome in outcomes.items():
        if name == "oracle":
            continue
        weekly = [round(s / o, 4) for s, o in zip(outcome.weekly, oracle)]
        report["strategies"][name] = {
            "overall": round(sum(outcome.weekly) / sum(oracle), 4),
            "weeks9to12": round(float(np.mean(weekly[8:12])), 4) if args.weeks >= 12 else None,
            "weekly": weekly,
        }
    learned, heuristic = outcomes["learned"].weekly, outcomes["heuristic"].weekly
    report["learnedOverHeuristic"] = round(sum(learned) / sum(heuristic) - 1, 4)
    report["week1LearnedMinusHeuristic"] = round((learned[0] - heuristic[0]) / oracle[0], 4)
    report["calibration"] = calibration_report(outcomes["learned"].calibration, args.weeks)
    report["targets"] = {
        "learnedWeeks9to12AtLeast": 0.95,
        "learnedOverHeuristicAtLeast": 0.15,
        "week1LearnedNotBelowHeuristic": True,
        "met": bool((report["strategies"]["learned"]["weeks9to12"] or 0) >= 0.95
                    and report["learnedOverHeuristic"] >= 0.15
                    and report["week1LearnedMinusHeuristic"] >= 0),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(orjson.dumps(report).decode())
    else:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
