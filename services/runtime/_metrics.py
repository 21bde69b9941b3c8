"""Every Prometheus metric autopost exports, defined once; `/metrics` serves them all.

Metrics live in prometheus_client's default registry, so a process running several services
(the tests do) shares them; in a deployment each pod is one service and Prometheus's own
`job`/`pod` labels tell them apart. Gauges that several replicas compute from the same source
(queue length from Postgres, consumer lag from Kafka) are read with `max by (...)`.

FastStream's Kafka middleware adds `faststream_*` metrics for every message received (see
`_broker.build_broker`); messages sent go around it and are counted in `autopost_messages_sent`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics

# `*_created` series double what Prometheus stores and nothing here reads them
disable_created_metrics()

# Handler and stage durations: a batch takes milliseconds; a platform publish may take seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# How late work is, from "right on time" to "an hour behind".
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
RECORD_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)

# --- outcomes --------------------------------------------------------------------------
PUBLISH_RESULTS = Counter(
    "autopost_publish_results",
    "Publish attempts answered by a publisher: outcome accepted | published | failed | pending "
    "(still processing on the platform, looked at again), with the error class",
    ["platform", "outcome", "error_class"],
)
STATUS_OBSERVATIONS = Counter(
    "autopost_status_observations",
    "Status checks answered by the poller: state processing | published | failed",
    ["platform", "state"],
)
TARGET_TRANSITIONS = Counter(
    "autopost_target_transitions",
    "Targets the queue moved into posted, failed, cancelled (finished) or retry_wait, deferred (retries)",
    ["platform", "status"],
)
DEAD_LETTERS = Counter(
    "autopost_dead_letters",
    "Messages sent to the dead-letter topic, by consumer and reason",
    ["consumer", "reason"],
)
STATUS_REQUESTS_EXPIRED = Counter(
    "autopost_status_requests_expired",
    "Status requests the poller skipped because they were read after their lease (asked again since)",
    ["platform"],
)
PLANNED_RESENT = Counter(
    "autopost_planned_resent",
    "post.planned messages sent again because the queue had not stored their post in time",
)
CONTENT_REJECTED = Counter(
    "autopost_content_rejected",
    "Content events the planner rejected, by reason",
    ["reason"],
)

# --- queue length (computed by the queue from Postgres, periodically) --------------------
QUEUE_TARGETS = Gauge(
    "autopost_queue_targets",
    "Targets not yet finished, by platform and status (pending, retry_wait, deferred, publishing, processing)",
    ["platform", "status"],
)
QUEUE_DUE = Gauge(
    "autopost_queue_due_targets",
    "Targets waiting to be published whose due time has come: the dispatch backlog",
    ["platform"],
)
QUEUE_SCHEDULED = Gauge(
    "autopost_queue_scheduled_targets",
    "Targets waiting to be published whose due time is in the future",
    ["platform"],
)
QUEUE_OLDEST_DUE_AGE = Gauge(
    "autopost_queue_oldest_due_age_seconds",
    "How long the oldest due target has been waiting to be dispatched (0 when none is due)",
    ["platform"],
)
OUTBOX_MESSAGES = Gauge("autopost_outbox_messages", "Messages written to the outbox and not yet sent to Kafka")
QUEUE_STATS_TIMESTAMP = Gauge(
    "autopost_queue_stats_timestamp_seconds", "When the queue last computed its length from Postgres"
)

# --- time -----------------------------------------------------------------------------
STAGE_DURATION = Histogram(
    "autopost_stage_duration_seconds",
    "Time spent in one processing stage: plan, store, dispatch, relay, apply (per batch); publish, check (per target)",
    ["stage"],
    buckets=DURATION_BUCKETS,
)
DISPATCH_LATENESS = Histogram(
    "autopost_dispatch_lateness_seconds",
    "When the dispatcher sent a publish request, minus the target's due time",
    ["platform"],
    buckets=LATENESS_BUCKETS,
)
DISPATCH_IN_FLIGHT_LIMIT = Gauge(
    "autopost_dispatch_in_flight_limit",
    "Publish requests a platform may have out at once, from its publishers' completion rate and the lease",
    ["platform"],
)
PUBLISH_LATENESS = Histogram(
    "autopost_publish_lateness_seconds",
    "When the platform answered a first publish attempt, minus the target's scheduled time",
    ["platform"],
    buckets=LATENESS_BUCKETS,
)
PLATFORM_CALL_DURATION = Histogram(
    "autopost_platform_call_duration_seconds",
    "One publish or status check against a platform, from start to classified answer",
    ["platform", "operation"],
    buckets=DURATION_BUCKETS,
)

# --- limits ---------------------------------------------------------------------------
RATE_LIMIT_WAIT = Histogram(
    "autopost_rate_limit_wait_seconds",
    "Time a publish waited for its account's rate cap",
    ["platform"],
    buckets=LATENESS_BUCKETS,
)
QUOTA_REMAINING = Gauge(
    "autopost_quota_remaining",
    "Quota left in the current window (set by the quota ledger), by platform and quota name",
    ["platform", "quota"],
)
TOKEN_REFRESHES = Counter(
    "autopost_token_refreshes",
    "Calls to a platform's token endpoint, by why (due: before use, rejected: after a refusal, "
    "keep_alive: an idle account kept connected) and outcome (ok, token_refresh_failed, reconnect_needed)",
    ["platform", "reason", "outcome"],
)
ACCOUNTS_NEEDING_RECONNECT = Gauge(
    "autopost_accounts_needing_reconnect",
    "Connected accounts whose credentials were refused (invalid_grant): an operator must reconnect them",
    ["platform"],
)

# --- consumers ------------------------------------------------------------------------
CONSUMER_LAG = Gauge(
    "autopost_consumer_lag",
    "Records not yet committed by a consumer group: fetch high watermark minus committed offset",
    ["group", "topic", "partition"],
)
CONSUMER_RECORDS = Counter(
    "autopost_consumer_records", "Records handled by a consumer group", ["group", "topic"]
)
MESSAGES_SENT = Counter("autopost_messages_sent", "Messages sent to Kafka and confirmed", ["topic"])
CONSUMER_BATCHES = Counter(
    "autopost_consumer_batches", "Batches handled by a consumer group: outcome ok | error", ["group", "outcome"]
)
CONSUMER_BATCH_DURATION = Histogram(
    "autopost_consumer_batch_duration_seconds",
    "Time to handle one batch, from receipt to the handler's return",
    ["group"],
    buckets=DURATION_BUCKETS,
)
CONSUMER_BATCH_RECORDS = Histogram(
    "autopost_consumer_batch_records", "Records per batch", ["group"], buckets=RECORD_BUCKETS
)
CONSUMER_LAST_BATCH = Gauge(
    "autopost_consumer_last_batch_timestamp_seconds",
    "When this process last completed a batch for the group (unix time)",
    ["group"],
)
CONSUMER_ASSIGNED = Gauge(
    "autopost_consumer_assigned_partitions", "Partitions this process holds for the group", ["group"]
)
CONSUMER_STALLED = Gauge(
    "autopost_consumer_stalled",
    "1 when the group has records waiting in this process but has made no progress for too long",
    ["group"],
)

SERVICE_INFO = Gauge("autopost_service_info", "1 for each service this process runs", ["service"])


P = ParamSpec("P")
R = TypeVar("R")


def stage_timer(stage: str):
    """`with stage_timer("dispatch"):` observes the block's duration."""
    return STAGE_DURATION.labels(stage).time()


def timed(stage: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """`@timed("dispatch")` on a coroutine function observes each call's duration."""
    histogram = STAGE_DURATION.labels(stage)

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return wrapper

    return decorate


def record_publish_result(request: Any, result: Any) -> None:
    """A publisher's answer (PublishRequested, PublishResult): outcome, and for a first attempt
    that went through, how late it was against its slot."""
    platform = request.platform.value
    error_class = result.error.error_class.value if result.error else ""
    # still processing on the platform is not a failure: kept out of the error-rate alert
    outcome = "pending" if result.error is not None and result.error.pending else result.outcome.value
    PUBLISH_RESULTS.labels(platform, outcome, error_class).inc()
    if request.attempt == 1 and result.error is None:
        PUBLISH_LATENESS.labels(platform).observe((result.occurred_at - request.scheduled_time).total_seconds())


def metric_names() -> set[str]:
    """Every sample name the registry can export (e.g. `*_bucket`, `*_total`): for the checks of
    alert rules and dashboards."""
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 (no public listing)
        names.update(REGISTRY._collector_to_names[collector])  # noqa: SLF001
    return names
