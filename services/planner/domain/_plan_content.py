"""A content event turned into one planned slot per target."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts import (
    ContentSubmitted,
    PlannedTarget,
    PostContent,
    PostPlanned,
    TargetSpec,
    normalise_hashtags,
    post_id_for,
    target_id_for,
)

from ._default_audiences import DEFAULT_AUDIENCES
from ._schedule_choice import ChosenTime, choose_time, reject_if_closed
from ._window import as_utc


def plan_content(event: ContentSubmitted, now: datetime) -> PostPlanned:
    """Plan every target of `event`, or raise `PlanningRejected`.

    Ids derive from the upstream id, so planning the same event twice gives the same message.
    """
    now = as_utc(now, "now")
    reject_if_closed(event.schedule, now)
    post_id = post_id_for(event.upstream_id)
    # Targets sharing an audience share a time: work it out once per audience.
    times_by_audience: dict[int, ChosenTime] = {}
    targets = []
    for target in event.targets:
        audience = event.audience_data or DEFAULT_AUDIENCES[target.platform]
        chosen = times_by_audience.get(id(audience))
        if chosen is None:
            chosen = times_by_audience[id(audience)] = choose_time(
                event, target.platform, audience, now
            )
        targets.append(_planned_target(event, target, post_id, chosen))
    return PostPlanned(
        message_id=uuid.uuid5(post_id, "planned"),
        post_id=post_id,
        upstream_id=event.upstream_id,
        content=PostContent(
            content_type=event.content_type,
            media=event.media,
            caption=event.caption,
            hashtags=normalise_hashtags(event.hashtags),
        ),
        targets=targets,
        planned_at=now,
    )


def _planned_target(
    event: ContentSubmitted, target: TargetSpec, post_id: uuid.UUID, chosen: ChosenTime
) -> PlannedTarget:
    # A target's own text replaces the event's; an empty caption or list counts as given.
    caption = event.caption if target.caption is None else target.caption
    hashtags = event.hashtags if target.hashtags is None else target.hashtags
    return PlannedTarget(
        target_id=target_id_for(post_id, target.platform, target.account_id),
        platform=target.platform,
        account_id=target.account_id,
        caption=caption,
        hashtags=normalise_hashtags(hashtags),
        scheduled_time=chosen.scheduled_time,
        expected_engagement=chosen.expected_engagement,
        strategy=chosen.strategy,
    )
