"""Messages between the queue and the actors it drives."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any, ClassVar

from pydantic import AwareDatetime, Field

from ._base import Message, WireModel
from ._common import AccountId, ContentType, MediaRef, Platform
from ._engagement import EngagementFigures
from ._topics import Topics


class PlannedTarget(WireModel):
    target_id: uuid.UUID
    platform: Platform
    account_id: AccountId
    caption: str
    hashtags: list[str] = Field(default_factory=list)
    scheduled_time: AwareDatetime
    expected_engagement: float = Field(ge=0)
    strategy: str


class PostContent(WireModel):
    content_type: ContentType
    media: list[MediaRef] = Field(min_length=1)
    caption: str = ""
    hashtags: list[str] = Field(default_factory=list)


class PostPlanned(Message):
    """A content event turned into one slot per target; keyed by post id."""

    TOPIC: ClassVar[str] = Topics.POST_PLANNED

    message_id: uuid.UUID
    post_id: uuid.UUID
    upstream_id: str
    content: PostContent
    targets: list[PlannedTarget] = Field(min_length=1)
    planned_at: AwareDatetime


class RemoteHandle(WireModel):
    """What the platform gave back to find this target again (publish id, container, video)."""

    kind: str
    id: str
    extra: dict[str, Any] = Field(default_factory=dict)
    # until when the platform gives the post's figures (an Instagram story's 24 hours): the
    # queue makes its last engagement collection before then
    figures_until: AwareDatetime | None = None


class ErrorClass(str, Enum):
    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"
    AUTH = "auth"
    PERMANENT = "permanent"


# The code of a failure only a person can settle: the platform may have the post and cannot be
# asked (a TikTok pull init whose answer was lost). Checked and not there: `autopost retry`.
NEEDS_REVIEW = "needs_review"
# The handle of a post an operator found on the platform (`autopost found`): its id is the
# post's public address, all that is known of it. Only a platform that finds a post by its
# address can read its engagement from that (TikTok's Display API takes the id in the URL).
FOUND_HANDLE_KIND = "operator.found"
FINDS_POSTS_BY_ADDRESS = frozenset({Platform.TIKTOK})


class PublishError(WireModel):
    error_class: ErrorClass
    code: str
    message: str
    retry_after_sec: float | None = Field(default=None, ge=0)
    # the platform is still preparing what it was given (an Instagram container): look again
    # after `retry_after_sec`, spending no attempt. Absent means false, and a queue that predates
    # the field treats it as an ordinary retryable failure.
    pending: bool | None = None


class PublishRequested(Message):
    """Publish one target now; keyed by account id so one account stays on one partition."""

    message_id: uuid.UUID
    target_id: uuid.UUID
    post_id: uuid.UUID
    platform: Platform
    account_id: AccountId
    attempt: int = Field(ge=1)
    content_type: ContentType
    caption: str
    hashtags: list[str] = Field(default_factory=list)
    media: list[MediaRef] = Field(min_length=1)
    scheduled_time: AwareDatetime
    remote_handle: RemoteHandle | None = None

    @staticmethod
    def topic_for(platform: Platform) -> str:
        return Topics.publish_requested(platform)


class PublishOutcome(str, Enum):
    ACCEPTED = "accepted"  # the platform took it and is processing
    PUBLISHED = "published"  # live, with its URL
    FAILED = "failed"


class PublishResult(Message):
    TOPIC: ClassVar[str] = Topics.PUBLISH_RESULT

    message_id: uuid.UUID
    target_id: uuid.UUID
    attempt: int = Field(ge=1)
    outcome: PublishOutcome
    remote_handle: RemoteHandle | None = None
    url: str | None = None
    error: PublishError | None = None
    occurred_at: AwareDatetime


class StatusCheck(str, Enum):
    STATUS = "status"  # how is processing going (an accepted target)
    ENGAGEMENT = "engagement"  # what engagement has a posted target earned at `ageSeconds`


class StatusRequested(Message):
    """Look at a target on its platform; keyed by account id.

    `check` says what to fetch: the processing status of an accepted target, or the engagement
    of a posted one at the age `ageSeconds` (then `url`, the live URL, comes along too).
    """

    message_id: uuid.UUID
    target_id: uuid.UUID
    platform: Platform
    account_id: AccountId
    attempt: int = Field(ge=1)
    check: StatusCheck = StatusCheck.STATUS
    remote_handle: RemoteHandle
    url: str | None = None
    age_seconds: float | None = Field(default=None, gt=0)
    # the queue asks again at this time (the check's lease): a request read only later is
    # stale, its successor is on the way, and the poller skips it
    expires_at: AwareDatetime | None = None

    @staticmethod
    def topic_for(platform: Platform) -> str:
        return Topics.status_requested(platform)


class ObservedState(str, Enum):
    PROCESSING = "processing"
    PUBLISHED = "published"
    FAILED = "failed"


class StatusObserved(Message):
    TOPIC: ClassVar[str] = Topics.STATUS_OBSERVED

    message_id: uuid.UUID
    target_id: uuid.UUID
    attempt: int = Field(ge=1)
    state: ObservedState
    url: str | None = None
    error: PublishError | None = None
    detail: str | None = None
    observed_at: AwareDatetime
    # an engagement check answers with the figures (or `error` when they could not be read)
    check: StatusCheck = StatusCheck.STATUS
    age_seconds: float | None = Field(default=None, gt=0)
    engagement: EngagementFigures | None = None


class DeadLetter(Message):
    """A message a consumer could not process, kept whole for an operator to replay.

    One too large to carry whole within the broker's message limit is `truncated`: its payload
    is the first part only (`payloadBytes` is the whole), and it is replayed from its source
    position, while the source topic still holds it. `payloadSha256` (hex) is the SHA-256 of the
    whole record value, taken before any cut: it tells two records apart whose kept parts are
    the same, and whether the record now at the source position is this one. Letters from
    producers older than it have none."""

    TOPIC: ClassVar[str] = Topics.DEAD_LETTER

    reason: str
    message: str
    consumer: str
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    key_base64: str | None = None
    payload_base64: str
    headers: dict[str, str] = Field(default_factory=dict)
    failed_at: AwareDatetime
    payload_bytes: int | None = None
    truncated: bool = False
    payload_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


