"""alerts and dead-letter in; each stored once, and an alert for every new dead letter."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

import asyncpg

from contracts import AdminAlert, AlertKind, ContractError, DeadLetter, Topics
from services.runtime import Record, ServiceContext, dead_letter_of, trace_id_of

from . import store
from .webhooks import Webhook

log = logging.getLogger("autopost.notifier")

DEAD_LETTER_ALERTS = uuid.UUID("0f4c2a4e-3d0b-5a77-9f50-2b3f1c8e6d21")


class NotifierHandlers:
    def __init__(self, ctx: ServiceContext, pool: asyncpg.Pool, hooks: list[Webhook], on_new):
        self.ctx, self.pool, self.hooks, self.on_new = ctx, pool, hooks, on_new

    async def received(self, records: list[Record]) -> None:
        now = datetime.now(timezone.utc)
        alerts, letters = [], []
        dead_letter_topic = self.ctx.topic(Topics.DEAD_LETTER)
        for record in records:
            try:
                if record.topic == dead_letter_topic:
                    letters.append(DeadLetter.from_bytes(record.value))
                else:
                    alerts.append(AdminAlert.from_bytes(record.value))
            except ContractError as error:
                # kept here, as every dead letter is: sent to the dead-letter topic it would
                # come back to this consumer, and one on that topic would go round for ever
                log.warning("dead-lettering %s@%s/%s: %s", record.topic, record.partition, record.offset, error)
                letters.append(dead_letter_of(record, reason=error.reason, message=error.message,
                                              consumer="notifier"))
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await store.store_dead_letters(conn, letters)
            alerts += [dead_letter_alert(row_id, letter, now) for row_id, letter in stored]
            new = await store.store_alerts(conn, alerts, self.hooks, now)
        for alert in new:
            log.warning("alert %s %s: %s", alert.kind.value, alert.reason, alert.message)
        if new:
            self.on_new()


def dead_letter_alert(row_id: int, letter: DeadLetter, now: datetime) -> AdminAlert:
    """The alert of a dead letter just stored (once: the store keeps each letter once). Named by
    its row: letters of messages never consumed have no source position to tell them apart."""
    return AdminAlert(
        alert_id=uuid.uuid5(DEAD_LETTER_ALERTS, f"dead-letter:{row_id}"),
        kind=AlertKind.DEAD_LETTER,
        reason=letter.reason[:500],
        message=(f"{letter.consumer} set aside a message from {letter.source_topic} "
                 f"(dead letter {row_id}): {letter.message} — `autopost dlq show {row_id}`")[:4000],
        trace_id=trace_id_of(letter.headers),
        raised_at=now,
    )
