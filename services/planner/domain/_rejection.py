"""Why an event cannot be planned."""

from __future__ import annotations


class PlanningRejected(Exception):
    """A valid event that cannot be planned; `reason` is a machine-readable code.

    Mirrors `contracts.ContractError` so the handler can answer both with a `ContentRejected`.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
