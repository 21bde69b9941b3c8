"""The notifier's tables: alerts received once each, their deliveries, and dead letters."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from contracts import AdminAlert, DeadLetter
from services.runtime import payload_digest

from .webhooks import Webhook

log = logging.getLogger("autopost.notifier")


async def store_alerts(conn: asyncpg.Connection, alerts: Sequence[AdminAlert], hooks: Sequence[Webhook],
                       now: datetime) -> list[AdminAlert]:
    """Record alerts not seen before and a delivery to every webhook, due now; returns the new."""
    if not alerts:
        return []
    unique = {a.alert_id: a for a in alerts}
    new_ids = {r["alert_id"] for r in await conn.fetch(
        """INSERT INTO alerts (alert_id, kind, payload)
           SELECT i, k, p::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS x(i, k, p)
           ON CONFLICT DO NOTHING RETURNING alert_id""",
        list(unique), [a.kind.value for a in unique.values()],
        [orjson.dumps(a.to_wire()).decode() for a in unique.values()],
    )}
    pairs = [(alert_id, hook.name) for alert_id in new_ids for hook in hooks]
    if pairs:
        await conn.execute(
            """INSERT INTO alert_deliveries (alert_id, webhook, next_attempt_at)
               SELECT a, w, $3 FROM unnest($1::uuid[], $2::text[]) AS x(a, w) ON CONFLICT DO NOTHING""",
            [a for a, _ in pairs], [w for _, w in pairs], now,
        )
    return [unique[i] for i in new_ids]


async def store_dead_letters(conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> list[tuple[int, DeadLetter]]:
    """Keep each dead letter once (by consumer, source position and the record's key and
    payload, or for a message never consumed, by its failure time and payload); returns
    (id, letter) of the new. The payload is told by the digest of the record's whole value: the
    letter's `payload_sha256`, or for a letter kept whole without one (an older producer's), its
    payload's; a truncated letter without one, only by the part it kept (migration 017)."""
    stored = []
    for letter in letters:
        payload = _b64(letter.payload_base64)
        digest = letter.payload_sha256
        if digest is None and not letter.truncated:
            digest = payload_digest(payload)
        row_id = await conn.fetchval(
            """INSERT INTO dead_letters (consumer, reason, message, source_topic, source_partition,
                                         source_offset, key, payload, headers, failed_at, truncated,
                                         payload_bytes, payload_sha256)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13)
               ON CONFLICT DO NOTHING  -- kept already: its source record, or (never consumed) its failure
               RETURNING id""",
            letter.consumer, letter.reason, letter.message, letter.source_topic, letter.source_partition,
            letter.source_offset, _b64(letter.key_base64), payload,
            letter.headers, letter.failed_at, letter.truncated, letter.payload_bytes, digest,
        )
        if row_id is not None:
            stored.append((row_id, letter))
    return stored


def _b64(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text is not None else None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    alert: AdminAlert
    webhook: str
    attempts: int


async def claim_due_deliveries(conn: asyncpg.Connection, now: datetime, limit: int,
                               lease_until: datetime, max_attempts: int) -> list[DueDelivery]:
    """Take the deliveries due: each counts an attempt and is not due again before
    `lease_until` (another notifier, or this one after a crash, sends it then). Commit before
    sending, so no row stays locked through an HTTP request. A delivery whose stored alert no
    longer reads is given up here, with a log, and not returned; so is one already sent
    `max_attempts` times whose outcome was never recorded (a notifier that dies during every
    send of it would otherwise send it forever, a lease apart)."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT d.alert_id, d.webhook FROM alert_deliveries d
               WHERE d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2
               FOR UPDATE SKIP LOCKED)
           UPDATE alert_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $3
           FROM due, alerts a
           WHERE d.alert_id = due.alert_id AND d.webhook = due.webhook AND a.alert_id = d.alert_id
           RETURNING d.alert_id, d.webhook, d.attempts, d.last_error, a.payload""",
        now, limit, lease_until,
    )
    due = []
    for r in rows:
        if r["attempts"] > max_attempts:
            log.error("alert %s to %s given up: no outcome recorded after %d sends",
                      r["alert_id"], r["webhook"], max_attempts)
            await record_delivery(conn, r["alert_id"], r["webhook"], delivered_at=None, next_attempt_at=None,
                                  error=f"no outcome recorded after {max_attempts} sends"
                                        + (f" (last error: {r['last_error']})" if r["last_error"] else ""))
            continue
        try:
            alert = AdminAlert.model_validate(r["payload"])
        except Exception as exc:  # a stored alert this version cannot read: it never will
            log.error("alert %s to %s given up: its stored payload no longer reads (%s)",
                      r["alert_id"], r["webhook"], type(exc).__name__)
            await record_delivery(conn, r["alert_id"], r["webhook"], delivered_at=None, next_attempt_at=None,
                                  error=f"stored alert unreadable: {type(exc).__name__}")
            continue
        due.append(DueDelivery(alert, r["webhook"], r["attempts"]))
    return due


async def record_delivery(conn: asyncpg.Connection, alert_id: uuid.UUID, webhook: str, *,
                          delivered_at: datetime | None, next_attempt_at: datetime | None,
                          error: str | None) -> None:
    """The outcome of an attempt already counted when it was claimed."""
    await conn.execute(
        """UPDATE alert_deliveries SET delivered_at = $3, next_attempt_at = $4, last_error = $5
           WHERE alert_id = $1 AND webhook = $2""",
        alert_id, webhook, delivered_at, next_attempt_at, error,
    )


async def next_delivery_at(conn: asyncpg.Connection) -> datetime | None:
    return await conn.fetchval("SELECT min(next_attempt_at) FROM alert_deliveries")
