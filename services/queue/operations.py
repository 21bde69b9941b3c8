"""The queue's use cases, each one transaction: the original addToQueue, getNextBatch and
updateStatus, over Postgres, with the outbox written in the same transaction."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import asyncpg
from opentelemetry import trace

from contracts import PostPlanned, PublishResult, StatusObserved
from services.runtime import Outgoing, QueueSettings, context_from, current_carrier, metrics, trace_id_of

from . import repository as repo
from . import stats
from .domain import Change, Emit, RetryPolicy, StatusCadence, on_due, on_publish_result, on_status_observed
from .messages import request_for

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A result or observation with the trace context it arrived with."""

    event: PublishResult | StatusObserved
    carrier: dict[str, str]


class QueueOperations:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: QueueSettings,
        tracer: trace.Tracer,
        topic: Callable[[str], str],
        *,
        policy: RetryPolicy | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ):
        self.pool = pool
        self.settings = settings
        self.tracer = tracer
        self.topic = topic
        self.policy = policy or RetryPolicy()
        self.cadence = StatusCadence(settings.status_first_check_seconds, settings.status_max_interval_seconds)
        self.clock = clock
        self.rng = rng or random.Random()

    @metrics.timed("store")
    async def add_to_queue(self, planned: Sequence[tuple[PostPlanned, dict[str, str]]]) -> int:
        """Store planned posts (idempotent by post id); returns how many targets were new."""
        unique = {p.post_id: (p, c) for p, c in planned}
        async with self.pool.acquire() as conn, conn.transaction():
            added = await repo.insert_planned(
                conn, [p for p, _ in unique.values()], [c for _, c in unique.values()]
            )
            if added:
                await repo.notify_due(conn)
        return added

    @metrics.timed("dispatch")
    async def get_next_batch(self, limit: int) -> int:
        """Claim due targets, move each on, and queue what that sends; returns how many."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await repo.claim_due(conn, now, limit)
            changes: list[tuple[int, Change]] = []
            outgoing: list[Outgoing] = []
            for due in claimed:
                change = on_due(due.state, now, lease_seconds=self.settings.lease_seconds, cadence=self.cadence)
                if change is None:
                    continue
                changes.append((due.state.version, change))
                if change.emit is Emit.PUBLISH:
                    metrics.DISPATCH_LATENESS.labels(due.platform).observe((now - due.state.due_at).total_seconds())
                if change.emit is not None:
                    outgoing.append(self._traced_request(due, change))
            await repo.save_changes(conn, changes)
            await repo.write_outbox(conn, outgoing)
        return len(claimed)

    def _traced_request(self, due: repo.DueTarget, change: Change) -> Outgoing:
        topic, key, message = request_for(due, change.state, change.emit)
        # Hours may have passed since the post was planned: continue its trace from the stored context.
        with self.tracer.start_as_current_span(
            f"dispatch {change.emit.value}",
            context=context_from(due.trace_context),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "autopost.target_id": str(due.state.target_id),
                "autopost.platform": due.platform,
                "autopost.attempt": change.state.attempt,
            },
        ):
            return Outgoing.of(self.topic(topic), key, message, current_carrier())

    @metrics.timed("apply")
    async def update_status(self, consumer: str, incoming: Sequence[Incoming]) -> int:
        """Apply publish results and status observations; returns how many moved a target."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await repo.first_sightings(conn, consumer, [i.event.message_id for i in incoming])
            todo = [i for i in incoming if i.event.message_id in fresh]
            locked = await repo.lock_targets(conn, [i.event.target_id for i in todo])
            states = {tid: state for tid, (state, _) in locked.items()}
            expected = {tid: state.version for tid, state in states.items()}
            attempts: list[tuple] = []
            for item in todo:
                state = states.get(item.event.target_id)
                if state is None:
                    continue
                change = self._decide(state, item.event, now)
                if change is None:
                    continue
                states[state.target_id] = change.state
                if change.attempt_outcome:
                    attempts.append(_attempt_row(change, item))
            changed = [(expected[tid], Change(s)) for tid, s in states.items() if s.version != expected[tid]]
            await repo.save_changes(conn, changed)
            await repo.record_attempts(conn, attempts)
            if changed:
                await repo.notify_due(conn)
            moved = await stats.transitions(conn, [c.state for _, c in changed
                                                   if c.state.status is not locked[c.state.target_id][0].status])
        stats.record_transitions(moved)
        return len(changed)

    def _decide(self, state, event, now) -> Change | None:
        if isinstance(event, PublishResult):
            return on_publish_result(state, event, now, policy=self.policy, cadence=self.cadence, rng=self.rng)
        return on_status_observed(state, event, now, policy=self.policy, cadence=self.cadence, rng=self.rng)


def _attempt_row(change: Change, item: Incoming) -> tuple:
    error = change.error or {}
    return (
        change.state.target_id,
        change.state.attempt,
        change.attempt_outcome,
        error.get("errorClass"),
        error.get("code"),
        error.get("message"),
        trace_id_of(item.carrier),
    )
