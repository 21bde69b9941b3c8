"""The Kafka broker every service uses, and the one way to subscribe: in batches."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY

from contracts import Topics

from . import _metrics as metrics
from ._backoff import full_jitter
from ._failures import TOO_LARGE, is_transient
from ._messaging import Outgoing, Record, bare_dead_letter, dead_letter_for, publish_all
from ._settings import KafkaSettings

log = logging.getLogger("autopost.consumer")

BatchHandler = Callable[[list[Record]], Awaitable[None]]
PartitionsHook = Callable[[set[TopicPartition]], None]

# Handlers dead-letter the messages they cannot decode. When a handler raises anyway, an outage
# (database or broker unreachable) makes the batch be read again after a pause, so it does not
# turn into a hot loop; anything else is a message the handler cannot process, found by
# handling the batch one record at a time, and set aside on the dead-letter topic.
INFRA_RETRY_SECONDS = 2.0
# A batch that fails again and again (an outage that lasts, a dead letter the broker refuses) is
# read again after pauses that double from INFRA_RETRY_SECONDS up to this, with full jitter; a
# completed batch starts them again from the shortest. Well under the poll interval and stall_seconds.
RETRY_CAP_SECONDS = 30.0
# a log shorter than our position this long was recreated or truncated: read it from the start
REWIND_AFTER_SECONDS = 10.0


def build_broker(settings: KafkaSettings, tracer_provider: TracerProvider, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=5,
        request_timeout_ms=10_000,
        retry_backoff_ms=100,
        allow_auto_create_topics=False,
        max_batch_size=256 * 1024,
        middlewares=[
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            # faststream_* counts and durations of every message received and published
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=client_id),
        ],
        logger=logging.getLogger(f"autopost.{client_id}.kafka"),
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


def subscribe_batches(
    broker: KafkaBroker,
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    group_id: str,
    handler: BatchHandler,
    max_records: int | None = None,
    on_assigned: PartitionsHook | None = None,
    on_lost: PartitionsHook | None = None,
) -> "ConsumerWatch":
    """Consume `topics` in batches; offsets are committed only after `handler` returns.
    The group id takes the topic prefix too: deployments (and tests) that share a cluster under
    different prefixes must not share consumer groups, or one's members rebalance the other's.
    Dead letters name the consumer without the prefix, as the handlers' own do.
    `on_assigned` is told the partitions each rebalance gives this consumer that it did not
    hold before (all of them the first time, and after it was out of the group), before it
    reads from them; `on_lost` of those it held that another member has now (gone in a
    rebalance, or all it held once it finds it was out of the group), while the batch it is
    handling may still hold their records."""
    group = settings.topic_prefix + group_id
    # aiokafka's rebalance timeout is the session timeout unless given
    listener = None if on_assigned is None and on_lost is None else NewPartitions(
        on_assigned or _ignore, on_lost=on_lost or _ignore,
        rebalance_timeout=settings.session_timeout_ms / 1000)
    subscriber = broker.subscriber(
        *topics,
        group_id=group,
        batch=True,
        max_records=max_records or settings.max_poll_records,
        batch_timeout_ms=50,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_records=max_records or settings.max_poll_records,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        listener=listener,
    )
    if listener is not None:
        listener.generation = lambda: _generation(subscriber)

    dead_letter_topic = settings.topic_prefix + Topics.DEAD_LETTER
    watch = ConsumerWatch(group, list(topics), subscriber)
    # a process that never completes a batch reports its start: "no batch for N minutes"
    # then counts from there, instead of never, for a consumer stuck from the outset
    metrics.CONSUMER_LAST_BATCH.labels(group).set(time.time())
    _watches.setdefault(broker, []).append(watch)

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        # Raising makes FastStream (NACK_ON_ERROR) rewind each partition of the batch to its
        # first record, uncommitted, and swallow the error: its loop fetches the batch again at
        # once. So the pause before that read is taken here, and grows while failures repeat.
        watch.batch_started = time.monotonic()
        try:
            records = [Record.of(raw) for raw in message.raw_message]
            try:
                await handler(records)
            except Exception as exc:
                metrics.CONSUMER_BATCHES.labels(group, "error").inc()
                _raise_if_transient(exc, f"batch of {len(records)} from {list(topics)}")
                await _isolate_poison(broker, records, handler, group_id, dead_letter_topic)
            watch.completed(records)
        except Exception as exc:
            await _back_off(watch, subscriber, exc)
            raise
        finally:
            watch.batch_started = None

    return watch


def _ignore(partitions: set[TopicPartition]) -> None:
    pass


class NewPartitions(ConsumerRebalanceListener):
    """Calls `hook` with the partitions an assignment adds to the last one: with all it assigns
    when another member may have held them since (this one was out of the group meanwhile);
    and `on_lost` with those it held that another member has now. Async, so aiokafka runs it
    on the event loop: FastStream runs a sync listener in a thread."""

    def __init__(self, hook: PartitionsHook, *, rebalance_timeout: float,
                 on_lost: PartitionsHook = _ignore,
                 generation: Callable[[], int | None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic):
        self.hook = hook
        self.on_lost = on_lost
        self.rebalance_timeout = rebalance_timeout
        self.generation = generation  # the consumer's group generation, when it can be read
        self.clock = clock
        self.held: set[TopicPartition] = set()
        self.held_in: int | None = None  # the generation of the last assignment
        self.revoked_at: float | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # every rebalance revokes all, and most come back: compare with what is assigned
        self.revoked_at = self.clock()
        generation = self.generation()
        if generation is not None and generation < 0:
            # aiokafka revokes only once it rejoins: after an expulsion (session or poll interval
            # timed out) it has reset its generation, and what it held went to another member
            lost, self.held = self.held, set()
            if lost:
                self.on_lost(lost)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        generation, revoked_at, now = self.generation(), self.revoked_at, self.clock()
        self.revoked_at = None
        if lost := self.held - set(assigned):
            self.on_lost(lost)
        if generation is not None and self.held_in is not None and generation > self.held_in + 1:
            self.held = set()  # the group went through a generation without this member
        if revoked_at is not None and now - revoked_at > self.rebalance_timeout:
            self.held = set()  # no round waits for a member that long: one ran without it
        new, self.held, self.held_in = set(assigned) - self.held, set(assigned), generation
        if new:
            self.hook(new)


def _generation(subscriber: Any) -> int | None:
    """The group generation of the subscriber's consumer (aiokafka keeps it private; FastStream
    reads the member id there too): -1 once the coordinator no longer knows the member."""
    coordinator = getattr(getattr(subscriber, "consumer", None), "_coordinator", None)
    generation = getattr(coordinator, "generation", None)
    return generation if isinstance(generation, int) else None


# The consumers each broker runs, for readiness and lag (a broker is one service's).
_watches: "weakref.WeakKeyDictionary[KafkaBroker, list[ConsumerWatch]]" = weakref.WeakKeyDictionary()


def consumers_of(broker: KafkaBroker) -> list["ConsumerWatch"]:
    return list(_watches.get(broker, ()))


@dataclass
class ConsumerWatch:
    """What a subscription has done lately: enough to tell progress from a stall."""

    group: str
    topics: list[str]
    subscriber: Any  # FastStream's subscriber: its aiokafka consumer and its consume task
    batch_started: float | None = None  # monotonic; None between batches
    last_completed: float | None = None
    backlog_since: float | None = None
    batches: int = 0
    retries: int = 0  # failed reads of the batch since one last completed
    failing_since: float | None = None  # monotonic: the first of those failures
    _stall: bool = field(default=False, repr=False)
    # partitions whose log ended before our position: (that position, since when, monotonic)
    _behind: dict[Any, tuple[int, float]] = field(default_factory=dict, repr=False)

    def completed(self, records: Sequence[Record]) -> None:
        now = time.monotonic()
        duration = now - (self.batch_started or now)
        self.last_completed = now
        self.batches += 1
        self.retries, self.failing_since = 0, None
        metrics.CONSUMER_BATCHES.labels(self.group, "ok").inc()
        metrics.CONSUMER_BATCH_DURATION.labels(self.group).observe(duration)
        metrics.CONSUMER_BATCH_RECORDS.labels(self.group).observe(len(records))
        metrics.CONSUMER_LAST_BATCH.labels(self.group).set(time.time())
        for topic, count in Counter(r.topic for r in records).items():
            metrics.CONSUMER_RECORDS.labels(self.group, topic).inc(count)

    def failed(self) -> None:
        """One more failed read of the batch since one last completed."""
        self.retries += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()

    def share_of(self, topic: str) -> float:
        """The share of `topic`'s partitions assigned here: what part of a keyed stream this
        replica sees. 1.0 while it is not known (before the first assignment, mid-rebalance)."""
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return 1.0
        total = len(consumer.partitions_for_topic(topic) or ())
        mine = sum(1 for tp in consumer.assignment() if tp.topic == topic)
        return mine / total if total and mine else 1.0

    @property
    def running(self) -> bool:
        """A consume task is alive. FastStream starts a new one when one raises and keeps the
        dead one in `tasks` beside it; it empties the list on stop."""
        return any(not t.done() for t in list(getattr(self.subscriber, "tasks", ())))

    async def waiting_records(self) -> tuple[int, int]:
        """(assigned partitions, records fetched-known but not yet handed to the handler)."""
        consumer = getattr(self.subscriber, "consumer", None)
        if consumer is None:
            return 0, 0
        assigned = list(consumer.assignment())
        waiting = 0
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                async with asyncio.timeout(2.0):  # asyncio.wait_for could swallow a cancellation
                    position = await consumer.position(tp)
                if position > highwater:
                    await self._behind_the_log(consumer, tp, position, highwater)
                    continue
                self._behind.pop(tp, None)
            except Exception:  # revoked mid-rebalance: it is someone else's now
                continue
            waiting += highwater - position
        return len(assigned), waiting

    async def _behind_the_log(self, consumer: Any, tp: Any, position: int, end: int) -> None:
        """Rewind only a log that stays shorter than our position: right after a leader change,
        Apache Kafka's new leader may answer a high watermark behind what was read, for a
        moment; a recreated topic stays behind."""
        now = time.monotonic()
        seen = self._behind.get(tp)
        if seen is None or seen[0] != position:
            self._behind[tp] = (position, now)
        elif now - seen[1] >= REWIND_AFTER_SECONDS:
            del self._behind[tp]
            await _rewind_reset_log(consumer, tp, position, end)

    async def check(self, stall_seconds: float) -> dict[str, Any]:
        """Progress now: stalled when a batch has run longer than `stall_seconds`, or when
        records have been waiting that long without a batch completing."""
        now = time.monotonic()
        assigned, waiting = await self.waiting_records()
        if waiting == 0:
            self.backlog_since = None
        elif self.backlog_since is None:
            self.backlog_since = now
        if self.failing_since is not None and now - self.failing_since > stall_seconds:
            stalled = True  # batches failing (and read again after a pause) that long
        elif self.batch_started is not None:
            stalled = now - self.batch_started > stall_seconds
        elif waiting:
            stalled = now - max(self.last_completed or 0.0, self.backlog_since or now) > stall_seconds
        else:
            stalled = False
        metrics.CONSUMER_ASSIGNED.labels(self.group).set(assigned)
        metrics.CONSUMER_STALLED.labels(self.group).set(1 if stalled else 0)
        return {"group": self.group, "running": self.running, "assigned": assigned,
                "waiting": waiting, "stalled": stalled, "batches": self.batches, "retries": self.retries}


async def _rewind_reset_log(consumer: Any, tp: Any, position: int, end: int) -> None:
    """The partition's log now ends before our position: the topic was deleted and recreated, or
    truncated (a broker that lost data). Apache Kafka answers the next fetch with
    OFFSET_OUT_OF_RANGE and the consumer resets itself; other Kafka-compatible brokers answer
    with nothing, and the consumer would wait forever. Every record in the new log is unprocessed
    and handlers are idempotent, so read it from the start, as a reset to "earliest" would."""
    log.warning("%s-%s ends at %s, before our position %s: the topic was recreated or truncated; "
                "reading it from the start", tp.topic, tp.partition, end, position)
    await consumer.seek_to_beginning(tp)


async def _isolate_poison(
    broker: KafkaBroker, records: list[Record], handler: BatchHandler, consumer: str, topic: str
) -> None:
    """Handle each record alone; dead-letter those that still fail. Handlers are idempotent,
    so the records the failed batch had already applied change nothing the second time."""
    letters = []
    for record in records:
        try:
            await handler([record])
        except Exception as exc:
            _raise_if_transient(exc, f"{record.topic}@{record.partition}/{record.offset}")
            log.exception("dead-lettering %s@%s/%s: it cannot be processed",
                          record.topic, record.partition, record.offset)
            letters.append(dead_letter_for(record, reason="processing_failed",
                                           message=f"{type(exc).__name__}: {exc}", consumer=consumer,
                                           topic=topic))
    await _publish_dead_letters(broker, letters)


async def _publish_dead_letters(broker: KafkaBroker, letters: list[Outgoing]) -> None:
    """Send the letters; one the broker refuses for its size is sent bare (where its record
    was, not the record), so a letter too large can never hold the partition up: a refusal for
    size is refused again however often the batch is read. (After such a refusal the letters
    are sent again one at a time: those already sent then appear twice.)"""
    try:
        await publish_all(broker, letters)
        return
    except TOO_LARGE as exc:
        log.error("dead letters refused for their size (%s: %s); sending them one at a time",
                  type(exc).__name__, exc)
    for letter in letters:
        try:
            await publish_all(broker, [letter])
        except TOO_LARGE as exc:
            log.error("a dead letter of %s bytes refused for its size (%s); sending it without its record",
                      len(letter.value), type(exc).__name__)
            try:
                await publish_all(broker, [bare_dead_letter(letter)])
            except TOO_LARGE:
                log.exception("a bare dead letter refused for its size; the record is dropped: %s",
                              letter.value[:2000])


def _raise_if_transient(exc: Exception, what: str) -> None:
    """Re-raise an outage (the batch is read again, after the consume wrapper's pause: see
    `_back_off`); return for anything else."""
    if is_transient(exc):
        log.warning("%s failed on the infrastructure (%s: %s); it will be read again",
                    what, type(exc).__name__, exc)
        raise exc


_jitter = random.Random()


def _retry_pause(retries: int, rng: random.Random = _jitter) -> float:
    """The pause before the batch is read for the `retries`-th time since it last completed:
    full jitter, uniform in [0, min(RETRY_CAP_SECONDS, INFRA_RETRY_SECONDS * 2^(retries-1))]."""
    return full_jitter(retries, INFRA_RETRY_SECONDS, RETRY_CAP_SECONDS, rng)


async def _back_off(watch: "ConsumerWatch", subscriber: Any, exc: Exception) -> None:
    """Count a failed read of the batch, then pause before FastStream reads it again. The pause
    ends early when the subscriber stops (it waits for this handler up to its graceful timeout):
    the batch is left uncommitted, for whoever reads the partitions next."""
    watch.failed()
    now = time.monotonic()
    pause = _retry_pause(watch.retries)
    log.warning("%s: batch failed (%s: %s), %d time(s) in a row for %.0f s; reading it again in %.1f s",
                watch.group, type(exc).__name__, exc, watch.retries, now - watch.failing_since, pause)
    deadline = now + pause
    while (left := deadline - time.monotonic()) > 0 and getattr(subscriber, "running", True):
        await asyncio.sleep(min(left, 0.25))
