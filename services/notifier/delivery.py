"""Delivers each alert to each webhook, retrying its own failures on the notifier's timer."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from services.queue.domain import RetryPolicy
from services.runtime import (
    Background,
    NotifierSettings,
    retry_after_seconds,
    wait_or_timeout,
)

from . import store
from .webhooks import Webhook, body_for

log = logging.getLogger("autopost.notifier")

BATCH = 100
MAX_IDLE_SECONDS = 30.0
ERROR_PAUSE_SECONDS = 1.0


class WebhookUrlRedaction(logging.Filter):
    """On the `httpx` logger: a record naming one of these webhooks' URLs (httpx logs
    `HTTP Request: POST <url>` at INFO for every request) names the webhook instead, for a
    webhook's path or query is often its secret (a Slack URL's is). Other requests, another
    service's in the same process, are logged as they were."""

    def __init__(self, hooks: list[Webhook]):
        super().__init__()
        self.names = {}
        for hook in hooks:
            try:
                self.names[str(httpx.URL(hook.url))] = hook.name
            except Exception:  # noqa: BLE001 - one httpx cannot send to is never logged by it either
                continue
            self.names.setdefault(hook.url, hook.name)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) in self.names for a in record.args
                                                   if isinstance(a, (str, httpx.URL))):
            record.args = tuple(f"<webhook {self.names[str(a)]}>"
                                if isinstance(a, (str, httpx.URL)) and str(a) in self.names else a
                                for a in record.args)
        elif isinstance(record.msg, str) and any(url in record.msg for url in self.names):
            message = record.getMessage()
            for url, name in self.names.items():
                message = message.replace(url, f"<webhook {name}>")
            record.msg, record.args = message, ()
        return True

    def install(self) -> "WebhookUrlRedaction":
        logging.getLogger("httpx").addFilter(self)
        return self

    def remove(self) -> None:
        logging.getLogger("httpx").removeFilter(self)


class DeliveryLoop(Background):
    task_name = "alert-delivery"

    def __init__(self, pool: asyncpg.Pool, http: httpx.AsyncClient, hooks: list[Webhook],
                 settings: NotifierSettings, *, rng: random.Random | None = None):
        self.pool, self.http, self.settings = pool, http, settings
        self.hooks = {h.name: h for h in hooks}
        self.policy = RetryPolicy(base_seconds=settings.retry_base_seconds, cap_seconds=1800.0,
                                  max_attempts=settings.max_delivery_attempts)
        self.rng = rng or random.Random()
        self.wake = asyncio.Event()



    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery waits before it is due again if no outcome is recorded
        (the process died mid-send): past any send's bound."""
        return 3 * self.settings.delivery_timeout_seconds + 30.0

    async def deliver_due(self) -> int:
        now = datetime.now(timezone.utc)
        # claimed and committed first: no row stays locked through the HTTP requests, and a
        # crash after a send re-sends that one delivery when its lease ends, not the batch at once
        async with self.pool.acquire() as conn, conn.transaction():
            due = await store.claim_due_deliveries(conn, now, BATCH, now + timedelta(seconds=self.lease_seconds),
                                                   self.policy.max_attempts)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._send(d) for d in due))
        finished = datetime.now(timezone.utc)
        async with self.pool.acquire() as conn:
            for delivery, (error, retry_after) in zip(due, outcomes):
                # each its own statement: one that fails leaves the others recorded (and it is
                # sent again when its lease ends)
                await self._record(conn, delivery, error, retry_after, finished)
        return len(due)

    async def _send(self, delivery: store.DueDelivery) -> tuple[str | None, float | None]:
        """(None, None) once delivered; else why not, and the receiver's Retry-After if it gave one.
        Never raises: one delivery's failure is that delivery's alone."""
        hook = self.hooks.get(delivery.webhook)
        if hook is None:
            return "webhook no longer configured", None
        try:
            body = body_for(delivery.alert, hook, self.settings.jaeger_url)
            timeout = self.settings.delivery_timeout_seconds
            # httpx's timeout is per phase: the whole send is bounded too (within the lease)
            async with asyncio.timeout(2 * timeout):
                response = await self.http.post(hook.url, json=body, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return "TimeoutError", None
        except Exception as exc:
            # never the message: an httpx error's may carry the URL, and the URL the receiver's secret
            if not type(exc).__module__.startswith(("httpx", "httpcore")):
                log.error("alert %s to %s: unexpected %s sending", delivery.alert.alert_id, hook.name,
                          type(exc).__name__)
            return type(exc).__name__, None
        if response.is_success:
            return None, None
        retry_after = retry_after_seconds(response) if response.status_code in (429, 503) else None
        return f"HTTP {response.status_code}", retry_after

    async def _record(self, conn, delivery: store.DueDelivery, error: str | None, retry_after: float | None,
                      now: datetime) -> None:
        alert_id = delivery.alert.alert_id
        try:
            if error is None:
                await store.record_delivery(conn, alert_id, delivery.webhook, delivered_at=now,
                                            next_attempt_at=None, error=None)
                return
            attempts = delivery.attempts  # counted when claimed
            retry_at = None
            if not self.policy.exhausted(attempts) and delivery.webhook in self.hooks:
                retry_at = now + timedelta(seconds=self.policy.backoff(attempts, self.rng, retry_after))
            log.warning("alert %s to %s failed (%s, attempt %d)%s", alert_id, delivery.webhook, error,
                        attempts, "" if retry_at else "; giving up")
            await store.record_delivery(conn, alert_id, delivery.webhook, delivered_at=None,
                                        next_attempt_at=retry_at, error=error)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            log.error("alert %s to %s: outcome not recorded (%s); sent again after its lease",
                      alert_id, delivery.webhook, type(exc).__name__)

    async def _run(self) -> None:
        while True:
            try:
                self.wake.clear()
                if await self.deliver_due() >= BATCH:
                    continue
                async with self.pool.acquire() as conn:
                    next_at = await store.next_delivery_at(conn)
                timeout = MAX_IDLE_SECONDS
                if next_at is not None:
                    timeout = min(timeout, max(0.0, (next_at - datetime.now(timezone.utc)).total_seconds()))
                await wait_or_timeout(self.wake, timeout)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert delivery failed; retrying")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
