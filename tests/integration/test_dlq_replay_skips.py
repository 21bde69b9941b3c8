"""`autopost dlq replay`: a letter that cannot be sent is reported and skipped; the others are
sent and counted, and the run says it was not all."""

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from harness import read_topic, settings_for
from services.admin._dead_letters import ReplayFailed, replay, replay_unreplayed
from services.cli import main
from services.runtime import ensure_topics

pytestmark = pytest.mark.integration


class FlakyProducer:
    """Refuses some payloads when asked to send them, fails others once sent."""

    def __init__(self, refuse: dict[bytes, Exception], fail: dict[bytes, Exception]):
        self.refuse, self.fail, self.sent, self.tried = refuse, fail, [], []

    async def send(self, topic, value, key=None, headers=None):
        self.tried.append(value)
        if value in self.refuse:
            raise self.refuse[value]
        done = asyncio.get_running_loop().create_future()
        if value in self.fail:
            done.set_exception(self.fail[value])
        else:
            self.sent.append(value)
            done.set_result(None)
        return done


async def _store(conn, topic: str, payload: bytes) -> int:
    return await conn.fetchval(
        """INSERT INTO dead_letters (consumer, reason, message, source_topic, source_partition, source_offset,
                                     key, payload, headers, failed_at, replays, truncated)
           VALUES ('queue.planned', 'invalid_json', 'm', $1, 0, nextval('dead_letters_id_seq'), 'k', $2,
                   '{}'::jsonb, now(), 0, false)
           RETURNING id""", topic, payload)


async def _replays(conn) -> dict[int, int]:
    return dict(await conn.fetch("SELECT id, replays FROM dead_letters"))


async def test_a_letter_that_cannot_be_sent_does_not_stop_the_others(pool):
    async with pool.acquire() as conn:
        ids = {name: await _store(conn, "gone" if name.startswith("gone") else "t", name.encode())
               for name in ("a", "big", "b", "nack", "gone1", "gone2", "c")}
        producer = FlakyProducer(
            refuse={b"big": MessageSizeTooLargeError("too large"), b"gone1": KafkaTimeoutError()},
            fail={b"nack": RuntimeError("broker said no")})
        failed: dict[int, str] = {}
        replayed, truncated = await replay_unreplayed(conn, producer, max(ids.values()), page=3, failed=failed)
        assert sorted(producer.sent) == [b"a", b"b", b"c"]
        assert b"gone2" not in producer.tried, "a topic that timed out is not waited on again"
        assert replayed == [ids["a"], ids["b"], ids["c"]] and truncated == []
        assert set(failed) == {ids["big"], ids["nack"], ids["gone1"], ids["gone2"]}
        assert "MessageSizeTooLargeError" in failed[ids["big"]] and "broker said no" in failed[ids["nack"]]
        assert "'gone'" in failed[ids["gone2"]]
        replays = await _replays(conn)
    assert {i for i, n in replays.items() if n} == set(replayed), "only the letters sent are counted"


async def test_without_a_place_for_failures_the_others_are_sent_then_it_raises(pool):
    async with pool.acquire() as conn:
        ids = [await _store(conn, "t", name) for name in (b"a", b"big", b"b")]
        producer = FlakyProducer(refuse={b"big": MessageSizeTooLargeError("too large")}, fail={})
        with pytest.raises(ReplayFailed) as raised:
            await replay(conn, producer, ids)
        assert set(raised.value.failed) == {ids[1]}
        replays = await _replays(conn)
    assert replays == {ids[0]: 1, ids[1]: 0, ids[2]: 1}


async def test_the_cli_skips_a_letter_for_a_missing_topic_or_too_large(monkeypatch, capsys, kafka_bootstrap,
                                                                        topic_prefix, database_url, pool):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("AUTOPOST_TOPIC_PREFIX", topic_prefix)
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    topic, missing = topic_prefix + "replayed", topic_prefix + "deleted"
    await ensure_topics(settings.kafka, [topic])
    async with pool.acquire() as conn:
        first = await _store(conn, topic, b"first")
        gone = await _store(conn, missing, b"to a topic deleted since")
        big = await _store(conn, topic, b"x" * 1_100_000)
        last = await _store(conn, topic, b"last")

    capsys.readouterr()
    started = asyncio.get_running_loop().time()
    code = await asyncio.to_thread(main, ["dlq", "replay", "--all"])
    took = asyncio.get_running_loop().time() - started
    captured = capsys.readouterr()
    out = captured.out + captured.err

    assert code == 1, out
    assert "replayed 2 dead letter(s)" in out
    assert f"dead letter {gone}:" in out and "does not exist" in out
    assert f"dead letter {big}:" in out and "MessageSizeTooLarge" in out
    assert took < 30, "no wait on the missing topic's metadata"
    records = await read_topic(kafka_bootstrap, topic, 2)
    assert sorted(r.value for r in records) == [b"first", b"last"]
    async with pool.acquire() as conn:
        assert await _replays(conn) == {first: 1, gone: 0, big: 0, last: 1}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert missing not in await admin.list_topics(), "the replay did not create the missing topic"
    finally:
        await admin.close()
