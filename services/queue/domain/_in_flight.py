"""How many publish requests one platform may have out at once.

A request that waits in a publisher's backlog longer than its lease is dispatched again: the
work is done twice (resumed, not posted twice, but paid for) and counted as a failure. By
Little's law the requests out = completion rate × time each spends out, so keeping
`rate × share × lease` out keeps the time out near `share` of the lease, whatever the
platform's speed: a slow platform gets few, a fast one up to the ceiling.

The requests out are counted across every queue replica (in Postgres), so the rate must be
theirs together too: a replica applies the results of its share of the partitions, and
scales what it sees by that share.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARE_OF_LEASE = 0.25  # an average wait of a quarter lease leaves room for a slow partition
WINDOW_SECONDS = 5.0  # completions are counted over windows this long
FLOOR = 20  # never fewer: a platform whose rate is not known yet still makes progress


@dataclass
class InFlightLimit:
    ceiling: int
    lease_seconds: float
    floor: int = FLOOR
    rate: float | None = None  # completions per second, smoothed; None until a window has passed
    _count: float = 0.0
    _window_start: float | None = None

    def completed(self, at: float, count: int = 1, share: float = 1.0) -> None:
        """`count` requests of this platform came back at `at` (epoch seconds), seen by a
        replica that sees `share` of all results."""
        if self._window_start is None:
            self._window_start = at
        self._count += count / share
        elapsed = at - self._window_start
        if elapsed >= WINDOW_SECONDS:
            measured = self._count / elapsed
            self.rate = measured if self.rate is None else 0.5 * self.rate + 0.5 * measured
            self._count, self._window_start = 0, at

    @property
    def limit(self) -> int:
        if self.rate is None:
            return self.ceiling
        wanted = int(self.rate * SHARE_OF_LEASE * self.lease_seconds)
        return max(min(self.floor, self.ceiling), min(self.ceiling, wanted))
