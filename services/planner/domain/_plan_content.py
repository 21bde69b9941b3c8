"""A content event turned into one planned slot per target."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts import (
    AudienceData,
    ContentSubmitted,
    Platform,
    PlannedTarget,
    PostContent,
    PostPlanned,
    TargetSpec,
    normalise_hashtags,
    post_id_for,
    target_id_for,
)

from ._context import AccountKey, ChosenTime, PlanningContext, PostedContent
from ._default_audiences import DEFAULT_AUDIENCES
from ._rejection import PlanningRejected
from ._schedule_choice import choose_time, reject_if_closed
from ._window import as_utc


def plan_content(event: ContentSubmitted, now: datetime, context: PlanningContext | None = None) -> PostPlanned:
    """Plan every target of `event`, or raise `PlanningRejected`.

    Ids derive from the upstream id, and targets in `context.planned` keep their slot, so
    planning the same event twice gives the same message. An event whose upstream id was
    planned for other platform accounts (`context.posts`), or with other content
    (`context.contents`), is refused as `upstream_id_reused` and books nothing: the queue keeps
    a post's targets and content as first planned. Without a context it plans like the
    original: the heuristic, no limits.
    """
    context = context or PlanningContext()
    now = as_utc(now, "now")
    post_id = post_id_for(event.upstream_id)
    keys = [(t.platform, t.account_id) for t in event.targets]
    target_ids = [target_id_for(post_id, platform, account_id) for platform, account_id in keys]
    before = context.posts.get(post_id)
    if before is None and any(t in context.planned for t in target_ids):  # a context without `posts`
        before = frozenset(k for k, t in zip(keys, target_ids) if t in context.planned)
    posted = _posted_content(event)
    if before is not None:
        reject_if_reused(event.upstream_id, before, keys)
        if post_id in context.contents:
            reject_if_edited(event.upstream_id, context.contents[post_id], posted)
    else:  # a replay of a plan is never stale
        reject_if_closed(event.schedule, now)
    chosen: list[ChosenTime] = []
    new: list[tuple[TargetSpec, uuid.UUID, ChosenTime]] = []
    for target, target_id in zip(event.targets, target_ids):
        time = context.planned.get(target_id)
        if time is None:
            time = choose_time(event, target, audience_for(event, target.platform), now, context)
            new.append((target, target_id, time))
        chosen.append(time)
    for target, target_id, time in new:  # once the whole event is planned: a rejection keeps none
        context.record((target.platform, target.account_id), target_id, time)
    context.posts[post_id] = frozenset(keys)
    context.contents[post_id] = posted
    return PostPlanned(
        message_id=uuid.uuid5(post_id, "planned"),
        post_id=post_id,
        upstream_id=event.upstream_id,
        content=posted.content,
        targets=[_planned_target(t, post_id, posted, c) for t, c in zip(event.targets, chosen)],
        planned_at=now,
    )


def reject_if_reused(upstream_id: str, planned: frozenset[AccountKey], targets: list[AccountKey]) -> None:
    """Raise `PlanningRejected` when `targets` are not the platform accounts `upstream_id` was
    planned for: the queue stores a post's targets once, so an added one would be booked and
    never posted, and a dropped one would still be posted."""
    added = [k for k in targets if k not in planned]
    dropped = sorted(planned - set(targets), key=_named)
    if not added and not dropped:
        return
    changes = [f"adds {_names(added)}"] if added else []
    changes += [f"drops {_names(dropped)}"] if dropped else []
    raise PlanningRejected(
        "upstream_id_reused",
        f"upstreamId {upstream_id!r} is already planned for {_names(sorted(planned, key=_named))}; "
        f"this event {' and '.join(changes)}. A planned post keeps the targets it was planned "
        f"for, so nothing of this event was planned: send other targets under a new upstreamId, "
        f"and cancel planned ones that should not go out (`autopost cancel {upstream_id}` "
        f"cancels the whole post).",
        [{"field": "targets", "type": "target_added", "target": _named(k),
          "message": f"{_named(k)} is not a target of the post planned for upstreamId {upstream_id!r}"}
         for k in added]
        + [{"field": "targets", "type": "target_removed", "target": _named(k),
            "message": f"{_named(k)} is a target of the post planned for upstreamId {upstream_id!r}"}
           for k in dropped],
    )


def reject_if_edited(upstream_id: str, planned: PostedContent, posted: PostedContent) -> None:
    """Raise `PlanningRejected` when the same targets come with other content: the queue stores
    a post once, so the edit would be dropped unseen. A redelivery of the same event (its
    window or audience may be recomputed) posts the same and passes."""
    changes = [(name, None) for name in _CONTENT_FIELDS
               if getattr(planned.content, name) != getattr(posted.content, name)]
    changes += [(name, key) for key, text in posted.texts.items()
                for name, before, now in zip(("caption", "hashtags"), planned.texts.get(key, text), text)
                if before != now]
    if not changes:
        return
    raise PlanningRejected(
        "upstream_id_reused",
        f"upstreamId {upstream_id!r} is already planned with other content; this event changes "
        f"{', '.join(_changed(name, key) for name, key in changes)}. A planned post keeps the content "
        f"it was planned with, so nothing of this event was planned: send an edit under a new "
        f"upstreamId, and cancel the planned post if it should not go out (`autopost cancel {upstream_id}`).",
        [{"field": _CONTENT_FIELDS[name] if key is None else "targets", "type": "content_changed",
          **({} if key is None else {"target": _named(key)}),
          "message": f"{_changed(name, key)} is not the one of the post planned for upstreamId {upstream_id!r}"}
         for name, key in changes],
    )


# PostContent's fields as the event names them
_CONTENT_FIELDS = {"content_type": "contentType", "media": "media", "caption": "caption", "hashtags": "hashtags"}


def _changed(name: str, key: AccountKey | None) -> str:
    what = _CONTENT_FIELDS[name]
    return what if key is None else f"the {what} for {_named(key)}"


def _posted_content(event: ContentSubmitted) -> PostedContent:
    """What the queue would keep of the event: its content and each target's own text."""
    content = PostContent(content_type=event.content_type, media=event.media, caption=event.caption,
                          hashtags=normalise_hashtags(event.hashtags))
    texts = {}
    for target in event.targets:
        # a target's own text replaces the event's; an empty caption or list counts as given
        caption = event.caption if target.caption is None else target.caption
        hashtags = event.hashtags if target.hashtags is None else target.hashtags
        texts[(target.platform, target.account_id)] = (caption, tuple(normalise_hashtags(hashtags)))
    return PostedContent(content, texts)


def _named(key: AccountKey) -> str:
    return f"{key[0].value}:{key[1]}"


def _names(keys: list[AccountKey]) -> str:
    return ", ".join(map(_named, keys))


def audience_for(event: ContentSubmitted, platform: Platform) -> AudienceData:
    """The event's audience, or the platform's default when it brings none."""
    return event.audience_data or DEFAULT_AUDIENCES[platform]


def _planned_target(
    target: TargetSpec, post_id: uuid.UUID, posted: PostedContent, chosen: ChosenTime
) -> PlannedTarget:
    caption, hashtags = posted.texts[(target.platform, target.account_id)]
    return PlannedTarget(
        target_id=target_id_for(post_id, target.platform, target.account_id),
        platform=target.platform,
        account_id=target.account_id,
        caption=caption,
        hashtags=list(hashtags),
        scheduled_time=chosen.scheduled_time,
        expected_engagement=chosen.expected_engagement,
        strategy=chosen.strategy,
    )
