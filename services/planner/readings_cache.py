"""Each account's readings as last read from Postgres, kept in the planner process.

Planning an event needs the account's readings; reading them for every event would cost a
query each. They are read once per consumed batch for the accounts whose copy is missing or
older than `refresh_seconds`; engagement this replica consumes drops the copy at once, other
replicas' after at most `refresh_seconds`.

The copies are bounded by an estimate of their bytes, not by a count of accounts: an account
has up to `readings_days` (182) of readings, and each costs about 185 bytes here (the
`Reading`, its floats, its place in the tuple), so one account posting 10 times a day holds
about 340 kB, one that never posted about 500 bytes. The accounts used least recently go
first; those of the batch being planned (asked about in `stale`, or just stored) stay even
over the budget, so it is exceeded by at most one batch's readings.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from .domain import AccountKey, AccountReadings, Reading

READING_BYTES = 185  # measured (tracemalloc): a Reading of 3-4 floats, and its tuple slot
ACCOUNT_BYTES = 500  # an entry beyond its readings: key, AccountReadings, tuple, node


def readings_bytes(readings: Sequence[Reading]) -> int:
    """What an account's copy is counted as."""
    return ACCOUNT_BYTES + READING_BYTES * len(readings)


class ReadingsCache:
    # 48 MiB: about 270,000 readings, with the estimates' 32 MiB (LearnedStrategy.cache_bytes)
    # inside the planner pod's 256 MiB; an account missing costs only a place in its batch's
    # one query
    def __init__(self, refresh_seconds: float, *, max_bytes: int = 48 * 2 ** 20,
                 max_accounts: int = 20_000, clock: Callable[[], float] = time.monotonic):
        self.refresh_seconds = refresh_seconds
        self.max_bytes = max_bytes
        self.max_accounts = max_accounts
        self.clock = clock
        self.bytes = 0
        # key → (readings, when loaded, bytes counted)
        self._entries: OrderedDict[AccountKey, tuple[AccountReadings, float, int]] = OrderedDict()
        self._versions = itertools.count(1)  # a new key per load: estimates built on the old one go
        self._in_use: set[AccountKey] = set()  # the batch's accounts held already (`stale`)

    def __len__(self) -> int:
        return len(self._entries)

    def stale(self, keys: Iterable[AccountKey]) -> set[AccountKey]:
        """The accounts to read again; the others are marked used, so storing the stale ones
        does not push them out before the batch is planned."""
        oldest = self.clock() - self.refresh_seconds
        found: set[AccountKey] = set()
        self._in_use = set()
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or entry[1] < oldest:
                found.add(key)
            else:
                self._entries.move_to_end(key)
                self._in_use.add(key)
        return found

    def store(self, found: Mapping[AccountKey, Sequence[Reading]]) -> None:
        loaded = self.clock()
        for key, readings in found.items():
            readings = tuple(readings)
            size = readings_bytes(readings)
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.bytes -= previous[2]
            self._entries[key] = (AccountReadings(readings, next(self._versions)), loaded, size)
            self.bytes += size
        keep = self._in_use | found.keys()
        while self._entries and (self.bytes > self.max_bytes or len(self._entries) > self.max_accounts):
            oldest = next(iter(self._entries))
            if oldest in keep:  # the rest is this batch's too: used or stored last
                break
            self.bytes -= self._entries.popitem(last=False)[1][2]
        self._in_use = set()

    def view(self, keys: Iterable[AccountKey]) -> dict[AccountKey, AccountReadings]:
        return {k: self._entries[k][0] for k in keys if k in self._entries}

    def forget(self, keys: Iterable[AccountKey]) -> None:
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.bytes -= entry[2]
