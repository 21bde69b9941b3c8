"""What a posted target earned: figures read from the platform, passed on to the planner."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime, Field

from ._base import Message, WireModel
from ._common import AccountId, ContentType, Platform
from ._topics import Topics


class EngagementFigures(WireModel):
    """What a platform reports of one post, and the size of the audience it was shown to."""

    views: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    saves: int | None = Field(default=None, ge=0)
    # followers (TikTok, Instagram) or subscribers (YouTube) when the figures were read
    audience_size: int | None = Field(default=None, ge=0)

    @property
    def interactions(self) -> int:
        return sum(v or 0 for v in (self.likes, self.comments, self.shares, self.saves))


class EngagementObserved(Message):
    """The engagement of one posted target at one age; keyed by account id (queue -> planner).

    `ageSeconds` is the age the collection was scheduled for (the measured age is
    `observedAt - publishedAt`); `final` marks the target's last collection.
    `expectedEngagement` and `strategy` are what the planner said when it chose the slot.
    """

    TOPIC: ClassVar[str] = Topics.ENGAGEMENT_OBSERVED

    message_id: uuid.UUID
    target_id: uuid.UUID
    post_id: uuid.UUID
    platform: Platform
    account_id: AccountId
    content_type: ContentType
    scheduled_time: AwareDatetime
    published_at: AwareDatetime
    age_seconds: float = Field(gt=0)
    final: bool
    figures: EngagementFigures
    expected_engagement: float = Field(ge=0)
    strategy: str
    observed_at: AwareDatetime
