"""The queue's pure rules: target states, transitions, retry and status-check timing."""

from ._model import TERMINAL, WAITING_TO_PUBLISH, Change, Emit, TargetState, TargetStatus, post_status
from ._policy import RetryPolicy, StatusCadence
from ._transitions import on_due, on_publish_result, on_status_observed

__all__ = [
    "TERMINAL",
    "WAITING_TO_PUBLISH",
    "Change",
    "Emit",
    "RetryPolicy",
    "StatusCadence",
    "TargetState",
    "TargetStatus",
    "on_due",
    "on_publish_result",
    "on_status_observed",
    "post_status",
]
