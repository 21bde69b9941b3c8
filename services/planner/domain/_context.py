"""What planning one batch of events knows beyond the events: strategy, rules, the record."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from contracts import Platform, PostContent, PostPlanned

from ._estimate import Reading
from ._rules import UNLIMITED, PlatformLimits
from ._strategies import HeuristicStrategy, Strategy

AccountKey = tuple[Platform, str]  # (platform, account id)
PLANNING_HORIZON_DAYS = 7


@dataclass(frozen=True, slots=True)
class ChosenTime:
    scheduled_time: datetime
    expected_engagement: float
    strategy: str


@dataclass(frozen=True, slots=True)
class PostedContent:
    """What a post was first planned to post (what the queue keeps of it): its content, each
    target's text. The planner keeps it too (`planner_post_contents`), to refuse an edit."""

    content: PostContent
    texts: Mapping[AccountKey, tuple[str, tuple[str, ...]]]  # (caption, hashtags) per target

    @classmethod
    def of(cls, planned: PostPlanned) -> PostedContent:
        return cls(planned.content, {(t.platform, t.account_id): (t.caption, tuple(t.hashtags))
                                     for t in planned.targets})


@dataclass(frozen=True, slots=True)
class AccountReadings:
    """An account's engagement readings; `key` changes whenever they do."""

    readings: Sequence[Reading]
    key: Hashable


@dataclass
class PlanningContext:
    """Defaults plan like the original: the heuristic, no limits, nothing planned before.

    `calendars` holds the slots already planned per platform account (UTC epoch seconds,
    sorted), `planned` the targets planned before (a replayed event gets the very same
    slots), `posts` the platform accounts each post was planned for (an event reusing its
    upstream id with other targets is refused), `contents` what each was planned to post (one
    with other content is refused too); planning adds each new slot and post to them, so the
    next event of the batch sees it.
    """

    strategy: Strategy = field(default_factory=HeuristicStrategy)
    limits: Mapping[Platform, PlatformLimits] = field(default_factory=lambda: UNLIMITED)
    calendars: dict[AccountKey, list[float]] = field(default_factory=dict)
    readings: Mapping[AccountKey, AccountReadings] = field(default_factory=dict)
    planned: dict[uuid.UUID, ChosenTime] = field(default_factory=dict)
    posts: dict[uuid.UUID, frozenset[AccountKey]] = field(default_factory=dict)
    contents: dict[uuid.UUID, PostedContent] = field(default_factory=dict)
    horizon_days: float = PLANNING_HORIZON_DAYS

    def calendar(self, key: AccountKey) -> list[float]:
        return self.calendars.get(key, [])

    def record(self, key: AccountKey, target_id: uuid.UUID, time: ChosenTime) -> None:
        bisect.insort(self.calendars.setdefault(key, []), time.scheduled_time.timestamp())
        self.planned[target_id] = time
