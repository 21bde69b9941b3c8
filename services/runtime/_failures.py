"""Telling an outage from a poison message: the first is waited out, the second set aside."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

# SQLSTATE classes that say "the database is unavailable or busy", not "this data is wrong":
# connection exceptions, transaction rollback (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, cancel), system errors.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "40", "53", "57", "58"}


# What the broker refuses for its size is refused again on every retry: not an outage.
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


def is_transient(exc: BaseException) -> bool:
    """True for failures of the infrastructure (broker, database, network): retry the batch."""
    if isinstance(exc, _TOO_LARGE):
        return False
    if isinstance(exc, (OSError, asyncio.TimeoutError, KafkaError, asyncpg.InterfaceError,
                        asyncpg.exceptions.ConnectionDoesNotExistError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return (getattr(exc, "sqlstate", None) or "")[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return False
