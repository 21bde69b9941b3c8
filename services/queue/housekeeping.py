"""Keeps the record's logs from growing without bound: a message id is remembered long enough for
any redelivery (Kafka's retention, a replay), an attempt long enough for anyone to ask why a
post went as it did, a dead letter long enough for an operator to replay it, not forever.

The queue prunes for the whole database (the services share one): the notifier's alerts and
dead letters, the publishers' remote handles, the quota ledger's reservations and the planner's
slots of posts it gave up (and what those were planned to post) too. Only what nothing reads
again goes: see each retention's reason."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from services.runtime import Background

log = logging.getLogger("autopost.queue.housekeeping")

INBOX_RETENTION_DAYS = 14  # twice Kafka's default retention
ATTEMPTS_RETENTION_DAYS = 90  # `autopost posts show` of a post a season old
# A dead letter nobody replayed yet may still be wanted (`autopost dlq replay`): a month, for an
# outage over a holiday to be looked into. Truncated letters, which cannot be replayed, too.
DEAD_LETTERS_UNREPLAYED_RETENTION_DAYS = 30
# A replayed one was dealt with (if it failed again, that is a new letter): two weeks after its
# last replay, for `dlq ls --all` to show what was done.
DEAD_LETTERS_REPLAYED_RETENTION_DAYS = 14
# An alert every delivery of which is done (delivered, or given up): a month. Longer than any
# redelivery of its message (Kafka's retention), after which a copy would be notified again.
ALERTS_RETENTION_DAYS = 30
# A remote handle lets a publisher resume (not post again) on a redelivered or re-driven request.
# Kept while its target may be published: forever for one not finished or failed (an operator may
# retry a failed target), and for a month after a posted or cancelled target's last change (which
# nothing re-arms) — well past any redelivery of its requests.
REMOTE_HANDLES_RETENTION_DAYS = 30
# A rolling-window reservation counts for 24 h; the ledger itself forgets a bucket's rows 2 days
# behind its window (services/quotas/_ledger.py, _KEEP), but only when that bucket is taken again:
# the same here, for buckets no longer taken (an account removed, a cap no longer configured).
QUOTA_RESERVATIONS_RETENTION_DAYS = 3
# A planner slot of a post neither sent (planner_unconfirmed) nor stored (the queue's posts): one
# given up to the dead letters, which the planner released then (services/planner/recovery.py).
# Kept while that letter may be replayed (the month above, from the give-up, within a day of its
# planning with the default resends; a week more for slower ones), for the replayed post's slots
# to count again. A post still being sent is in planner_unconfirmed however old: never pruned.
PLANNER_SLOTS_RETENTION_DAYS = DEAD_LETTERS_UNREPLAYED_RETENTION_DAYS + 7
# What a post was planned to post is read only for a post with slots (an event reusing its
# upstream id): kept as long as one of its slots is, then pruned, after them (a post planned
# anew once its slots are gone is recorded anew). Its own clock only as a guard, the same.
PLANNER_POST_CONTENTS_RETENTION_DAYS = PLANNER_SLOTS_RETENTION_DAYS
INTERVAL_SECONDS = 3600.0
BATCH = 10_000  # short transactions, so pruning never holds up the consumers

# The finished statuses of a target whose remote handles may go: nothing re-arms them.
_FINISHED = "('cancelled', 'posted')"


def _older(column: str) -> str:
    """`column` further back than the retention ($1, in seconds)."""
    return f"{column} < now() - make_interval(secs => $1)"


def _batch_of(table: str, where: str, join: str = "") -> str:
    """A DELETE of at most a batch ($2) of `table`'s rows that `where` picks. By ctid: a row
    changed meanwhile (a letter replayed, a handle written again) is a new version, which the
    delete then leaves. Only ever built from this module's constants, never from input."""
    rows = f"{table} {join}" if join else table
    return f"""DELETE FROM {table} WHERE ctid IN (
        SELECT {table}.ctid FROM {rows} WHERE {where} LIMIT $2)"""


# What each retention deletes, a batch at a time: $1 is the retention in seconds, $2 the batch.
# Each reads an index on its time column (migrations 004, 013).
_PRUNE = {
    "inbox": _batch_of("inbox", _older("seen_at")),
    "attempts": _batch_of("attempts", _older("at")),
    "dead_letters_unreplayed": _batch_of("dead_letters", f"replayed_at IS NULL AND {_older('stored_at')}"),
    "dead_letters_replayed": _batch_of("dead_letters", f"replayed_at IS NOT NULL AND {_older('replayed_at')}"),
    # an alert with its deliveries, once none is still to be tried (the count is of alerts):
    # two tables at once, so not by ctid
    "alerts": f"""WITH old AS (
            SELECT a.alert_id FROM alerts a
            WHERE {_older('a.received_at')}
              AND NOT EXISTS (SELECT 1 FROM alert_deliveries d
                              WHERE d.alert_id = a.alert_id AND d.next_attempt_at IS NOT NULL)
            LIMIT $2 FOR UPDATE SKIP LOCKED
        ), deliveries AS (
            DELETE FROM alert_deliveries d USING old WHERE d.alert_id = old.alert_id
        )
        DELETE FROM alerts a USING old WHERE a.alert_id = old.alert_id""",
    # a handle not written for the retention, of a target finished (and unchanged) as long
    "remote_handles": _batch_of(
        "remote_handles",
        f"""{_older('remote_handles.updated_at')}
          AND t.status IN {_FINISHED} AND t.due_at IS NULL AND {_older('t.updated_at')}""",
        join="JOIN targets t USING (target_id)"),
    "quota_reservations": _batch_of("quota_reservations", _older("reserved_at")),
    # a slot of a post neither being sent nor stored. No index on its time: the old slots, of
    # stored posts, are most of the table and stay (with one, measured at 90 % old, Postgres
    # reads the table whole all the same); each is checked by its post's primary key
    "planner_slots": _batch_of(
        "planner_slots",
        f"""{_older('planner_slots.planned_at')}
          AND NOT EXISTS (SELECT 1 FROM planner_unconfirmed u WHERE u.post_id = planner_slots.post_id)
          AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.post_id = planner_slots.post_id)"""),
    # the content of a post none of whose slots is left (checked by planner_slots_post, 014);
    # after "planner_slots" in RETENTION_DAYS, so one round prunes both
    "planner_post_contents": _batch_of(
        "planner_post_contents",
        f"""{_older('planner_post_contents.planned_at')}
          AND NOT EXISTS (SELECT 1 FROM planner_slots s WHERE s.post_id = planner_post_contents.post_id)"""),
}

# what Housekeeping prunes, with how long each is kept, in days
RETENTION_DAYS = {
    "inbox": INBOX_RETENTION_DAYS,
    "attempts": ATTEMPTS_RETENTION_DAYS,
    "dead_letters_unreplayed": DEAD_LETTERS_UNREPLAYED_RETENTION_DAYS,
    "dead_letters_replayed": DEAD_LETTERS_REPLAYED_RETENTION_DAYS,
    "alerts": ALERTS_RETENTION_DAYS,
    "remote_handles": REMOTE_HANDLES_RETENTION_DAYS,
    "quota_reservations": QUOTA_RESERVATIONS_RETENTION_DAYS,
    "planner_slots": PLANNER_SLOTS_RETENTION_DAYS,
    "planner_post_contents": PLANNER_POST_CONTENTS_RETENTION_DAYS,
}


async def prune(pool: asyncpg.Pool, table: str, retention_days: float) -> int:
    """Delete what `table`'s retention (a key of RETENTION_DAYS) lets go of, older than
    `retention_days`, a batch at a time; returns how many rows."""
    statement = _PRUNE[table]
    pruned = 0
    while True:
        async with pool.acquire() as conn:
            result = await conn.execute(statement, retention_days * 86400.0, BATCH)
        deleted = int(result.split()[-1])
        pruned += deleted
        if deleted < BATCH:
            return pruned


class Housekeeping(Background):
    task_name = "housekeeping"

    def __init__(self, pool: asyncpg.Pool, interval: float = INTERVAL_SECONDS):
        self.pool, self.interval = pool, interval

    async def _run(self) -> None:
        while True:
            for table, days in RETENTION_DAYS.items():
                try:
                    if pruned := await prune(self.pool, table, days):
                        log.info("pruned %d %s rows older than %d days", pruned, table, days)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("pruning %s failed; trying again later", table)
            await asyncio.sleep(self.interval)
