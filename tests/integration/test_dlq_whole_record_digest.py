"""Dead letters of records too large to keep whole: two different records at one source
position whose kept first 64 KiB are the same are two letters, and `dlq show` checks the record
now at the source position against the letter's whole-record digest."""

import asyncio
import base64
import hashlib
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from contracts import DeadLetter
from harness import produce
from services.cli import main
from services.devstack import create_missing_topics, delete_topics
from services.notifier.store import store_dead_letters
from services.runtime import apply_migrations, create_pool
from services.runtime._messaging import TRUNCATED_PAYLOAD_BYTES, Record, dead_letter_of

pytestmark = pytest.mark.integration

START = b'{"postId": "' + b"x" * TRUNCATED_PAYLOAD_BYTES


def letter_of(topic: str, value: bytes, offset: int = 7) -> DeadLetter:
    rec = Record(topic=topic, partition=0, offset=offset, key=b"k", value=value, headers={})
    return dead_letter_of(rec, reason="invalid_json", message="m", consumer="queue.planned")


async def test_two_large_records_at_one_position_with_the_same_start_are_two_letters(pool):
    one, two = letter_of("post.planned", START + b"a" * 900_000), letter_of("post.planned", START + b"b" * 900_000)
    assert one.truncated and one.payload_base64 == two.payload_base64, "the same part kept of each"
    again = one.model_copy(update={"failed_at": one.failed_at + timedelta(minutes=1)})  # failing again
    async with pool.acquire() as conn:
        first = await store_dead_letters(conn, [one, two])
        copies = await store_dead_letters(conn, [one, again, two])
        rows = await conn.fetch("SELECT payload_sha256 FROM dead_letters ORDER BY id")
    assert (len(first), copies) == (2, [])
    assert [r["payload_sha256"] for r in rows] == [one.payload_sha256, two.payload_sha256]


async def test_letters_kept_before_the_digest_get_it_and_a_copy_read_after_is_still_a_copy(database_url):
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
            # as a database was before migration 017
            await conn.execute("DROP INDEX dead_letters_source_whole_record")
            await conn.execute("ALTER TABLE dead_letters DROP COLUMN payload_sha256")
            await conn.execute("""CREATE UNIQUE INDEX dead_letters_source_record ON dead_letters
                                  (consumer, source_topic, source_partition, source_offset, md5(payload),
                                   coalesce(md5(key), '')) WHERE source_offset IS NOT NULL""")
            await conn.execute("DELETE FROM schema_migrations WHERE version LIKE '017%'")
            at = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
            cut = letter_of("post.planned", START + b"a" * 900_000, offset=8)
            await conn.execute(
                """INSERT INTO dead_letters (consumer, reason, message, source_topic, source_partition, source_offset,
                                             key, payload, failed_at, truncated, payload_bytes)
                   VALUES ('queue.planned', 'invalid_json', 'm', 'post.planned', 0, 7, 'a', 'one', $1, false, 3),
                          ('queue.planned', 'invalid_json', 'm', 'post.planned', 0, 8, 'k', $2, $1, true, $3)""",
                at, base64.b64decode(cut.payload_base64), cut.payload_bytes)

            assert await apply_migrations(conn) == ["017_dead_letters_whole_digest"]
            digests = [r["payload_sha256"] for r in await conn.fetch("SELECT payload_sha256 FROM dead_letters ORDER BY id")]
            assert digests == [hashlib.sha256(b"one").hexdigest(), None], "a whole letter's digest is its payload's"
            whole = DeadLetter(reason="invalid_json", message="m", consumer="queue.planned",
                               source_topic="post.planned", source_partition=0, source_offset=7, key_base64="YQ==",
                               payload_base64="b25l", failed_at=at)
            # read again after the upgrade, with the digest a producer now sends, or without: still copies
            with_digest = whole.model_copy(update={"payload_sha256": hashlib.sha256(b"one").hexdigest()})
            old_cut = cut.model_copy(update={"payload_sha256": None})
            assert await store_dead_letters(conn, [with_digest, whole, old_cut]) == []
    finally:
        await pool.close()


async def show(*argv: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(_show, argv)


def _show(argv) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["dlq", "show", *argv])
    return code, out.getvalue(), err.getvalue()


async def test_show_checks_the_record_at_the_source_position_against_the_letter(
        monkeypatch, kafka_bootstrap, topic_prefix, database_url, pool):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("AUTOPOST_TOPIC_PREFIX", topic_prefix)
    topic = topic_prefix + "planned"
    await create_missing_topics(kafka_bootstrap, [topic], 1)
    first = START + b"a" * 900_000
    await produce(kafka_bootstrap, topic, [first], key=b"k")
    letter = letter_of(topic, first, offset=0)
    async with pool.acquire() as conn:
        ((letter_id, _),) = await store_dead_letters(conn, [letter])
        ((old_id, _),) = await store_dead_letters(conn, [letter.model_copy(
            update={"payload_sha256": None, "consumer": "older"})])

    code, out, err = await show(str(letter_id))
    assert code == 0, out + err
    assert "source record: matches" in out and "replay it from there" in out
    assert f"payload_sha256: {letter.payload_sha256}" in out

    # the topic deleted and recreated: offset 0 holds another record with the same first 64 KiB
    await delete_topics(kafka_bootstrap, [topic])
    await create_missing_topics(kafka_bootstrap, [topic], 1)
    second = START + b"b" * 900_000
    await produce(kafka_bootstrap, topic, [second], key=b"k")

    code, out, err = await show(str(letter_id))
    assert code == 1, out + err
    assert "source record: differs" in err and "do not replay" in err
    assert hashlib.sha256(second).hexdigest() in err
    code, out, err = await show(str(letter_id), "--json")
    assert code == 1 and orjson.loads(out)["source_record"]["state"] == "differs"
    # an older letter has no digest: the same size and start cannot prove it either way
    code, out, err = await show(str(old_id))
    assert code == 0 and "source record: unverified" in out
    code, out, err = await show(str(letter_id), "--no-source")
    assert code == 0 and "source record" not in out + err

    await delete_topics(kafka_bootstrap, [topic])
    code, out, err = await show(str(letter_id))
    assert code == 0 and "source record: unavailable" in out and "does not exist" in out, out + err
