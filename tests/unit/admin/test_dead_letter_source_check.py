"""`dlq show` checks the record at a truncated letter's source position against the letter:
after the topic was deleted and recreated it is another record, not to be replayed."""

import hashlib

from services.admin._dead_letters import check_source_record

WHOLE = b"x" * 65_536 + b"a" * 900_000


def row(**changes):
    letter = {"source_topic": "post.planned", "source_partition": 0, "source_offset": 7, "key": b"k",
              "payload": WHOLE[:65_536], "payload_bytes": len(WHOLE), "truncated": True,
              "payload_sha256": hashlib.sha256(WHOLE).hexdigest()}
    return {**letter, **changes}


def test_the_same_record_matches():
    found = check_source_record(row(), b"k", WHOLE)
    assert found.state == "matches" and "replay it from there" in found.detail


def test_another_record_with_the_same_start_and_size_differs():
    other = WHOLE[:65_536] + b"b" * 900_000
    found = check_source_record(row(), b"k", other)
    assert found.state == "differs"
    assert "not this letter's" in found.detail and "do not replay" in found.detail
    assert found.sha256 == hashlib.sha256(other).hexdigest()


def test_the_same_payload_under_another_key_differs():
    assert check_source_record(row(), b"other", WHOLE).state == "differs"


def test_a_key_kept_cut_matches_the_start_of_the_records_key():
    long_key = b"q" * 5000
    assert check_source_record(row(key=long_key[:1024]), long_key, WHOLE).state == "matches"
    assert check_source_record(row(key=b"q" * 10), long_key, WHOLE).state == "differs"


def test_a_bare_letter_is_checked_by_its_digest_alone():
    bare = row(key=None, payload=b"")
    assert check_source_record(bare, b"k", WHOLE).state == "matches"
    assert check_source_record(bare, b"k", WHOLE + b"!").state == "differs"


def test_an_older_letter_without_a_digest_is_unverified_or_differs_by_size_or_start():
    old = row(payload_sha256=None)
    assert check_source_record(old, b"k", WHOLE[:65_536] + b"b" * 900_000).state == "unverified"
    assert check_source_record(old, b"k", WHOLE + b"!").state == "differs"
    assert check_source_record(old, b"k", b"y" + WHOLE[1:]).state == "differs"
