"""content.submitted in, post.planned or content.rejected out, one per event, in its trace;
engagement.observed and slot.changed in, the planner's store updated.

A batch of events is planned in one transaction: the accounts and posts it touches are locked
(so two replicas never plan one account, or one post, at once), what is already planned for
them is read, their readings are refreshed where stale, every event is planned, and the new
slots are stored. An event reusing a planned post's upstream id for other accounts, or with
other content, is rejected (`upstream_id_reused`): the queue stores a post's targets and
content once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import asyncpg
from opentelemetry import trace

from contracts import (
    ContentRejected,
    ContentSubmitted,
    ContractError,
    EngagementObserved,
    SlotChanged,
    Topics,
)
from services.runtime import (
    Outgoing,
    Record,
    ServiceContext,
    context_from,
    current_carrier,
    dead_letter_for,
    metrics,
)
from services.validation import content_problems, rejection_for

from . import store
from .domain import (
    AccountKey,
    PlanningContext,
    PlanningRejected,
    audience_for,
    engagement_rate,
    local_hour_of_week,
    plan_content,
    zone_named,
)
from .options import limits_for, strategy_for
from .readings_cache import ReadingsCache

log = logging.getLogger("autopost.planner")

# Slots this far behind the batch's clock still count for spacing and daily caps.
CALENDAR_LOOKBACK = timedelta(days=2)


class PlannerHandlers:
    def __init__(self, ctx: ServiceContext, pool: asyncpg.Pool,
                 clock: Callable[[], datetime] | None = None):
        self.ctx = ctx
        self.pool = pool
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        settings = ctx.settings.planner
        self.strategy = strategy_for(settings)
        self.limits = limits_for(settings)
        self.readings = ReadingsCache(settings.refresh_seconds)
        self.readings_span = timedelta(days=settings.readings_days)

    # -- content.submitted -------------------------------------------------------------------

    @metrics.timed("plan")
    async def submitted(self, records: list[Record]) -> None:
        now = self.clock()
        decoded = {id(r): _decode(r) for r in records}
        events = [e for e in decoded.values() if isinstance(e, ContentSubmitted)]
        keys = {(t.platform, t.account_id) for e in events for t in e.targets}
        async with self.pool.acquire() as conn, conn.transaction():
            post_ids = {e.post_id for e in events}
            await store.lock_accounts(conn, keys, post_ids)
            # read under the locks: a post another replica plans is seen whole, or not at all
            planned = await store.planned_posts(conn, post_ids)
            context = PlanningContext(
                strategy=self.strategy, limits=self.limits,
                calendars=await store.calendars(conn, keys, now - CALENDAR_LOOKBACK),
                planned=planned.slots, posts=planned.targets,
                contents=await store.planned_contents(conn, planned.targets),
            )
            stale = self.readings.stale(keys)
            if stale:
                self.readings.store(await store.readings(conn, stale, now - self.readings_span))
            context.readings = self.readings.view(keys)
            outgoing, slots = [], []
            for record in records:
                message, new = self._plan_one(record, decoded[id(record)], now, context)
                outgoing.append(message)
                slots.extend(new)
            await store.insert_slots(conn, slots)
            planned_topic = self.ctx.topic(Topics.POST_PLANNED)
            sent = [m for m in outgoing if m.topic == planned_topic]
            # with its slots, the planner's own record of what each post posts (planning put it
            # in the context): the next event of its upstream id is checked against it, whatever
            # the queue did with the post
            planned_ids = [uuid.UUID(m.key) for m in sent]
            await store.record_contents(conn, {p: context.contents[p] for p in planned_ids})
            # kept until the queue has the post: a broker that loses it does not lose the post
            await store.remember_sent(conn, [
                (p, m.topic, m.value, m.headers) for p, m in zip(planned_ids, sent)
            ], resend_at=now + timedelta(seconds=self.ctx.settings.planner.resend_after_seconds))
        await self.ctx.send(outgoing)

    def _plan_one(
        self, record: Record, decoded: ContentSubmitted | ContractError, now: datetime,
        context: PlanningContext,
    ) -> tuple[Outgoing, list[store.PlannedSlot]]:
        with self.ctx.tracer.start_as_current_span(
            "plan content", context=context_from(record.headers), kind=trace.SpanKind.CONSUMER
        ) as span:
            try:
                if isinstance(decoded, ContractError):
                    raise decoded
                event = decoded
                span.set_attribute("autopost.upstream_id", event.upstream_id)
                if problems := content_problems(event):  # every platform's rules, before queueing
                    return self._rejected(record, rejection_for(problems), event.upstream_id, now), []
                known = set(context.planned)
                planned = plan_content(event, now, context)
            except ContractError as error:
                return self._rejected(record, error, None, now), []
            except PlanningRejected as rejection:
                error = ContractError(rejection.reason, rejection.message, rejection.details)
                return self._rejected(record, error, event.upstream_id, now), []
            except Exception as exc:  # a bug, not bad input: keep the event for a replay
                log.exception("planning failed for %s/%s@%s", record.topic, record.partition, record.offset)
                span.record_exception(exc)
                return dead_letter_for(
                    record, reason="internal_error", message=repr(exc), consumer="planner",
                    topic=self.ctx.topic(Topics.DEAD_LETTER),
                ), []
            span.set_attribute("autopost.post_id", str(planned.post_id))
            span.set_attribute("autopost.targets", len(planned.targets))
            span.set_attribute("autopost.strategy", sorted({t.strategy for t in planned.targets}))
            new = [
                store.PlannedSlot(
                    t.target_id, planned.post_id, t.platform, t.account_id, event.content_type,
                    audience_for(event, t.platform).timezone, t.scheduled_time, t.expected_engagement,
                    t.strategy)
                for t in planned.targets if t.target_id not in known
            ]
            return Outgoing.of(
                self.ctx.topic(Topics.POST_PLANNED), planned.post_id, planned, current_carrier()
            ), new

    def _rejected(
        self, record: Record, error: ContractError, upstream_id: str | None, now: datetime
    ) -> Outgoing:
        span = trace.get_current_span()
        span.set_status(trace.Status(trace.StatusCode.ERROR, error.reason))
        span.set_attribute("autopost.rejection", error.reason)
        metrics.CONTENT_REJECTED.labels(error.reason).inc()
        log.info("rejected %s/%s@%s: %s", record.topic, record.partition, record.offset, error)
        key = upstream_id or (record.key.decode("utf-8", "replace") if record.key else "")
        rejection = ContentRejected.of(
            error, record.value, record.topic, headers=record.headers, upstream_id=upstream_id, now=now
        )
        return Outgoing.of(self.ctx.topic(Topics.CONTENT_REJECTED), key, rejection, current_carrier())

    # -- engagement.observed -----------------------------------------------------------------

    async def engagement(self, records: list[Record]) -> None:
        """Store what posts earned (once per message id) and drop the accounts' stale readings."""
        observed, rejected = self.ctx.decode_all(records, EngagementObserved, "planner.engagement")
        learnt: set[AccountKey] = set()
        if observed:
            async with self.pool.acquire() as conn, conn.transaction():
                zones = await store.slot_zones(conn, [o.target_id for o in observed])
                rows = [_observation_row(o, zones.get(o.target_id)) for o in observed]
                learnt = await store.record_observations(conn, rows)
        self.readings.forget(learnt)
        await self.ctx.send(rejected)

    # -- slot.changed -------------------------------------------------------------------------

    async def slots(self, records: list[Record]) -> None:
        """Slots the queue gave up or moved: spacing and daily caps count what is still held."""
        changes, rejected = self.ctx.decode_all(records, SlotChanged, "planner.slots")
        if changes:
            async with self.pool.acquire() as conn:
                await store.apply_slot_changes(conn, changes)
        await self.ctx.send(rejected)


def _decode(record: Record) -> ContentSubmitted | ContractError:
    try:
        return ContentSubmitted.from_bytes(record.value)
    except ContractError as error:
        return error


def _observation_row(observed: EngagementObserved, zone: str | None) -> store.ObservationRow:
    # a target the planner has no slot for (planned before it kept them) is read in UTC
    figures = observed.figures
    published = observed.published_at
    how = local_hour_of_week(published.timestamp(), zone_named(zone or "UTC"))
    return store.ObservationRow(
        message_id=observed.message_id, target_id=observed.target_id, platform=observed.platform,
        account_id=observed.account_id, content_type=observed.content_type, hour_of_week=how,
        published_at=published, age_seconds=observed.age_seconds, final=observed.final,
        views=figures.views, interactions=figures.interactions, audience_size=figures.audience_size,
        rate=engagement_rate(figures), expected_engagement=observed.expected_engagement,
        strategy=observed.strategy, observed_at=observed.observed_at,
    )
