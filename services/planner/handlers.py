"""content.submitted in; post.planned or content.rejected out, one per event, in its trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from opentelemetry import trace

from contracts import ContentRejected, ContentSubmitted, ContractError, Topics
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

from .domain import PlanningRejected, plan_content

log = logging.getLogger("autopost.planner")


class PlannerHandlers:
    def __init__(self, ctx: ServiceContext, clock: Callable[[], datetime] | None = None):
        self.ctx = ctx
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    @metrics.timed("plan")
    async def submitted(self, records: list[Record]) -> None:
        now = self.clock()
        await self.ctx.send([self._plan_one(record, now) for record in records])

    def _plan_one(self, record: Record, now: datetime) -> Outgoing:
        with self.ctx.tracer.start_as_current_span(
            "plan content", context=context_from(record.headers), kind=trace.SpanKind.CONSUMER
        ) as span:
            try:
                event = ContentSubmitted.from_bytes(record.value)
                span.set_attribute("autopost.upstream_id", event.upstream_id)
                if problems := content_problems(event):  # every platform's rules, before queueing
                    return self._rejected(record, rejection_for(problems), event.upstream_id, now)
                planned = plan_content(event, now)
            except ContractError as error:
                return self._rejected(record, error, None, now)
            except PlanningRejected as rejection:
                error = ContractError(rejection.reason, rejection.message)
                return self._rejected(record, error, event.upstream_id, now)
            except Exception as exc:  # a bug, not bad input: keep the event for a replay
                log.exception("planning failed for %s/%s@%s", record.topic, record.partition, record.offset)
                span.record_exception(exc)
                return dead_letter_for(
                    record, reason="internal_error", message=repr(exc), consumer="planner",
                    topic=self.ctx.topic(Topics.DEAD_LETTER),
                )
            span.set_attribute("autopost.post_id", str(planned.post_id))
            span.set_attribute("autopost.targets", len(planned.targets))
            return Outgoing.of(
                self.ctx.topic(Topics.POST_PLANNED), planned.post_id, planned, current_carrier()
            )

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
