"""The planner's pure rules: when each target of a content event goes out.

No I/O and no clock reads: callers pass `now`, the account's readings and what is planned.

- strategies value the local hours of the week: `HeuristicStrategy` (the original
  `generateOptimalSchedule`), `IndustryTimesStrategy`, `LearnedStrategy` (per account ×
  platform × hour-of-week estimate, explored by posterior sampling or UCB);
- `SlotRules` keep blackouts, spacing, daily caps and quota windows;
- the search takes the best allowed candidate of the window, in the audience's timezone,
  with daylight-saving time done right.
"""

from ._context import (
    PLANNING_HORIZON_DAYS,
    AccountKey,
    AccountReadings,
    ChosenTime,
    PlanningContext,
    PostedContent,
)
from ._default_audiences import DEFAULT_AUDIENCES
from ._estimate import Estimate, LearningSettings, Prior, Reading, accumulated, estimate, prior_for
from ._hour_of_week import (
    HOURS_PER_WEEK,
    Candidate,
    hour_of_week,
    local_hour_of_week,
    window_candidates,
    zone_named,
)
from ._hour_scores import UNKNOWN_HOUR_DISCOUNT, hour_scores
from ._optimal_schedule import generate_optimal_schedule
from ._plan_content import audience_for, plan_content
from ._population import level_of, population_curve
from ._readings import engagement_rate, reading_from
from ._rejection import PlanningRejected
from ._rules import DEFAULT_LIMITS, NO_LIMITS, UNLIMITED, PlatformLimits, QuotaWindow, SlotRules
from ._schedule_choice import AT_TIME_GRACE
from ._schedule import learned_schedule, schedule_with
from ._slot_release import ReleasedBy, released_by
from ._slot_search import Slot, SlotScores, choose_slot, rank_slots
from ._strategies import (
    Exploration,
    ExplorationSettings,
    HeuristicStrategy,
    IndustryTimesStrategy,
    LearnedStrategy,
    ScoringRequest,
    Strategy,
    seed_for,
)
from ._window import SchedulingWindow, scheduling_window

__all__ = [
    "AT_TIME_GRACE",
    "DEFAULT_AUDIENCES",
    "DEFAULT_LIMITS",
    "HOURS_PER_WEEK",
    "NO_LIMITS",
    "PLANNING_HORIZON_DAYS",
    "UNKNOWN_HOUR_DISCOUNT",
    "UNLIMITED",
    "AccountKey",
    "AccountReadings",
    "Candidate",
    "ChosenTime",
    "Estimate",
    "Exploration",
    "ExplorationSettings",
    "HeuristicStrategy",
    "IndustryTimesStrategy",
    "LearnedStrategy",
    "LearningSettings",
    "PlanningContext",
    "PostedContent",
    "PlanningRejected",
    "PlatformLimits",
    "Prior",
    "QuotaWindow",
    "Reading",
    "ReleasedBy",
    "SchedulingWindow",
    "ScoringRequest",
    "Slot",
    "SlotRules",
    "SlotScores",
    "Strategy",
    "accumulated",
    "audience_for",
    "choose_slot",
    "engagement_rate",
    "estimate",
    "generate_optimal_schedule",
    "hour_of_week",
    "hour_scores",
    "learned_schedule",
    "level_of",
    "local_hour_of_week",
    "plan_content",
    "population_curve",
    "prior_for",
    "rank_slots",
    "reading_from",
    "released_by",
    "schedule_with",
    "scheduling_window",
    "seed_for",
    "window_candidates",
    "zone_named",
]
