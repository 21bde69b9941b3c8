"""DeadLetter's whole-record digest: optional on the wire, so older letters still read."""

import hashlib

import pytest

from contracts import ContractError, DeadLetter

OLD_LETTER = (b'{"schemaVersion": 1, "reason": "invalid_json", "message": "m", "consumer": "queue.planned",'
              b' "sourceTopic": "post.planned", "sourcePartition": 0, "sourceOffset": 7,'
              b' "payloadBase64": "b25l", "failedAt": "2026-12-01T12:00:00Z", "truncated": true,'
              b' "payloadBytes": 900000}')


def test_a_letter_without_the_digest_still_reads():
    letter = DeadLetter.from_bytes(OLD_LETTER)
    assert letter.payload_sha256 is None and letter.truncated
    assert "payloadSha256" not in letter.to_wire()


def test_the_digest_goes_on_the_wire_in_camel_case_and_back():
    digest = hashlib.sha256(b"whole").hexdigest()
    letter = DeadLetter.from_bytes(OLD_LETTER).model_copy(update={"payload_sha256": digest})
    assert letter.to_wire()["payloadSha256"] == digest
    assert DeadLetter.from_bytes(letter.to_bytes()).payload_sha256 == digest


def test_a_digest_that_is_not_sha256_hex_is_refused():
    with pytest.raises(ContractError) as raised:
        DeadLetter.from_bytes(OLD_LETTER[:-1] + b', "payloadSha256": "not-hex"}')
    assert raised.value.reason == "invalid_field"


def test_the_schema_has_the_digest_as_optional():
    schema = DeadLetter.model_json_schema(by_alias=True)
    assert "payloadSha256" in schema["properties"]
    assert "payloadSha256" not in schema.get("required", [])
