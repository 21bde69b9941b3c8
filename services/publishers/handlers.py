"""publish.requested.<platform> in, publish.result out: one result per request, in its trace."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from opentelemetry import trace

from contracts import (
    ContractError,
    ErrorClass,
    PublishOutcome,
    PublishRequested,
    PublishResult,
    Topics,
)
from services.runtime import (
    Outgoing,
    Record,
    ServiceContext,
    context_from,
    current_carrier,
    map_by_key,
    metrics,
)

from .handles import JournalSource
from .limits import HandedOver, serving
from .platforms import Accepted, LiveObjectWatch, PlatformClient, PlatformError, Published
from .preflight import Preflight

log = logging.getLogger("autopost.publisher")


class PublishHandlers:
    def __init__(
        self, ctx: ServiceContext, client: PlatformClient, preflight: Preflight, journals: JournalSource
    ):
        self.ctx = ctx
        self.client = client
        self.preflight = preflight  # rules, token (refreshed on AUTH), quotas
        self.journals = journals  # the remote handles, read back first: resume, never post twice

    async def requested(self, records: list[Record]) -> None:
        outgoing = await map_by_key(records, self._publish_one, self.ctx.settings.publisher_concurrency)
        await self.ctx.send([o for o in outgoing if o is not None])

    @metrics.timed("publish")
    async def _publish_one(self, record: Record) -> Outgoing | None:
        try:
            request = PublishRequested.from_bytes(record.value)
        except ContractError as error:
            return self.ctx.dead_letter(record, error)
        if self.client.limits.handed_over(record.partition):
            return None  # its partition is another replica's now: so is the request
        with serving(record.partition), self.ctx.tracer.start_as_current_span(
            f"publish {request.platform.value}",
            context=context_from(record.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={"autopost.target_id": str(request.target_id),
                        "autopost.account_id": request.account_id,
                        "autopost.attempt": request.attempt},
        ) as span:
            try:
                result = await self._attempt(request)
            except HandedOver:
                # stopped before a capped call: the new owner reads the request again and resumes
                # what this attempt made, from its journal
                span.set_attribute("autopost.outcome", "handed_over")
                log.info("publish of %s handed over with its partition", request.target_id)
                return None
            metrics.record_publish_result(request, result)
            span.set_attribute("autopost.outcome", result.outcome.value)
            if result.error:
                span.set_status(trace.Status(trace.StatusCode.ERROR, result.error.code))
            return Outgoing.of(self.ctx.topic(Topics.PUBLISH_RESULT), request.target_id, result,
                               current_carrier())

    async def _attempt(self, request: PublishRequested) -> PublishResult:
        try:
            outcome = await self.preflight.publish(request, self._send)
        except PlatformError as error:
            return self._result(request, PublishOutcome.FAILED, handle=error.handle, error=error.to_contract())
        except Exception as exc:  # a bug or an unclassified failure: retry, never lose the target
            return self._result(request, PublishOutcome.FAILED, error=_unexpected(request, exc).to_contract())
        if isinstance(outcome, Published):
            return self._result(request, PublishOutcome.PUBLISHED, handle=outcome.handle, url=outcome.url)
        assert isinstance(outcome, Accepted)
        return self._result(request, PublishOutcome.ACCEPTED, handle=outcome.handle)

    async def _send(self, request: PublishRequested, token: str) -> Accepted | Published:
        """The platform calls, once the preflight passed; the client holds the per-account,
        per-endpoint caps, and the journal every remote handle the moment it is returned."""
        with metrics.PLATFORM_CALL_DURATION.labels(request.platform.value, "publish").time():
            async with self.journals.journal_for(request) as journal:
                watched = LiveObjectWatch(journal)
                try:
                    return await self.client.publish(request, token, watched)
                except PlatformError as error:
                    # failed with a remote object live (a resume's status read, an upload out of
                    # step): the post may exist, so its quota is kept, and the queue hears of it
                    if error.handle is None and watched.live is not None:
                        error.handle = watched.live
                    raise
                except Exception as exc:
                    if watched.live is None:
                        raise
                    # ours failed (a journal save, a bug) once the platform had made something:
                    # retried as any unexpected failure, with the handle for the queue to keep
                    raise _unexpected(request, exc, watched.live) from exc

    @staticmethod
    def _result(request: PublishRequested, outcome: PublishOutcome, *, handle=None, url=None,
                error=None) -> PublishResult:
        # one id per request and answer: a request read twice and answered alike is applied
        # once, but another answer to it is news (another publisher's publish_in_progress, then
        # this one's success, which the queue must not drop as a repeat)
        answer = f"result:{outcome.value}:{error.code if error else ''}"
        return PublishResult(
            message_id=uuid.uuid5(request.message_id, answer),
            target_id=request.target_id,
            attempt=request.attempt,
            outcome=outcome,
            remote_handle=handle,
            url=url,
            error=error,
            occurred_at=datetime.now(timezone.utc),
        )


def _unexpected(request: PublishRequested, exc: Exception, handle=None) -> PlatformError:
    """A bug or an unclassified failure, logged: retried, never the target lost."""
    log.exception("publish of %s failed unexpectedly", request.target_id)
    return PlatformError(ErrorClass.RETRYABLE, "internal_error", type(exc).__name__, handle=handle)
