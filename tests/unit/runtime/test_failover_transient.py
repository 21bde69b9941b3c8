"""After a database failover, a session may land on a read-only node (a demoted primary, a stale
DNS name): that is an outage to wait out, not a message to dead-letter."""

import asyncpg
import pytest

from services.runtime import _broker, is_transient

E = asyncpg.exceptions


@pytest.mark.parametrize("exc", [
    E.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),  # 25006
    E.IdleInTransactionSessionTimeoutError("terminating connection due to idle-in-transaction timeout"),  # 25P03
    E.TransactionTimeoutError("terminating connection due to transaction timeout"),  # 25P04
    E.LockNotAvailableError("canceling statement due to lock timeout"),  # 55P03
])
def test_a_read_only_session_a_timed_out_session_or_a_lock_not_granted_is_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    E.InFailedSQLTransactionError("current transaction is aborted"),  # 25P02: a bug, not an outage
    E.ActiveSQLTransactionError("already in a transaction"),  # 25001
    E.ObjectInUseError("database is being accessed by other users"),  # 55006
    E.UniqueViolationError("duplicate key"),
    E.InvalidTextRepresentationError("invalid input syntax for type uuid"),
])
def test_the_rest_of_their_classes_and_bad_data_are_not(exc):
    assert not is_transient(exc)


async def test_a_batch_that_hit_a_read_only_session_is_read_again_not_dead_lettered(monkeypatch):
    monkeypatch.setattr(_broker, "INFRA_RETRY_SECONDS", 0)
    exc = E.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only transaction")
    with pytest.raises(E.ReadOnlySQLTransactionError):  # raised: the batch is not committed
        _broker._raise_if_transient(exc, "a batch")
    _broker._raise_if_transient(E.UniqueViolationError("dup"), "a batch")  # returns: set aside
