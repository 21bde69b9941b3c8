"""What upstream systems send, and what comes back when it cannot be taken."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import ClassVar

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from ._base import ContractError, Message, WireModel
from ._common import AccountId, ContentType, Hashtag, MediaRef, Platform
from ._schedule import (
    AsSoonAsPossible,
    AudienceData,
    Blackout,
    HistoricalPerformance,
    ScheduleRequest,
)
from ._topics import Topics

# Ids derived from the upstream id make every replay of one event land on the same rows.
POST_NAMESPACE = uuid.UUID("5b0c1f3e-7a52-4c61-9a3e-0d6f2b8e4a11")


def post_id_for(upstream_id: str) -> uuid.UUID:
    return uuid.uuid5(POST_NAMESPACE, upstream_id)


def target_id_for(post_id: uuid.UUID, platform: Platform, account_id: str) -> uuid.UUID:
    return uuid.uuid5(post_id, f"{platform.value}:{account_id}")


class TargetSpec(WireModel):
    """One place to post: a platform account, with optional per-platform text."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform
    account_id: AccountId
    caption: str | None = Field(default=None, max_length=10_000)
    hashtags: list[Hashtag] | None = Field(default=None, max_length=100)


class ContentSubmitted(Message):
    """An upstream content event; `upstreamId` is its idempotency key."""

    TOPIC: ClassVar[str] = Topics.CONTENT_SUBMITTED
    model_config = ConfigDict(extra="forbid")

    upstream_id: str = Field(min_length=1, max_length=200)
    targets: list[TargetSpec] = Field(min_length=1, max_length=50)
    media: list[MediaRef] = Field(min_length=1, max_length=35)
    caption: str = Field(default="", max_length=10_000)
    hashtags: list[Hashtag] = Field(default_factory=list, max_length=100)
    content_type: ContentType
    schedule: ScheduleRequest = Field(default_factory=AsSoonAsPossible)
    audience_data: AudienceData | None = None
    historical_performance: HistoricalPerformance | None = None
    # times the planner must not choose (optimal and asap); an `at` time is kept as asked
    blackouts: list[Blackout] = Field(default_factory=list, max_length=100)
    submitted_at: AwareDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        """Postgres stores no NUL (U+0000) in text or JSON: refused here, with where it is,
        rather than planned and then unstorable in the queue."""
        if (where := _nul_at(data, "")) is not None:
            raise ValueError(f"{where or 'the event'} contains a NUL character (U+0000)")
        return data

    @model_validator(mode="after")
    def _distinct_targets(self) -> "ContentSubmitted":
        seen: set[tuple[Platform, str]] = set()
        for target in self.targets:
            key = (target.platform, target.account_id)
            if key in seen:
                raise ValueError(f"target {target.platform.value}:{target.account_id} is listed twice")
            seen.add(key)
        return self

    @property
    def post_id(self) -> uuid.UUID:
        return post_id_for(self.upstream_id)


def _nul_at(value: object, path: str) -> str | None:
    """The path of the first string holding U+0000 in decoded JSON (keys too), else None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            if (found := _nul_at(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _nul_at(item, f"{path}[{index}]")) is not None:
                return found
    return None


class FieldProblem(WireModel):
    field: str
    type: str
    message: str
    target: str | None = None  # `platform:accountId` when the problem is one target's


class ContentRejected(Message):
    """An event that was not taken, with a reason code and the original bytes."""

    TOPIC: ClassVar[str] = Topics.CONTENT_REJECTED

    reason: str
    message: str
    details: list[FieldProblem] = Field(default_factory=list)
    upstream_id: str | None = None
    source_topic: str
    payload_base64: str
    headers: dict[str, str] = Field(default_factory=dict)
    rejected_at: AwareDatetime

    @classmethod
    def of(
        cls,
        error: ContractError,
        payload: bytes,
        source_topic: str,
        headers: dict[str, str] | None = None,
        upstream_id: str | None = None,
        now: datetime | None = None,
    ) -> "ContentRejected":
        return cls(
            reason=error.reason,
            message=error.message,
            details=[FieldProblem(**d) for d in error.details],
            upstream_id=upstream_id,
            source_topic=source_topic,
            payload_base64=base64.b64encode(payload).decode(),
            headers=headers or {},
            rejected_at=now or datetime.now(timezone.utc),
        )

    def payload(self) -> bytes:
        return base64.b64decode(self.payload_base64)


