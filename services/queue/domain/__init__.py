"""The queue's pure rules: target states, transitions, retry and status-check timing, and what
operators may do."""

from ._in_flight import InFlightLimit
from ._model import TERMINAL, WAITING_TO_PUBLISH, Change, Emit, TargetState, TargetStatus, post_status
from ._operator import (
    Candidate,
    Refused,
    ambiguous,
    awaited_review,
    cancel,
    found,
    reschedule,
    retry,
    review_needs_its_own_name,
    url_refusal,
)
from ._policy import PLATFORM_RETRY_POLICIES, EngagementCadence, RetryPolicy, StatusCadence, retry_policies
from ._slots import GIVEN_UP, slot_change
from ._transitions import (
    LEASE_EXPIRED,
    collection_ages,
    on_due,
    on_engagement_due,
    on_engagement_observed,
    on_publish_result,
    on_status_observed,
    with_engagement_timer,
)

__all__ = [
    "Candidate",
    "GIVEN_UP",
    "LEASE_EXPIRED",
    "PLATFORM_RETRY_POLICIES",
    "TERMINAL",
    "WAITING_TO_PUBLISH",
    "Change",
    "Emit",
    "EngagementCadence",
    "InFlightLimit",
    "Refused",
    "RetryPolicy",
    "StatusCadence",
    "TargetState",
    "TargetStatus",
    "ambiguous",
    "cancel",
    "collection_ages",
    "on_due",
    "on_engagement_due",
    "on_engagement_observed",
    "on_publish_result",
    "on_status_observed",
    "post_status",
    "reschedule",
    "awaited_review",
    "found",
    "retry",
    "slot_change",
    "retry_policies",
    "review_needs_its_own_name",
    "url_refusal",
    "with_engagement_timer",
]
