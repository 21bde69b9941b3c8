"""The engagement collections of a posted target, as the queue's engagement tests build them: the
clock, the collection ages and cadence, a posted target and an engagement read of it.

Not a test module: imported as `engagement_reads` (the test's folder is on sys.path).
"""

import uuid
from datetime import datetime, timedelta, timezone

from contracts import EngagementFigures, ObservedState, PublishError, RemoteHandle, StatusCheck, StatusObserved
from services.queue.domain import EngagementCadence, TargetState, TargetStatus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
AGES = (3600.0, 86_400.0)
CADENCE = EngagementCadence(AGES, lease_seconds=120, retry_seconds=60)
HANDLE = RemoteHandle(kind="tiktok.publish_id", id="v_pub_url~1").to_wire()
FIGURES = EngagementFigures(views=900, likes=40, comments=3, shares=2, audience_size=1200)


def posted(checks: int = 0, published: datetime = NOW, *, handle: dict = HANDLE,
           url: str | None = "https://www.tiktok.com/@a/video/71") -> TargetState:
    """Posted at `published`, `checks` collections done: its timer on the next one (none after the last)."""
    due = published + timedelta(seconds=AGES[checks]) if checks < len(AGES) else None
    return TargetState(target_id=uuid.uuid4(), status=TargetStatus.POSTED, version=5, attempt=1,
                       due_at=due, remote_handle=handle, url=url,
                       published_at=published, engagement_checks=checks)


def observed(state: TargetState, age: float, figures: EngagementFigures | None = None,
             error: PublishError | None = None, *, url: str | None = None) -> StatusObserved:
    """The read of `state`'s collection at `age` seconds after publishing."""
    return StatusObserved(message_id=uuid.uuid4(), target_id=state.target_id, attempt=1,
                          state=ObservedState.PUBLISHED, url=url, observed_at=NOW, check=StatusCheck.ENGAGEMENT,
                          age_seconds=age, engagement=figures, error=error)
