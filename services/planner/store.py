"""The planner's tables: the slots it planned, what each post was planned to post
(018_planner_post_contents.sql), and what each post earned (003_engagement.sql).

Every function takes the connection of the caller's transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from contracts import ContentType, Platform, PostContent, SlotChanged

from .domain import AccountKey, ChosenTime, PostedContent, Reading, ReleasedBy, released_by


@dataclass(frozen=True, slots=True)
class PlannedSlot:
    target_id: uuid.UUID
    post_id: uuid.UUID
    platform: Platform
    account_id: str
    content_type: ContentType
    timezone: str
    slot_at: datetime
    expected_engagement: float
    strategy: str


@dataclass(frozen=True, slots=True)
class ObservationRow:
    message_id: uuid.UUID
    target_id: uuid.UUID
    platform: Platform
    account_id: str
    content_type: ContentType
    hour_of_week: int
    published_at: datetime
    age_seconds: float
    final: bool
    views: int | None
    interactions: int
    audience_size: int | None
    rate: float | None
    expected_engagement: float
    strategy: str
    observed_at: datetime


def _lock_id(key: AccountKey | uuid.UUID) -> int:
    name = f"post:{key}" if isinstance(key, uuid.UUID) else f"{key[0].value}:{key[1]}"
    digest = hashlib.blake2b(f"planner:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_accounts(
    conn: asyncpg.Connection, keys: Iterable[AccountKey], post_ids: Iterable[uuid.UUID] = ()
) -> None:
    """Plan one account, and one post, in one transaction at a time, across replicas (until
    commit): two events of one upstream id for disjoint accounts are planned one after the other.

    Locks are taken in one order, so two batches sharing accounts or posts cannot deadlock.
    """
    ids = sorted({_lock_id(k) for k in keys} | {_lock_id(p) for p in post_ids})
    if ids:
        await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", ids)


@dataclass(frozen=True, slots=True)
class PlannedPosts:
    slots: dict[uuid.UUID, ChosenTime]  # by target id
    targets: dict[uuid.UUID, frozenset[AccountKey]]  # by post id: the accounts it was planned for


async def planned_posts(conn: asyncpg.Connection, post_ids: Iterable[uuid.UUID]) -> PlannedPosts:
    """What was planned for these posts: each target's slot (released or not), and each post's
    platform accounts (every target of a post is stored in one transaction)."""
    rows = await conn.fetch(
        """SELECT target_id, post_id, platform, account_id, slot_at, expected_engagement, strategy
           FROM planner_slots WHERE post_id = ANY($1::uuid[])""",
        list(set(post_ids)),
    )
    slots: dict[uuid.UUID, ChosenTime] = {}
    targets: dict[uuid.UUID, set[AccountKey]] = {}
    for r in rows:
        slots[r["target_id"]] = ChosenTime(r["slot_at"], r["expected_engagement"], r["strategy"])
        targets.setdefault(r["post_id"], set()).add((Platform(r["platform"]), r["account_id"]))
    return PlannedPosts(slots, {p: frozenset(keys) for p, keys in targets.items()})


async def planned_contents(conn: asyncpg.Connection, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PostedContent]:
    """What each planned post was planned to post, as `record_contents` kept it: the planner's
    own record, there whether the queue stored the post or not (a post given up too)."""
    rows = await conn.fetch(
        # as text: whatever the connection's jsonb codec
        """SELECT post_id, content::text AS content, texts::text AS texts FROM planner_post_contents
           WHERE post_id = ANY($1::uuid[])""",
        list(set(post_ids)))
    return {r["post_id"]: PostedContent(
        PostContent.model_validate_json(r["content"]),
        {(Platform(t["platform"]), t["accountId"]): (t["caption"], tuple(t["hashtags"]))
         for t in orjson.loads(r["texts"])})
        for r in rows}


async def record_contents(conn: asyncpg.Connection, contents: Mapping[uuid.UUID, PostedContent]) -> None:
    """Keep what each post was planned to post (018_planner_post_contents.sql), in the
    transaction that books its slots. A post planned again passed `reject_if_edited`, so its
    record stays as it is; one recorded anew is one whose slots were pruned (and its record
    about to be), which is planned as new."""
    if not contents:
        return
    await conn.execute(
        """INSERT INTO planner_post_contents AS c (post_id, content, texts)
           SELECT p, v::jsonb, t::jsonb FROM unnest($1::uuid[], $2::text[], $3::text[]) AS x(p, v, t)
           ON CONFLICT (post_id) DO UPDATE SET content = excluded.content, texts = excluded.texts,
                                               planned_at = excluded.planned_at
           WHERE (c.content, c.texts) IS DISTINCT FROM (excluded.content, excluded.texts)""",
        list(contents), [orjson.dumps(c.content.to_wire()).decode() for c in contents.values()],
        [_texts_json(c) for c in contents.values()])


def _texts_json(posted: PostedContent) -> str:
    """Each target's caption and hashtags, as a PlannedTarget has them on the wire."""
    return orjson.dumps([{"platform": platform.value, "accountId": account_id, "caption": caption,
                          "hashtags": list(hashtags)}
                         for (platform, account_id), (caption, hashtags) in posted.texts.items()]).decode()


async def calendars(
    conn: asyncpg.Connection, keys: Iterable[AccountKey], since: datetime
) -> dict[AccountKey, list[float]]:
    """The slots held for each account from `since` on (UTC epoch seconds, sorted).

    A slot is held (`released_by` NULL) until the queue releases it (slot.changed), or the
    planner gives its post up (`release_given_up`). A given-up post that is back counts again:
    sent again (planned anew from the same event) or stored after all (its dead letter
    replayed), until the queue changes its slot."""
    keys = list(keys)
    rows = await conn.fetch(
        """SELECT s.platform, s.account_id, s.slot_at FROM planner_slots s
           JOIN unnest($1::text[], $2::text[]) AS k(platform, account_id) USING (platform, account_id)
           WHERE s.slot_at >= $3
             AND (s.released_by IS NULL
                  OR s.released_by = $4
                     AND (EXISTS (SELECT 1 FROM planner_unconfirmed u WHERE u.post_id = s.post_id)
                          OR EXISTS (SELECT 1 FROM posts p WHERE p.post_id = s.post_id)))
           ORDER BY s.slot_at""",
        [k[0].value for k in keys], [k[1] for k in keys], since, ReleasedBy.PLANNER.value,
    )
    found: dict[AccountKey, list[float]] = {}
    for r in rows:
        found.setdefault((Platform(r["platform"]), r["account_id"]), []).append(r["slot_at"].timestamp())
    return found


async def apply_slot_changes(conn: asyncpg.Connection, changes: Sequence[SlotChanged]) -> int:
    """Release or move slots, each only over an older change (whoever released it before);
    returns the slots changed."""
    latest: dict[uuid.UUID, SlotChanged] = {}
    for change in changes:  # one row per target: UPDATE ... FROM would pick any of several
        if change.target_id not in latest or change.version > latest[change.target_id].version:
            latest[change.target_id] = change
    if not latest:
        return 0
    result = await conn.execute(
        """UPDATE planner_slots s SET released_by = u.released_by, released = u.released_by IS NOT NULL,
                  slot_at = COALESCE(u.slot_at, s.slot_at), queue_version = u.version
           FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[])
                AS u(target_id, version, released_by, slot_at)
           WHERE s.target_id = u.target_id AND s.queue_version < u.version""",
        list(latest), [c.version for c in latest.values()],
        [by.value if (by := released_by(c.change)) else None for c in latest.values()],
        [c.slot_at for c in latest.values()])
    return int(result.split()[-1])


async def insert_slots(conn: asyncpg.Connection, slots: Sequence[PlannedSlot]) -> None:
    """One slot per target: a target planned before keeps its first slot."""
    if not slots:
        return
    await conn.execute(
        """INSERT INTO planner_slots (target_id, post_id, platform, account_id, content_type, timezone,
                                      slot_at, expected_engagement, strategy)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::timestamptz[], $8::float8[], $9::text[])
           ON CONFLICT (target_id) DO NOTHING""",
        [s.target_id for s in slots], [s.post_id for s in slots], [s.platform.value for s in slots],
        [s.account_id for s in slots], [s.content_type.value for s in slots], [s.timezone for s in slots],
        [s.slot_at for s in slots], [s.expected_engagement for s in slots], [s.strategy for s in slots],
    )


async def slot_zones(conn: asyncpg.Connection, target_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The audience timezone each target was planned in."""
    rows = await conn.fetch(
        "SELECT target_id, timezone FROM planner_slots WHERE target_id = ANY($1::uuid[])", list(target_ids))
    return {r["target_id"]: r["timezone"] for r in rows}


async def record_observations(conn: asyncpg.Connection, rows: Sequence[ObservationRow]) -> set[AccountKey]:
    """Store each observation once (by message id; one per target and age); returns the
    accounts that learnt something new."""
    if not rows:
        return set()
    stored = await conn.fetch(
        """INSERT INTO engagement_observations (message_id, target_id, platform, account_id, content_type,
                   hour_of_week, published_at, age_seconds, final, views, interactions, audience_size, rate,
                   expected_engagement, strategy, observed_at)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::smallint[],
                                $7::timestamptz[], $8::float8[], $9::bool[], $10::bigint[], $11::bigint[],
                                $12::bigint[], $13::float8[], $14::float8[], $15::text[], $16::timestamptz[])
           ON CONFLICT DO NOTHING
           RETURNING platform, account_id""",
        [r.message_id for r in rows], [r.target_id for r in rows], [r.platform.value for r in rows],
        [r.account_id for r in rows], [r.content_type.value for r in rows], [r.hour_of_week for r in rows],
        [r.published_at for r in rows], [r.age_seconds for r in rows], [r.final for r in rows],
        [r.views for r in rows], [r.interactions for r in rows], [r.audience_size for r in rows],
        [r.rate for r in rows], [r.expected_engagement for r in rows], [r.strategy for r in rows],
        [r.observed_at for r in rows],
    )
    return {(Platform(r["platform"]), r["account_id"]) for r in stored}


async def readings(
    conn: asyncpg.Connection, keys: Iterable[AccountKey], since: datetime
) -> dict[AccountKey, list[Reading]]:
    """Each account's posts since `since` that could be normalised, at their most mature age."""
    keys = list(keys)
    rows = await conn.fetch(
        """SELECT DISTINCT ON (o.target_id) o.platform, o.account_id, o.hour_of_week, o.published_at,
                  o.rate, o.age_seconds, o.content_type, o.expected_engagement
           FROM engagement_observations o
           JOIN unnest($1::text[], $2::text[]) AS k(platform, account_id) USING (platform, account_id)
           WHERE o.published_at >= $3 AND o.rate IS NOT NULL
           ORDER BY o.target_id, o.age_seconds DESC""",
        [k[0].value for k in keys], [k[1] for k in keys], since,
    )
    found: dict[AccountKey, list[Reading]] = {k: [] for k in keys}
    for r in rows:
        found[(Platform(r["platform"]), r["account_id"])].append(Reading(
            how=r["hour_of_week"], epoch=r["published_at"].timestamp(), rate=r["rate"],
            age_seconds=r["age_seconds"], content_type=ContentType(r["content_type"]),
            expected=r["expected_engagement"] or None))
    return found


# -- post.planned until the queue has the post (005_planned_recovery.sql) -----------------------

@dataclass(frozen=True, slots=True)
class Unconfirmed:
    post_id: uuid.UUID
    topic: str
    payload: bytes
    headers: dict[str, str]
    resends: int


async def remember_sent(
    conn: asyncpg.Connection, sent: Sequence[tuple[uuid.UUID, str, bytes, dict[str, str]]], resend_at: datetime
) -> None:
    """Keep each post.planned sent (post id, topic, payload, headers) until the queue has its
    post; a post planned again keeps its first record."""
    if not sent:
        return
    await conn.execute(
        """INSERT INTO planner_unconfirmed (post_id, topic, payload, headers, resend_at)
           SELECT p, t, v, h, $5 FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[]) AS u(p, t, v, h)
           ON CONFLICT (post_id) DO NOTHING""",
        [s[0] for s in sent], [s[1] for s in sent], [s[2] for s in sent], [s[3] for s in sent], resend_at,
    )


async def forget_queued(conn: asyncpg.Connection) -> int:
    """Drop the posts the queue has stored: from then on the queue's record re-drives them."""
    # the one read of the queue's tables: does `posts` hold this id (its primary key)
    result = await conn.execute(
        "DELETE FROM planner_unconfirmed u USING posts p WHERE p.post_id = u.post_id")
    return int(result.split()[-1])


async def take_unconfirmed(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Unconfirmed]:
    """Unconfirmed posts whose time to be sent again has come, locked for this transaction."""
    rows = await conn.fetch(
        """SELECT post_id, topic, payload, headers, resends FROM planner_unconfirmed
           WHERE resend_at <= $1 ORDER BY resend_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now, limit,
    )
    return [Unconfirmed(r["post_id"], r["topic"], bytes(r["payload"]), r["headers"], r["resends"]) for r in rows]


async def mark_resent(conn: asyncpg.Connection, resent: Sequence[tuple[uuid.UUID, datetime]]) -> None:
    await conn.execute(
        """UPDATE planner_unconfirmed u SET resends = u.resends + 1, resend_at = r.at
           FROM unnest($1::uuid[], $2::timestamptz[]) AS r(post_id, at) WHERE u.post_id = r.post_id""",
        [r[0] for r in resent], [r[1] for r in resent],
    )


async def forget(conn: asyncpg.Connection, post_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute("DELETE FROM planner_unconfirmed WHERE post_id = ANY($1::uuid[])", list(post_ids))


async def release_given_up(conn: asyncpg.Connection, post_ids: Sequence[uuid.UUID]) -> int:
    """Release the slots of posts given up to the dead letters: a post the queue never stored
    will not go out, and must not hold its accounts' spacing and daily caps.

    Released by the planner (`released_by`): `calendars` counts one again if its post comes
    back, and the queue's changes apply over it as over any. A post the queue stored meanwhile
    keeps its slots: from then on they are the queue's to release. Returns the slots released."""
    result = await conn.execute(
        """UPDATE planner_slots s SET released_by = $2, released = true
           WHERE s.post_id = ANY($1::uuid[]) AND s.released_by IS NULL
             AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.post_id = s.post_id)""",
        list(post_ids), ReleasedBy.PLANNER.value)
    return int(result.split()[-1])
