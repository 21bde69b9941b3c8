"""An outage is waited out; what the broker refuses for its size would be refused forever."""

import asyncpg
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RecordListTooLargeError

from services.runtime import is_transient


def test_a_message_too_large_for_the_broker_is_not_an_outage():
    assert not is_transient(MessageSizeTooLargeError("1200459 bytes"))
    assert not is_transient(RecordListTooLargeError())


def test_the_broker_or_database_unreachable_is():
    assert is_transient(KafkaConnectionError())
    assert is_transient(ConnectionRefusedError())
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError())
    assert not is_transient(ValueError("bad data"))
