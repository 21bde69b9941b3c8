"""What operators read about posts: the list, and one post's timeline of every attempt."""

from __future__ import annotations

from typing import Any

import asyncpg


async def list_posts(conn: asyncpg.Connection, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first; one row per target, so a post's platforms show side by side."""
    rows = await conn.fetch(
        """SELECT p.post_id, p.upstream_id, t.target_id, t.platform, t.account_id, t.status,
                  t.attempt, t.scheduled_time, t.published_at, t.url, t.last_error->>'code' AS error
           FROM posts p JOIN targets t USING (post_id)
           WHERE $1::text IS NULL OR t.status = $1
           ORDER BY p.created_at DESC, t.platform LIMIT $2""",
        status, limit,
    )
    return [dict(r) for r in rows]


async def post_timeline(conn: asyncpg.Connection, ref: str) -> dict[str, Any] | None:
    """A post (by post, target or upstream id) with its targets and every attempt, in order."""
    post = await conn.fetchrow(
        """SELECT p.post_id, p.upstream_id, p.created_at, p.trace_context, p.content
           FROM posts p WHERE p.post_id::text = $1 OR p.upstream_id = $1
              OR p.post_id = (SELECT post_id FROM targets WHERE target_id::text = $1)""",
        ref,
    )
    if post is None:
        return None
    targets = await conn.fetch(
        """SELECT target_id, platform, account_id, status, attempt, failures, scheduled_time, due_at,
                  published_at, url, remote_handle, last_error, expected_engagement, strategy
           FROM targets WHERE post_id = $1 ORDER BY platform, account_id""",
        post["post_id"],
    )
    attempts = await conn.fetch(
        """SELECT a.target_id, a.attempt, a.outcome, a.error_class, a.error_code, a.message, a.trace_id, a.at
           FROM attempts a JOIN targets t USING (target_id) WHERE t.post_id = $1 ORDER BY a.at, a.id""",
        post["post_id"],
    )
    return {**dict(post), "targets": [dict(t) for t in targets], "attempts": [dict(a) for a in attempts]}
