"""The one exponential back-off: full jitter, for the queue's retries and a failing consumer's."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Uniform in [0, min(cap, base * 2^(attempt-1))]: retries spread out instead of in waves."""
    ceiling = min(cap, base * 2 ** min(max(0, attempt - 1), 64))
    return rng.uniform(0, ceiling)
