"""Delivers each alert to each webhook, retrying its own failures on the notifier's timer."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from services.queue.domain import RetryPolicy
from services.runtime import Background, NotifierSettings, wait_or_timeout

from . import store
from .webhooks import Webhook, body_for

log = logging.getLogger("autopost.notifier")

BATCH = 100
MAX_IDLE_SECONDS = 30.0
ERROR_PAUSE_SECONDS = 1.0


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



    async def deliver_due(self) -> int:
        now = datetime.now(timezone.utc)
        async with self.pool.acquire() as conn, conn.transaction():
            due = await store.claim_due_deliveries(conn, now, BATCH)
            outcomes = await asyncio.gather(*(self._send(d) for d in due))
            for delivery, error in zip(due, outcomes):
                await self._record(conn, delivery, error, now)
        return len(due)

    async def _send(self, delivery: store.DueDelivery) -> str | None:
        hook = self.hooks.get(delivery.webhook)
        if hook is None:
            return "webhook no longer configured"
        try:
            response = await self.http.post(hook.url, json=body_for(delivery.alert, hook, self.settings.jaeger_url),
                                            timeout=self.settings.delivery_timeout_seconds)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}"  # never the URL: it may carry the receiver's secret
        return None if response.is_success else f"HTTP {response.status_code}"

    async def _record(self, conn, delivery: store.DueDelivery, error: str | None, now: datetime) -> None:
        alert_id = delivery.alert.alert_id
        if error is None:
            await store.record_delivery(conn, alert_id, delivery.webhook, delivered_at=now,
                                        next_attempt_at=None, error=None)
            return
        attempts = delivery.attempts + 1
        retry_at = None
        if not self.policy.exhausted(attempts) and delivery.webhook in self.hooks:
            retry_at = now + timedelta(seconds=self.policy.backoff(attempts, self.rng))
        log.warning("alert %s to %s failed (%s, attempt %d)%s", alert_id, delivery.webhook, error,
                    attempts, "" if retry_at else "; giving up")
        await store.record_delivery(conn, alert_id, delivery.webhook, delivered_at=None,
                                    next_attempt_at=retry_at, error=error)

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
