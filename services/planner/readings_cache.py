"""Each account's readings as last read from Postgres, kept in the planner process.

Planning an event needs the account's readings; reading them for every event would cost a
query each. They are read once per consumed batch for the accounts whose copy is missing or
older than `refresh_seconds`; engagement this replica consumes drops the copy at once, other
replicas' after at most `refresh_seconds`.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from .domain import AccountKey, AccountReadings, Reading


class ReadingsCache:
    # the accounts planned most recently: an entry is a few hundred bytes even when empty, and
    # one missing costs only a place in its batch's one query
    def __init__(self, refresh_seconds: float, *, max_accounts: int = 20_000,
                 clock: Callable[[], float] = time.monotonic):
        self.refresh_seconds = refresh_seconds
        self.max_accounts = max_accounts
        self.clock = clock
        self._entries: OrderedDict[AccountKey, tuple[AccountReadings, float]] = OrderedDict()
        self._versions = itertools.count(1)  # a new key per load: estimates built on the old one go

    def stale(self, keys: Iterable[AccountKey]) -> set[AccountKey]:
        oldest = self.clock() - self.refresh_seconds
        return {k for k in keys if k not in self._entries or self._entries[k][1] < oldest}

    def store(self, found: Mapping[AccountKey, Sequence[Reading]]) -> None:
        loaded = self.clock()
        for key, readings in found.items():
            self._entries[key] = (AccountReadings(tuple(readings), next(self._versions)), loaded)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_accounts:
            self._entries.popitem(last=False)

    def view(self, keys: Iterable[AccountKey]) -> dict[AccountKey, AccountReadings]:
        return {k: self._entries[k][0] for k in keys if k in self._entries}

    def forget(self, keys: Iterable[AccountKey]) -> None:
        for key in keys:
            self._entries.pop(key, None)
