"""Finding the slot: the best allowed candidate of a window, by a strategy's scores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo

import numpy as np

from ._hour_of_week import Candidate, candidate_at, window_candidates
from ._rules import SlotRules
from ._window import SchedulingWindow

NOT_A_CANDIDATE = -math.inf


@dataclass(frozen=True, slots=True)
class SlotScores:
    """What a strategy thinks of each local hour of the week (arrays of 168).

    The search takes the first tier that has an allowed candidate, and in it the candidate
    with the highest score (`NOT_A_CANDIDATE`: not in this tier), the earliest of equals.
    With a finite `slack` it only considers candidates whose `mean` is within `slack` of the
    best allowed `mean`: that is how an exploring strategy bounds what exploration may cost.
    `expected` is what a slot at that hour is expected to earn; `fixed` what a time chosen by
    someone else is said to earn (None: `expected`); `fallback` what the search reports when
    no tier has a candidate (None: `expected` at the fallback's hour).
    """

    tiers: tuple[np.ndarray, ...]
    expected: np.ndarray
    mean: np.ndarray | None = None
    slack: float = math.inf
    fixed: np.ndarray | None = None
    fallback: float | None = None

    def expected_at(self, candidate: Candidate) -> float:
        return float((self.fixed if self.fixed is not None else self.expected)[candidate.how])


@dataclass(frozen=True, slots=True)
class Slot:
    epoch: float
    expected: float


def choose_slot(
    window: SchedulingWindow, zone: tzinfo, scores: SlotScores, rules: SlotRules
) -> Slot | None:
    """The best slot the rules allow in the window; None when they allow no instant in it."""
    slots = rank_slots(window, zone, scores, rules, 1)
    return slots[0] if slots else None


def rank_slots(
    window: SchedulingWindow, zone: tzinfo, scores: SlotScores, rules: SlotRules, count: int
) -> list[Slot]:
    """Up to `count` distinct slots, best first (see `SlotScores` for the order)."""
    candidates = window_candidates(window, zone)
    allowed = rules.mask(candidates)
    hows = candidates.hows
    for tier in scores.tiers:
        values = tier[hows]
        eligible = values != NOT_A_CANDIDATE
        if allowed is not None:
            eligible &= allowed
        if not eligible.any():
            continue
        if scores.slack != math.inf and scores.mean is not None:
            means = scores.mean[hows]
            eligible &= means >= means[eligible].max() - scores.slack
        ranked = np.where(eligible, values, NOT_A_CANDIDATE)
        if count == 1:
            picks = [int(np.argmax(ranked))]  # the first of equals: candidates are in time order
        else:
            order = np.lexsort((candidates.epochs, -ranked))
            picks = [int(i) for i in order[: min(count, int(eligible.sum()))]]
        return [Slot(float(candidates.epochs[i]), float(scores.expected[hows[i]])) for i in picks]
    earliest = rules.next_allowed(window.opening.timestamp(), window.end.timestamp())
    if earliest is None:
        return []
    candidate = candidate_at(earliest, zone)
    fallback = scores.fallback if scores.fallback is not None else float(scores.expected[candidate.how])
    return [Slot(earliest, fallback)]
