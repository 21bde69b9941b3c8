"""The planner's pure rules: when each target of a content event goes out.

No I/O and no clock reads: callers pass `now`.
"""

from ._default_audiences import DEFAULT_AUDIENCES
from ._hour_scores import UNKNOWN_HOUR_DISCOUNT, hour_scores
from ._optimal_schedule import generate_optimal_schedule
from ._plan_content import plan_content
from ._rejection import PlanningRejected
from ._schedule_choice import AT_TIME_GRACE, PLANNING_HORIZON_DAYS

__all__ = [
    "AT_TIME_GRACE",
    "DEFAULT_AUDIENCES",
    "PLANNING_HORIZON_DAYS",
    "UNKNOWN_HOUR_DISCOUNT",
    "PlanningRejected",
    "generate_optimal_schedule",
    "hour_scores",
    "plan_content",
]
