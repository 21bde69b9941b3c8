"""A dead letter carries the SHA-256 of its record's whole value, taken before any cut: two
records whose kept parts are the same are still told apart."""

import base64
import hashlib

from contracts import DeadLetter
from services.runtime._messaging import (
    TRUNCATED_PAYLOAD_BYTES,
    Outgoing,
    Record,
    bare_dead_letter,
    dead_letter_for,
    dead_letter_of,
)


def record(value: bytes) -> Record:
    return Record(topic="posts", partition=0, offset=7, key=b"k", value=value, headers={})


def letter(value: bytes) -> DeadLetter:
    return dead_letter_of(record(value), reason="processing_failed", message="boom", consumer="c")


def test_a_letter_kept_whole_has_its_payload_digest():
    kept = letter(b"small")
    assert not kept.truncated and kept.payload_sha256 == hashlib.sha256(b"small").hexdigest()


def test_two_large_records_with_the_same_start_have_the_same_cut_payload_but_not_the_same_digest():
    start = b"x" * TRUNCATED_PAYLOAD_BYTES
    one, two = letter(start + b"a" * 900_000), letter(start + b"b" * 900_000)
    assert one.truncated and two.truncated
    assert one.payload_base64 == two.payload_base64 == base64.b64encode(start).decode()
    assert one.payload_sha256 == hashlib.sha256(start + b"a" * 900_000).hexdigest()
    assert one.payload_sha256 != two.payload_sha256


def test_a_letter_sent_bare_keeps_the_digest():
    value = b"y" * 900_000
    out = dead_letter_for(record(value), reason="processing_failed", message="boom", consumer="c")
    bare = DeadLetter.from_bytes(bare_dead_letter(Outgoing(topic=out.topic, key=out.key, value=out.value)).value)
    assert bare.payload_base64 == "" and bare.truncated
    assert bare.payload_sha256 == hashlib.sha256(value).hexdigest()
