"""Why an event cannot be planned."""

from __future__ import annotations

from typing import Any


class PlanningRejected(Exception):
    """A valid event that cannot be planned; `reason` is a machine-readable code.

    Mirrors `contracts.ContractError` (`details`: `FieldProblem`s as dicts) so the handler can
    answer both with a `ContentRejected`.
    """

    def __init__(self, reason: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details = details or []
