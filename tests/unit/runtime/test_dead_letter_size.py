"""A dead letter always fits in one message the producer sends, however its record is made up;
one the broker refuses for its size anyway is sent bare rather than holding the partition."""

from __future__ import annotations

import asyncio
import base64

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from contracts import DeadLetter
from services.runtime._broker import _isolate_poison
from services.runtime._messaging import Record, dead_letter_for, dead_letter_of

MIB = 1024 * 1024
# the letter and its key, with room left under 1 MiB for the trace headers and framing
SAFE = MIB - 32 * 1024


def record(value: bytes, headers: dict[str, str] | None = None, key: bytes | None = b"k") -> Record:
    return Record(topic="posts", partition=3, offset=42, key=key, value=value, headers=headers or {})


def sent_size(letter) -> int:
    return len(letter.value) + len(letter.key.encode()) + sum(len(k) + len(v.encode()) for k, v in letter.headers.items())


def letter_for(rec: Record):
    out = dead_letter_for(rec, reason="processing_failed", message="boom", consumer="c")
    return out, DeadLetter.from_bytes(out.value)


def test_a_large_record_with_control_byte_headers_is_cut_to_fit():
    # 600 KB of payload (under the old 600 KiB cut) and 60 KB of headers JSON escapes 6-fold
    value = b"p" * 600_000
    rec = record(value, {f"h{i}": "\x01" * 1000 for i in range(60)})
    out, letter = letter_for(rec)
    assert sent_size(out) <= SAFE
    assert letter.truncated and letter.payload_bytes == len(value)
    assert value.startswith(base64.b64decode(letter.payload_base64))
    assert letter.source_offset == 42 and letter.key_base64 == base64.b64encode(b"k").decode()


def test_headers_of_replacement_characters_are_measured_encoded():
    value = b"p" * 600_000
    # invalid UTF-8 read as U+FFFD: 3 bytes each, in the headers and the letter's own key
    rec = record(value, {"h": "\ufffd" * 60_000}, key=b"\xff" * 60_000)
    out, letter = letter_for(rec)
    assert sent_size(out) <= SAFE and letter.truncated


def test_a_huge_key_of_invalid_utf8_is_cut_too():
    rec = record(b"p" * 500_000, {"h": "\x02" * 20_000}, key=b"\xff" * 400_000)
    out, letter = letter_for(rec)
    assert sent_size(out) <= SAFE and letter.truncated
    assert len(out.key.encode()) <= 64 * 1024


def test_the_letter_alone_fits_too():
    rec = record(b"p" * 600_000, {f"h{i}": "\x01" * 1000 for i in range(60)})
    letter = dead_letter_of(rec, reason="processing_failed", message="boom", consumer="c")
    assert len(letter.to_bytes()) <= SAFE and letter.truncated


def test_a_small_record_is_kept_whole():
    rec = record(b"small", {"traceparent": "00-abc-def-01", "x": "\x01"})
    out, letter = letter_for(rec)
    assert not letter.truncated
    assert base64.b64decode(letter.payload_base64) == b"small" and letter.headers == rec.headers


class SizeLimitedProducer:
    """Refuses, as aiokafka's producer does, any message over `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.sent = limit, []

    async def send(self, topic, value, key=None, headers=None):
        if len(value) + len(key or b"") > self.limit:
            raise MessageSizeTooLargeError("The message is too large")
        self.sent.append((topic, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeBroker:
    def __init__(self, producer) -> None:
        state = type("State", (), {"producer": producer})()
        self._producer = type("Wrapper", (), {"_producer": state})()


async def test_a_letter_refused_for_its_size_is_sent_bare_instead_of_rewinding_the_batch():
    producer = SizeLimitedProducer(limit=20_000)
    broker = FakeBroker(producer)

    async def handler(records):
        raise ValueError("cannot handle this one")

    rec = record(b"p" * 100_000)
    await _isolate_poison(broker, [rec], handler, "poison-test", "dead-letters")  # does not raise
    [(topic, value)] = producer.sent
    letter = DeadLetter.from_bytes(value)
    assert topic == "dead-letters" and letter.truncated and letter.payload_base64 == ""
    assert letter.source_topic == "posts" and letter.source_offset == 42 and letter.payload_bytes == 100_000


async def test_letters_that_fit_are_sent_as_they_are():
    producer = SizeLimitedProducer(limit=MIB)

    async def handler(records):
        raise ValueError("cannot handle this one")

    await _isolate_poison(FakeBroker(producer), [record(b"one"), record(b"two")], handler, "c", "dlq")
    assert [base64.b64decode(DeadLetter.from_bytes(v).payload_base64) for _, v in producer.sent] == [b"one", b"two"]


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.setattr("services.runtime._broker.INFRA_RETRY_SECONDS", 0)
