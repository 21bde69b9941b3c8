"""Telling an outage from a poison message: the first is waited out, the second set aside."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

# SQLSTATE classes that say "the database is unavailable or busy", not "this data is wrong":
# connection exceptions, transaction rollback (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, cancel), system errors.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "57", "58"}
# And single states of other classes that say the same of this session, not of the data:
_TRANSIENT_SQLSTATES = {
    # read_only_sql_transaction: after a failover the session is on a node that no longer
    # takes writes (a demoted primary, a standby behind a stale DNS name) until it reconnects
    "25006",
    # idle_in_transaction_session_timeout, transaction_timeout (PostgreSQL 17): the server
    # ended the session; the work is done again on a new one
    "25P03",
    "25P04",
    # lock_not_available: a lock_timeout (or NOWAIT) ran out behind someone else's lock
    "55P03",
}


# What the broker refuses for its size is refused again on every retry: not an outage.
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


def is_transient(exc: BaseException) -> bool:
    """True for failures of the infrastructure (broker, database, network): retry the batch."""
    if isinstance(exc, TOO_LARGE):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError, KafkaError, asyncpg.InterfaceError,
                        asyncpg.exceptions.ConnectionDoesNotExistError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    return False
