"""status.requested.<platform> in, status.observed out: what the platform says of a target now."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone

from opentelemetry import trace

from contracts import (
    ContractError,
    EngagementFigures,
    ErrorClass,
    ObservedState,
    Platform,
    PublishError,
    StatusCheck,
    StatusObserved,
    StatusRequested,
    Topics,
)
from services.publishers.credentials import TokenSource, with_token
from services.publishers.limits import HandedOver, serving
from services.publishers.platforms import PlatformClient, PlatformError, StatusReport
from services.publishers.status_reads import read_refused_for_good, status_of_failed_read
from services.quotas import QuotaLedger, QuotaRule, status_check_costs
from services.runtime import (
    Outgoing,
    Record,
    ServiceContext,
    context_from,
    current_carrier,
    map_by_key,
    metrics,
)

log = logging.getLogger("autopost.poller")

# A span per kind of check, named for what it asks the platform.
_SPAN_NAMES = {StatusCheck.STATUS: "check status", StatusCheck.ENGAGEMENT: "collect engagement"}


class PollHandlers:
    def __init__(self, ctx: ServiceContext, clients: Mapping[Platform, PlatformClient], tokens: TokenSource,
                 ledger: QuotaLedger, rules: dict[str, QuotaRule]):
        self.ctx = ctx
        self.clients = clients
        self.tokens = tokens
        self.ledger, self.rules = ledger, rules  # status calls spend quota too (YouTube units)

    async def requested(self, records: list[Record]) -> None:
        outgoing = await map_by_key(records, self._check_one, self.ctx.settings.publisher_concurrency)
        await self.ctx.send([o for o in outgoing if o is not None])

    @metrics.timed("check")
    async def _check_one(self, record: Record) -> Outgoing | None:
        try:
            request = StatusRequested.from_bytes(record.value)
        except ContractError as error:
            return self.ctx.dead_letter(record, error)
        if request.expires_at is not None and request.expires_at <= datetime.now(timezone.utc):
            # read after its lease: the queue has asked again, and answering this one too would
            # only add to a backlog that is already longer than a lease
            metrics.STATUS_REQUESTS_EXPIRED.labels(request.platform.value).inc()
            return None
        limits = self.clients[request.platform].limits
        if limits.handed_over(record.partition):
            return None  # its partition is another poller's now: so is the request
        try:
            with serving(record.partition):
                return await self._answer(record, request)
        except HandedOver:
            return None  # stopped before a capped call: the new owner reads it again

    async def _answer(self, record: Record, request: StatusRequested) -> Outgoing:
        if request.check is StatusCheck.ENGAGEMENT:
            return await self._collect_engagement(record, request)
        with self._span(record, request) as span:
            with metrics.PLATFORM_CALL_DURATION.labels(request.platform.value, "status").time():
                report = await self._report(request)
            metrics.STATUS_OBSERVATIONS.labels(request.platform.value, report.state.value).inc()
            span.set_attribute("autopost.observed", report.state.value)
            return self._observed(request, state=report.state, url=report.url, error=report.error,
                                  detail=report.detail)

    async def _collect_engagement(self, record: Record, request: StatusRequested) -> Outgoing:
        """A posted target's figures now; a failed read says why, for the queue to retry or skip."""
        with self._span(record, request) as span:
            figures, learnt, error = await self._engagement(request)
            if figures is not None:
                span.set_attribute("autopost.interactions", figures.interactions)
            # the URL the client found the post by, where the queue had none
            return self._observed(request, state=ObservedState.PUBLISHED, url=learnt or request.url,
                                  error=error, age_seconds=request.age_seconds, engagement=figures)

    def _span(self, record: Record, request: StatusRequested):
        """The consumer span of one check, named by its kind, in the queue's trace."""
        if request.check is StatusCheck.ENGAGEMENT:
            about = {"autopost.age_seconds": request.age_seconds or 0.0}
        else:
            about = {"autopost.remote_id": request.remote_handle.id}
        return self.ctx.tracer.start_as_current_span(
            f"{_SPAN_NAMES[request.check]} {request.platform.value}",
            context=context_from(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"autopost.target_id": str(request.target_id), **about},
        )

    @staticmethod
    def observation_id(request: StatusRequested, state: ObservedState, error: PublishError | None = None,
                       figures: bool = False) -> uuid.UUID:
        """One id per request and answer (as a publish result's): a repeat is dropped, another
        answer to it (processing, then published, from two pollers across a rebalance) is not."""
        return uuid.uuid5(request.message_id, f"observed:{state.value}:{error.code if error else ''}:{figures}")

    def _observed(self, request: StatusRequested, **answer) -> Outgoing:
        """The answer to a check, of its kind; built inside its span, so it carries that span."""
        observed = StatusObserved(
            message_id=self.observation_id(request, answer["state"], answer.get("error"),
                                           answer.get("engagement") is not None),
            target_id=request.target_id,
            attempt=request.attempt,
            observed_at=datetime.now(timezone.utc),
            check=request.check,
            **answer,
        )
        return Outgoing.of(self.ctx.topic(Topics.STATUS_OBSERVED), request.target_id, observed,
                           current_carrier())

    async def _engagement(
        self, request: StatusRequested
    ) -> tuple[EngagementFigures | None, str | None, PublishError | None]:
        """(figures, the post's URL if the client learnt it, why the figures could not be read)."""
        try:
            if denied := await self.ledger.reserve(status_check_costs(self.rules, request)):
                raise PlatformError(ErrorClass.QUOTA, denied.code, denied.message,
                                    denied.retry_after(datetime.now(timezone.utc)))
            client = self.clients[request.platform]
            figures, learnt = await with_token(self.tokens, request.platform, request.account_id,
                                               lambda token: client.read_engagement(
                                                   request.remote_handle, token, request.account_id, request.url))
            return figures, learnt, None
        except PlatformError as error:
            return None, None, error.to_contract()
        except Exception as exc:
            log.exception("engagement of %s could not be read", request.target_id)
            return None, None, PublishError(error_class=ErrorClass.RETRYABLE, code="internal_error",
                                            message=type(exc).__name__)

    async def _report(self, request: StatusRequested) -> StatusReport:
        try:
            if denied := await self.ledger.reserve(status_check_costs(self.rules, request)):
                return StatusReport(ObservedState.PROCESSING, detail=f"not checked: {denied.message}")
            client = self.clients[request.platform]
            return await with_token(self.tokens, request.platform, request.account_id,
                                    lambda token: client.check_status(request.remote_handle, token,
                                                                      request.account_id))
        except PlatformError as error:
            # still processing as far as we know: the queue's processing deadline bounds it
            if read_refused_for_good(error):
                log.warning("status of %s on %s unreadable: %s: %s", request.target_id,
                            request.platform.value, error.code, error.message)
            # (an auth failure: with_token refreshed, then marked the account for reconnecting)
            return status_of_failed_read(error)
        except Exception as exc:
            log.exception("status check of %s failed unexpectedly", request.target_id)
            return StatusReport(ObservedState.PROCESSING, detail=f"internal_error: {type(exc).__name__}")

