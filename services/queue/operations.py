"""The queue's use cases, each one transaction: the original addToQueue, getNextBatch and
updateStatus over Postgres, and the operator's cancel, reschedule and retry, with the outbox
written in the same transaction."""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import NamedTuple

import asyncpg
from opentelemetry import trace

from contracts import FINDS_POSTS_BY_ADDRESS, AlertKind, Platform, PostPlanned, PublishResult, StatusCheck, StatusObserved
from services.runtime import Outgoing, QueueSettings, context_from, current_carrier, metrics, trace_id_of

from . import repository as repo
from . import stats
from .alerts import alert_for
from .domain import (
    Candidate,
    Change,
    Emit,
    EngagementCadence,
    InFlightLimit,
    Refused,
    RetryPolicy,
    StatusCadence,
    TargetState,
    TargetStatus,
    ambiguous,
    awaited_review,
    cancel,
    collection_ages,
    found,
    on_due,
    on_engagement_due,
    on_engagement_observed,
    on_publish_result,
    on_status_observed,
    reschedule,
    retry,
    retry_policies,
    review_needs_its_own_name,
    url_refusal,
    with_engagement_timer,
)
from .messages import (
    engagement_observed_for,
    engagement_request_for,
    request_for,
    slot_changed_for,
    unreadable_alert_for,
    unreadable_error,
)

log = logging.getLogger("autopost.queue.operations")

Clock = Callable[[], datetime]
OperatorCommand = Callable[[repo.LockedTarget, datetime], Change | Refused]
# a due target's change, the messages it sends, and its attempts row (if it records one)
_Dispatched = tuple[Change, list[Outgoing], tuple | None]


class DispatchRound(NamedTuple):
    claimed: int
    full: bool  # a claim came back full: more may be due already


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A result or observation with the trace context it arrived with."""

    event: PublishResult | StatusObserved
    carrier: dict[str, str]


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What an operator's command did to one target."""

    target_id: str
    platform: str
    account_id: str
    status: str  # after the command
    applied: bool
    detail: str


class QueueOperations:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: QueueSettings,
        tracer: trace.Tracer,
        topic: Callable[[str], str],
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        results_share: Callable[[], float] = lambda: 1.0,
        settle_review: Callable[[asyncpg.Connection, list[uuid.UUID]], Awaitable[None]] | None = None,
    ):
        """`settle_review`: what else re-arming targets that awaited review does, in the same
        transaction (the operator's tool sets the publishers' unanswered intents aside)."""
        self.pool = pool
        self.settings = settings
        self.tracer = tracer
        self.topic = topic
        self.policies = dict(policies or retry_policies(
            max_attempts=settings.retry_max_attempts, max_elapsed_seconds=settings.retry_budget_seconds,
            quota_alert_after_seconds=settings.quota_alert_after_seconds))
        self.cadence = StatusCadence(settings.status_first_check_seconds, settings.status_max_interval_seconds,
                                     settings.status_lease_seconds)
        self.engagement = EngagementCadence(
            settings.engagement_ages_seconds, self.cadence.lease_seconds, settings.status_max_interval_seconds)
        self.clock = clock
        self.rng = rng or random.Random()
        self.platforms = [p.value for p in Platform]
        self.held_back: list[str] = []  # platforms at their in-flight limit in the last round
        self._unsent_since: datetime | None = None  # the oldest outbox message of this round
        # learnt from the results this replica applies, which are `results_share()` of them all
        self.in_flight = {p: InFlightLimit(settings.max_in_flight, settings.lease_seconds) for p in self.platforms}
        self.results_share = results_share
        self.settle_review = settle_review

    def policy(self, platform: str) -> RetryPolicy:
        return self.policies.get(platform) or RetryPolicy()

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
    async def get_next_batch(self, limit: int) -> DispatchRound:
        """Claim due targets, move each on, and queue what that sends. A platform with its
        in-flight limit of requests out gets no new ones (`held_back`), and one with room gets
        no more than its room (`repo.claim_due`)."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            room = await self._room_to_publish(conn)
            self.held_back = [platform for platform, n in (room or {}).items() if n <= 0]
            claimed, full = await repo.claim_due(conn, now, limit, room)
            # a lease whose request may still be in the outbox is not run out (see on_due)
            self._unsent_since = await repo.oldest_unsent_at(conn) if claimed else None
            changes: list[tuple[int, Change]] = []
            outgoing: list[Outgoing] = []
            attempts: list[tuple] = []
            unreadable: list[tuple[repo.DueTarget, Exception]] = []
            for due in claimed:
                # each row on its own: one whose request cannot be built (stored content that no
                # longer validates) must not roll the round back, or it is claimed first again
                # next round (the oldest due) and no platform is dispatched to any more
                try:
                    dispatched = self._dispatch(due, now)
                except Exception as exc:
                    unreadable.append((due, exc))
                    dispatched = self._unreadable(due, now, exc)
                if dispatched is None:
                    continue
                change, messages, attempt = dispatched
                changes.append((due.state.version, change))
                outgoing.extend(messages)
                if attempt is not None:
                    attempts.append(attempt)
            _fail_none_if_systemic(unreadable, len(claimed))
            for due, exc in unreadable:
                log.error("target %s (%s, post %s) cannot be dispatched: its stored row is unreadable; "
                          "failed", due.state.target_id, due.platform, due.upstream_id, exc_info=exc)
            await repo.save_changes(conn, changes)
            await repo.record_attempts(conn, attempts)
            await repo.write_outbox(conn, outgoing)
        by_id = {due.state.target_id: due for due in claimed}
        stats.record_transitions(stats.moves(
            (by_id[c.state.target_id].platform, by_id[c.state.target_id].state.status, c.state.status)
            for _, c in changes))
        return DispatchRound(len(claimed), full)

    async def _room_to_publish(self, conn: asyncpg.Connection) -> dict[str, int] | None:
        """New publish requests each platform may take now; None when there is no limit."""
        if self.settings.max_in_flight <= 0:
            return None
        out = await repo.publishing_counts(conn)
        room = {}
        for platform in self.platforms:
            limit = self.in_flight[platform].limit
            metrics.DISPATCH_IN_FLIGHT_LIMIT.labels(platform).set(limit)
            room[platform] = limit - out.get(platform, 0)
        return room

    def _dispatch(self, due: repo.DueTarget, now: datetime) -> _Dispatched | None:
        """What a due target becomes and sends (None: nothing)."""
        change = self._on_due(due, now)
        if change is None:
            return None
        messages: list[Outgoing] = []
        if change.emit is not None:
            messages.append(self._traced_request(due, change))
        if change.alert is not None:
            messages.append(alert_for(due, change, now, self.topic))
        messages.extend(self._slot_messages([(due, change.state)], now))
        attempt = _attempt_row(change, due.trace_context) if change.attempt_outcome else None
        if change.emit is Emit.PUBLISH:
            metrics.DISPATCH_LATENESS.labels(due.platform).observe((now - due.state.due_at).total_seconds())
        return change, messages, attempt

    def _unreadable(self, due: repo.DueTarget, now: datetime, exc: Exception) -> _Dispatched:
        """A due target whose stored row does not make a valid request: sending it later would
        fail the same way. Failed for good and alerted (an operator corrects the row and retries
        it), with the slot given up; a posted one (its engagement collection) stays posted, its
        collections stopped. Each message about it is built as far as the row allows."""
        state, error = due.state, unreadable_error(exc)
        if state.status is TargetStatus.POSTED:
            parked = replace(state, version=state.version + 1, due_at=None, last_error=error)
            return Change(parked), [], None
        failed = replace(state, status=TargetStatus.FAILED, version=state.version + 1, due_at=None,
                         last_error=error)
        change = Change(failed, attempt_outcome="failed", error=error, alert=AlertKind.PUBLISH_FAILED)
        messages: list[Outgoing] = []
        try:
            topic, key, alert = unreadable_alert_for(due, failed, now)
            carrier = due.trace_context if isinstance(due.trace_context, dict) else {}
            messages.append(Outgoing.of(self.topic(topic), key, alert, dict(carrier)))
        except Exception:
            log.exception("no alert could be built for unreadable target %s", state.target_id)
        try:
            messages.extend(self._slot_messages([(due, failed)], now))
        except Exception:
            log.exception("no slot change could be built for unreadable target %s", state.target_id)
        try:
            attempt = _attempt_row(change, due.trace_context)
        except Exception:
            attempt = _attempt_row(change, {})
        return change, messages, attempt

    def _on_due(self, due: repo.DueTarget, now: datetime) -> Change | None:
        if due.state.status is TargetStatus.POSTED:  # its timer is the next engagement collection
            return on_engagement_due(due.state, now, self.engagement)
        return on_due(due.state, now, lease_seconds=self.settings.lease_seconds, cadence=self.cadence,
                      policy=self.policy(due.platform), unsent_since=self._unsent_since)

    def _traced_request(self, due: repo.DueTarget, change: Change) -> Outgoing:
        if change.emit is Emit.ENGAGEMENT:
            age = collection_ages(change.state, self.engagement)[change.state.engagement_checks]
            topic, key, message = engagement_request_for(due, change.state, age)
        else:
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
            states = {tid: target.state for tid, target in locked.items()}
            attempts: list[tuple] = []
            alerts: list[Outgoing] = []
            earned: list[tuple[Change, StatusObserved]] = []
            for item in todo:
                state = states.get(item.event.target_id)
                if state is None:
                    continue
                target = locked[state.target_id]
                change = self._decide(state, item.event, now, self.policy(target.platform))
                if change is None:
                    continue
                states[state.target_id] = change.state
                if change.attempt_outcome:
                    attempts.append(_attempt_row(change, item.carrier))
                if change.alert is not None:
                    alerts.append(alert_for(target, change, now, self.topic))
                if change.emit is Emit.ENGAGEMENT_OBSERVED:
                    earned.append((change, item.event))
            changed = [(locked[tid].state.version, Change(s)) for tid, s in states.items()
                       if s.version != locked[tid].state.version]
            await repo.save_changes(conn, changed)
            await repo.record_attempts(conn, attempts)
            slots = self._slot_messages([(locked[c.state.target_id], c.state) for _, c in changed], now)
            await repo.write_outbox(conn, alerts + slots + await self._engagement_messages(conn, earned))
            if changed:
                await repo.notify_due(conn)
        stats.record_transitions(stats.moves(
            (locked[tid].platform, locked[tid].state.status, s.status) for tid, s in states.items()))
        answered = Counter(locked[tid].platform for tid, s in states.items()
                           if locked[tid].state.status is TargetStatus.PUBLISHING and s.status is not TargetStatus.PUBLISHING)
        share = self.results_share()
        for platform, count in answered.items():
            if platform in self.in_flight:
                self.in_flight[platform].completed(now.timestamp(), count, share)
        return len(changed)

    def _decide(self, state, event, now, policy: RetryPolicy) -> Change | None:
        if isinstance(event, PublishResult):
            change = on_publish_result(state, event, now, policy=policy, cadence=self.cadence, rng=self.rng)
        elif event.check is StatusCheck.ENGAGEMENT:
            return on_engagement_observed(state, event, now, self.engagement)
        else:
            change = on_status_observed(state, event, now, policy=policy, cadence=self.cadence, rng=self.rng)
        return with_engagement_timer(change, self.engagement) if change is not None else None

    async def _engagement_messages(
        self, conn: asyncpg.Connection, earned: Sequence[tuple[Change, StatusObserved]]
    ) -> list[Outgoing]:
        """EngagementObserved for the planner, each in its post's trace."""
        if not earned:
            return []
        contexts = await repo.engagement_contexts(conn, [c.state.target_id for c, _ in earned])
        outgoing = []
        for change, observed in earned:
            context = contexts[change.state.target_id]
            final = change.state.engagement_checks >= len(collection_ages(change.state, self.engagement))
            topic, key, message = engagement_observed_for(context, change.state, observed, final)
            with self.tracer.start_as_current_span(
                "record engagement", context=context_from(context.trace_context),
                kind=trace.SpanKind.PRODUCER,
                attributes={"autopost.target_id": str(change.state.target_id),
                            "autopost.age_seconds": message.age_seconds},
            ):
                outgoing.append(Outgoing.of(self.topic(topic), key, message, current_carrier()))
        return outgoing

    def _slot_messages(self, moves: Sequence[tuple[repo.DueTarget | repo.LockedTarget, TargetState]],
                       now: datetime) -> list[Outgoing]:
        """SlotChanged for the planner, for each change that moved a slot or gave it up."""
        outgoing = []
        for target, after in moves:
            if (found := slot_changed_for(target, after, now)) is not None:
                topic, key, message = found
                outgoing.append(Outgoing.of(self.topic(topic), key, message, {}))
        return outgoing

    # -- operator commands ------------------------------------------------------------------

    async def cancel(self, ref: str) -> list[CommandOutcome]:
        return await self._command(ref, lambda target, now: cancel(target.state))

    async def reschedule(self, ref: str, at: datetime) -> list[CommandOutcome]:
        return await self._command(ref, lambda target, now: reschedule(target.state, at))

    async def retry(self, ref: str) -> list[CommandOutcome]:
        """Publish again now. A target awaiting review (its post may be on the platform) is re-armed
        only when named on its own: by its target id, or by a reference naming no other target.
        Given a post with several targets, the others are retried and those awaiting review refused."""

        def held_back(targets: Sequence[repo.LockedTarget]) -> dict[uuid.UUID, Refused]:
            if len(targets) < 2:
                return {}
            review = [t for t in targets if awaited_review(t.state)]
            names = [_candidate(t) for t in review]
            return {t.state.target_id: review_needs_its_own_name(t.state, names) for t in review}

        return await self._command(ref, lambda target, now: retry(target.state, now), held_back=held_back)

    async def found(self, ref: str, url: str, at: datetime | None = None) -> list[CommandOutcome]:
        """Posted at `url` since `at`, or since it failed for review: right after its init left.
        `ref` must name one target, and `url` be an address on that target's platform: otherwise
        nothing is changed."""

        def held_back(targets: Sequence[repo.LockedTarget]) -> dict[uuid.UUID, Refused]:
            if len(targets) > 1:
                refused = ambiguous([_candidate(t) for t in targets], "mark")
                return {t.state.target_id: refused for t in targets}
            return {t.state.target_id: refused for t in targets
                    if (refused := url_refusal(t.platform, url)) is not None}

        return await self._command(ref, lambda target, now: found(
            target.state, url, at or target.changed_at,
            by_address=Platform(target.platform) in FINDS_POSTS_BY_ADDRESS), held_back=held_back)

    async def _command(
        self, ref: str, command: OperatorCommand,
        held_back: Callable[[Sequence[repo.LockedTarget]], Mapping[uuid.UUID, Refused]] | None = None,
    ) -> list[CommandOutcome]:
        """Apply `command` to every target `ref` names (target, post or upstream id), each under
        its row lock: a target the dispatcher holds is decided once the dispatch committed.
        `held_back`, given every target named, refuses those it returns before `command` runs."""
        now = self.clock()
        outcomes: list[CommandOutcome] = []
        async with self.pool.acquire() as conn, conn.transaction():
            changes: list[tuple[int, Change]] = []
            applied: list[repo.LockedTarget] = []
            attempts: list[tuple] = []
            targets = await repo.lock_targets_of(conn, ref)
            refused_first = held_back(targets) if held_back is not None else {}
            for target in targets:
                decided = refused_first.get(target.state.target_id) or command(target, now)
                if isinstance(decided, Refused):
                    outcomes.append(_outcome(target, target.state, False, decided.reason))
                    continue
                decided = with_engagement_timer(decided, self.engagement)  # a target found posted
                changes.append((target.state.version, decided))
                applied.append(target)
                attempts.append(_attempt_row(decided, {}))
                outcomes.append(_outcome(target, decided.state, True, decided.attempt_outcome or "done"))
            reviewed = [target.state.target_id for target, (_, change) in zip(applied, changes)
                        if awaited_review(target.state) and change.state.status is TargetStatus.PENDING]
            if reviewed and self.settle_review is not None:
                await self.settle_review(conn, reviewed)
            await repo.save_changes(conn, changes)
            await repo.record_attempts(conn, attempts)
            await repo.write_outbox(conn, self._slot_messages(
                [(target, change.state) for target, (_, change) in zip(applied, changes)], now))
            if changes:
                await repo.notify_due(conn)
        stats.record_transitions(stats.moves(
            (target.platform, target.state.status, change.state.status)
            for target, (_, change) in zip(applied, changes)))
        return outcomes


# So many of a round's targets unreadable at once is not a few bad rows but a change of code or
# of contract that every stored row now meets (content a new version validates more strictly):
# failing them all for good would be the worse outcome. The round fails instead, changing nothing;
# the dispatcher says so (its readiness, its log) until the code or the rows are put right.
SYSTEMIC_UNREADABLE = 10


class UnreadableRound(Exception):
    """Most of a round's due targets could not be dispatched: see SYSTEMIC_UNREADABLE."""


def _fail_none_if_systemic(unreadable: Sequence[tuple[repo.DueTarget, Exception]], claimed: int) -> None:
    if len(unreadable) >= SYSTEMIC_UNREADABLE and 2 * len(unreadable) >= claimed:
        due, exc = unreadable[0]
        raise UnreadableRound(
            f"{len(unreadable)} of {claimed} due targets cannot be dispatched, none was failed: a change "
            f"of code or contract rather than bad rows? First, target {due.state.target_id}: "
            f"{type(exc).__name__}: {exc}"[:2000]) from exc


def _outcome(target: repo.LockedTarget, state: TargetState, applied: bool, detail: str) -> CommandOutcome:
    return CommandOutcome(str(state.target_id), target.platform, target.account_id, state.status.value,
                          applied, detail)



def _candidate(target: repo.LockedTarget) -> Candidate:
    """How an operator is shown a target a reference matched."""
    state = target.state
    return Candidate(str(state.target_id), target.platform, target.account_id, state.status.value)

def _attempt_row(change: Change, carrier: Mapping[str, str]) -> tuple:
    error = change.error or {}
    return (
        change.state.target_id,
        change.state.attempt,
        change.attempt_outcome,
        error.get("errorClass"),
        error.get("code"),
        error.get("message"),
        trace_id_of(carrier),
    )
