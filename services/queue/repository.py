"""SQL for the queue's tables. Every function takes the connection of the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from contracts import Platform, PostPlanned
from services.runtime import Outgoing

from .domain import WAITING_TO_PUBLISH, Change, TargetState, TargetStatus

NOTIFY_CHANNEL = "autopost_targets_due"

_STATE_COLUMNS = (
    "t.target_id, t.status, t.version, t.attempt, t.due_at, t.status_checks, t.remote_handle,"
    " t.url, t.last_error, t.published_at, t.scheduled_time, t.failures, t.deferred_since,"
    " t.quota_alerted, t.engagement_checks, t.processing_since"
)
# what an alert or an operator needs to say about a target besides its state
_IDENTITY_COLUMNS = "t.post_id, t.platform, t.account_id, p.upstream_id, p.trace_context, t.updated_at"


@dataclass(frozen=True, slots=True)
class DueTarget:
    """A claimed target with what a publish or status request needs to say."""

    state: TargetState
    post_id: uuid.UUID
    platform: str
    account_id: str
    upstream_id: str
    caption: str
    hashtags: list[str]
    scheduled_time: datetime
    content: dict[str, Any]
    trace_context: dict[str, str]


def _state(row: asyncpg.Record) -> TargetState:
    return TargetState(
        target_id=row["target_id"],
        status=TargetStatus(row["status"]),
        version=row["version"],
        attempt=row["attempt"],
        due_at=row["due_at"],
        status_checks=row["status_checks"],
        remote_handle=row["remote_handle"],
        url=row["url"],
        last_error=row["last_error"],
        published_at=row["published_at"],
        scheduled_time=row["scheduled_time"],
        failures=row["failures"],
        deferred_since=row["deferred_since"],
        quota_alerted=row["quota_alerted"],
        engagement_checks=row["engagement_checks"],
        processing_since=row["processing_since"],
    )


@dataclass(frozen=True, slots=True)
class LockedTarget:
    """A target locked for a change, with who it belongs to."""

    state: TargetState
    post_id: uuid.UUID
    platform: str
    account_id: str
    upstream_id: str
    trace_context: dict[str, str]
    changed_at: datetime  # its last change (for a target failed for review: when it failed)


def _locked(row: asyncpg.Record) -> LockedTarget:
    return LockedTarget(_state(row), row["post_id"], row["platform"], row["account_id"],
                        row["upstream_id"], row["trace_context"], row["updated_at"])


async def insert_planned(
    conn: asyncpg.Connection, planned: Sequence[PostPlanned], carriers: Sequence[dict[str, str]]
) -> int:
    """Store new posts and their targets; posts already stored are left as they are."""
    new_ids = {
        r["post_id"]
        for r in await conn.fetch(
            """INSERT INTO posts (post_id, upstream_id, content, trace_context)
               SELECT p, u, c::jsonb, t::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
                   AS x(p, u, c, t)
               ON CONFLICT DO NOTHING RETURNING post_id""",
            [p.post_id for p in planned],
            [p.upstream_id for p in planned],
            [orjson.dumps(p.content.to_wire()).decode() for p in planned],
            [orjson.dumps(c).decode() for c in carriers],
        )
    }
    targets = [(p, t) for p in planned if p.post_id in new_ids for t in p.targets]
    if not targets:
        return 0
    await conn.execute(
        """INSERT INTO targets (target_id, post_id, platform, account_id, caption, hashtags,
                                scheduled_time, expected_engagement, strategy, status, due_at)
           SELECT t, p, pl, a, c, string_to_array(h, E'\\x1f'), s, e, st, 'pending', s
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::timestamptz[], $8::float8[], $9::text[]) AS x(t, p, pl, a, c, h, s, e, st)
           ON CONFLICT DO NOTHING""",
        [t.target_id for _, t in targets],
        [p.post_id for p, _ in targets],
        [t.platform.value for _, t in targets],
        [t.account_id for _, t in targets],
        [t.caption for _, t in targets],
        ["\x1f".join(t.hashtags) for _, t in targets],
        [t.scheduled_time for _, t in targets],
        [t.expected_engagement for _, t in targets],
        [t.strategy for _, t in targets],
    )
    return len(targets)


# What each claim may take, as SQL constants. Spelt out rather than bound: a partial index is
# used only when the query's own predicate proves the index's, which a parameter (whose value a
# prepared statement's generic plan does not know) never does. These must equal the predicates of
# the indexes of migration 012 (a test checks that the plans use them).
_WAITING_SQL = "(" + ", ".join(sorted(f"'{s.value}'" for s in WAITING_TO_PUBLISH)) + ")"
# checks, leases, engagement collections: index targets_due_following
_FOLLOWING = f"t.status NOT IN {_WAITING_SQL}"
# a platform's targets waiting to be published: index targets_due_to_publish_<platform>. One index
# per platform, on due_at alone, and not one on (platform, due_at): the planner then never prefers
# targets_due_at (which it could, from the heap's order, and read a held-back backlog again).
_TO_PUBLISH = {p.value: f"t.platform = '{p.value}' AND t.status IN {_WAITING_SQL}" for p in Platform}

_CLAIM = f"""SELECT {_STATE_COLUMNS}, {_IDENTITY_COLUMNS}, t.caption, t.hashtags, p.content
              FROM targets t JOIN posts p ON p.post_id = t.post_id
              WHERE t.due_at IS NOT NULL AND t.due_at <= $1 AND {{which}}
              ORDER BY t.due_at
              LIMIT $2
              FOR UPDATE OF t SKIP LOCKED"""
_CLAIM_ANY = _CLAIM.format(which="TRUE")
_CLAIM_FOLLOWING = _CLAIM.format(which=_FOLLOWING)
_CLAIM_TO_PUBLISH = {platform: _CLAIM.format(which=which) for platform, which in _TO_PUBLISH.items()}


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int,
                    room: Mapping[str, int] | None = None) -> tuple[list[DueTarget], bool]:
    """Lock due targets, oldest first, up to `limit` of a kind; other dispatchers skip them.
    Returns them, and whether a kind filled its `limit` (more may be due already).

    With `room` (platform -> publish requests it may still take), a platform's targets waiting
    to be published are claimed on their own, no more than its room: one platform's backlog,
    older than the others', never holds theirs up, nor is it locked only to be left. Status
    checks, expired leases and engagement collections are claimed apart, whatever the room.
    """
    if room is None:
        rows = await conn.fetch(_CLAIM_ANY, now, limit)
        return [_due(r) for r in rows], len(rows) >= limit
    rows = list(await conn.fetch(_CLAIM_FOLLOWING, now, limit))
    full = len(rows) >= limit
    for platform, n in room.items():
        if n > 0:
            to_publish = await conn.fetch(_CLAIM_TO_PUBLISH[platform], now, min(n, limit))
            full |= len(to_publish) >= limit  # a platform short of room waits for results, which wake us
            rows.extend(to_publish)
    return [_due(r) for r in rows], full


def _due(r: asyncpg.Record) -> DueTarget:
    return DueTarget(
        state=_state(r),
        post_id=r["post_id"],
        platform=r["platform"],
        account_id=r["account_id"],
        upstream_id=r["upstream_id"],
        caption=r["caption"],
        hashtags=list(r["hashtags"]),
        scheduled_time=r["scheduled_time"],
        content=r["content"],
        trace_context=r["trace_context"],
    )


async def publishing_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Targets whose publish request is out, per platform."""
    rows = await conn.fetch("SELECT platform, count(*) AS n FROM targets WHERE status = 'publishing' GROUP BY 1")
    return {r["platform"]: r["n"] for r in rows}


async def lock_targets(conn: asyncpg.Connection, target_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, LockedTarget]:
    """Lock targets (in id order, so concurrent lockers cannot deadlock)."""
    rows = await conn.fetch(
        f"""SELECT {_STATE_COLUMNS}, {_IDENTITY_COLUMNS}
            FROM targets t JOIN posts p ON p.post_id = t.post_id
            WHERE t.target_id = ANY($1::uuid[])
            ORDER BY t.target_id
            FOR UPDATE OF t""",
        sorted(set(target_ids)),
    )
    return {r["target_id"]: _locked(r) for r in rows}


# Each reference compared in its own type, so that each is an index lookup (targets' primary
# key, targets_post_id, posts' unique upstream_id) rather than a cast of every row to text. The
# post ids are gathered first (an init plan, run once), so `post_id = ANY(...)` is indexable too.
_LOCK_TARGETS_OF = f"""SELECT {_STATE_COLUMNS}, {_IDENTITY_COLUMNS}
    FROM targets t JOIN posts p ON p.post_id = t.post_id
    WHERE t.target_id = $1::uuid
       OR t.post_id = ANY(ARRAY(SELECT $1::uuid UNION ALL SELECT post_id FROM posts WHERE upstream_id = $2))
    ORDER BY t.target_id
    FOR UPDATE OF t"""


async def lock_targets_of(conn: asyncpg.Connection, ref: str) -> list[LockedTarget]:
    """An operator's reference: a target id, a post id or an upstream id; locked, in id order."""
    try:
        as_uuid: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        as_uuid = None  # only an upstream id
    rows = await conn.fetch(_LOCK_TARGETS_OF, as_uuid, ref)
    return [_locked(r) for r in rows]


@dataclass(frozen=True, slots=True)
class EngagementContext:
    """What the planner is told of a posted target along with its engagement."""

    post_id: uuid.UUID
    platform: str
    account_id: str
    content_type: str
    scheduled_time: datetime
    expected_engagement: float
    strategy: str
    trace_context: dict[str, str]


async def engagement_contexts(
    conn: asyncpg.Connection, target_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, EngagementContext]:
    rows = await conn.fetch(
        """SELECT t.target_id, t.post_id, t.platform, t.account_id, p.content->>'contentType' AS content_type,
                  t.scheduled_time, t.expected_engagement, t.strategy, p.trace_context
           FROM targets t JOIN posts p ON p.post_id = t.post_id
           WHERE t.target_id = ANY($1::uuid[])""",
        list(set(target_ids)),
    )
    return {
        r["target_id"]: EngagementContext(
            r["post_id"], r["platform"], r["account_id"], r["content_type"], r["scheduled_time"],
            r["expected_engagement"], r["strategy"], r["trace_context"])
        for r in rows
    }


async def save_changes(conn: asyncpg.Connection, changes: Sequence[tuple[int, Change]]) -> int:
    """Write each change guarded by the version it was decided on; returns rows written."""
    if not changes:
        return 0
    states = [c.state for _, c in changes]
    result = await conn.execute(
        """UPDATE targets t SET status = u.status, version = u.version, attempt = u.attempt,
                  due_at = u.due_at, status_checks = u.status_checks,
                  remote_handle = u.remote_handle::jsonb, url = u.url,
                  last_error = u.last_error::jsonb, published_at = u.published_at,
                  scheduled_time = u.scheduled_time, failures = u.failures,
                  deferred_since = u.deferred_since, quota_alerted = u.quota_alerted,
                  engagement_checks = u.engagement_checks, processing_since = u.processing_since,
                  updated_at = now()
           FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::int[], $6::timestamptz[],
                       $7::int[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                       $12::timestamptz[], $13::int[], $14::timestamptz[], $15::bool[], $16::int[],
                       $17::timestamptz[])
                AS u(target_id, expected_version, status, version, attempt, due_at, status_checks,
                     remote_handle, url, last_error, published_at, scheduled_time, failures,
                     deferred_since, quota_alerted, engagement_checks, processing_since)
           WHERE t.target_id = u.target_id AND t.version = u.expected_version""",
        [s.target_id for s in states],
        [expected for expected, _ in changes],
        [s.status.value for s in states],
        [s.version for s in states],
        [s.attempt for s in states],
        [s.due_at for s in states],
        [s.status_checks for s in states],
        [_json_or_none(s.remote_handle) for s in states],
        [s.url for s in states],
        [_json_or_none(s.last_error) for s in states],
        [s.published_at for s in states],
        [s.scheduled_time for s in states],
        [s.failures for s in states],
        [s.deferred_since for s in states],
        [s.quota_alerted for s in states],
        [s.engagement_checks for s in states],
        [s.processing_since for s in states],
    )
    return int(result.split()[-1])


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


async def record_attempts(conn: asyncpg.Connection, rows: Sequence[tuple]) -> None:
    """rows: (target_id, attempt, outcome, error_class, error_code, message, trace_id)."""
    if rows:
        await conn.executemany(
            """INSERT INTO attempts (target_id, attempt, outcome, error_class, error_code, message,
                                     trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            rows,
        )


async def first_sightings(conn: asyncpg.Connection, consumer: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Record message ids for `consumer`; returns those not seen before."""
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::uuid[])
           ON CONFLICT DO NOTHING RETURNING message_id""",
        consumer,
        list(ids),
    )
    return {r["message_id"] for r in rows}


async def write_outbox(conn: asyncpg.Connection, messages: Sequence[Outgoing]) -> None:
    if messages:
        await conn.execute(
            """INSERT INTO outbox (topic, key, payload, headers)
               SELECT tp, k, p, h::jsonb FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[])
                   AS x(tp, k, p, h)""",
            [m.topic for m in messages],
            [m.key for m in messages],
            [m.value for m in messages],
            [orjson.dumps(m.headers).decode() for m in messages],
        )


async def oldest_unsent_at(conn: asyncpg.Connection) -> datetime | None:
    """When the oldest message still in the outbox was written: every one written before it has
    been sent (the relay deletes a row once Kafka confirmed it). None when the outbox is empty."""
    return await conn.fetchval("SELECT created_at FROM outbox ORDER BY id LIMIT 1")


async def take_outbox(conn: asyncpg.Connection, limit: int) -> list[tuple[int, Outgoing]]:
    rows = await conn.fetch(
        "SELECT id, topic, key, payload, headers FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [(r["id"], Outgoing(r["topic"], r["key"], bytes(r["payload"]), r["headers"])) for r in rows]


async def delete_outbox(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))


def _next_due_sql(platforms: Sequence[str]) -> str:
    """The earliest timer of the targets followed (checks, leases, engagement) and of those
    waiting to be published on `platforms`: each the first entry of a partial index."""
    firsts = [f"(SELECT min(t.due_at) FROM targets t WHERE t.due_at IS NOT NULL AND {which})"
              for which in [_FOLLOWING, *(_TO_PUBLISH[p] for p in platforms)]]
    return "SELECT LEAST(" + ", ".join(firsts) + ")"


async def next_due_at(conn: asyncpg.Connection, held_back: Sequence[str] = ()) -> datetime | None:
    """The next due time, not counting targets of `held_back` platforms waiting to be published."""
    if not held_back:
        return await conn.fetchval("SELECT min(due_at) FROM targets WHERE due_at IS NOT NULL")
    # (targets of a platform the queue does not know, of which there are none, are not counted)
    held = set(held_back)
    return await conn.fetchval(_next_due_sql([p for p in _TO_PUBLISH if p not in held]))


async def notify_due(conn: asyncpg.Connection) -> None:
    """Wake every replica's dispatcher; sent once per transaction (NOTIFY locks at commit)."""
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
