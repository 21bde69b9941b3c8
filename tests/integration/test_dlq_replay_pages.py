"""`autopost dlq replay --all` reads and sends the dead letters a page at a time (payloads and
all), never the whole table at once; each letter once, and not those its own replays bring back."""

import asyncio

import pytest

from harness import read_topic, settings_for
from services.admin import _dead_letters
from services.admin._dead_letters import last_unreplayed_id, replay, replay_unreplayed
from services.cli import main
from services.runtime import ensure_topics

pytestmark = pytest.mark.integration


class FakeProducer:
    """Records what it is asked to send; `on_send` runs as each record goes."""

    def __init__(self, on_send=None):
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.on_send = on_send

    async def send(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value, key))
        if self.on_send is not None:
            await self.on_send(value)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class CountingConnection:
    """A connection that notes how many rows each fetch brought back."""

    def __init__(self, conn):
        self.conn, self.fetched = conn, []

    async def fetch(self, sql, *args):
        rows = await self.conn.fetch(sql, *args)
        self.fetched.append(len(rows))
        return rows

    async def execute(self, sql, *args):
        return await self.conn.execute(sql, *args)


async def _store(conn, topic: str, payload: bytes, *, replayed: bool = False, truncated: bool = False) -> int:
    return await conn.fetchval(
        """INSERT INTO dead_letters (consumer, reason, message, source_topic, source_partition, source_offset,
                                     key, payload, headers, failed_at, replays, replayed_at, truncated)
           VALUES ('queue.planned', 'invalid_json', 'm', $1, 0, nextval('dead_letters_id_seq'), 'k', $2,
                   '{"traceparent": "x"}'::jsonb, now(), $3::int, CASE WHEN $3::int > 0 THEN now() END, $4)
           RETURNING id""",
        topic, payload, 1 if replayed else 0, truncated)


async def test_every_letter_not_replayed_is_sent_once_a_page_at_a_time(pool):
    async with pool.acquire() as conn:
        ids = {}
        for i in range(8):
            ids[f"m{i}"] = await _store(conn, "t.planned", f"m{i}".encode(), truncated=i == 4)
            if i == 2:
                ids["done"] = await _store(conn, "t.planned", b"done", replayed=True)
        ids["late"] = await _store(conn, "t.planned", b"late")
        up_to = await last_unreplayed_id(conn)
        assert up_to == ids["late"]
        counting, producer = CountingConnection(conn), FakeProducer()
        replayed, truncated = await replay_unreplayed(counting, producer, ids["m7"], page=3)
        assert max(counting.fetched) <= 3 and len(counting.fetched) >= 3, "a page at a time"
        assert [value for _, value, _ in producer.sent] == [f"m{i}".encode() for i in range(8) if i != 4]
        assert replayed == [ids[f"m{i}"] for i in range(8) if i != 4] and truncated == [ids["m4"]]
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, replays, replayed_at FROM dead_letters")}
    assert all(rows[i]["replays"] == 1 and rows[i]["replayed_at"] for i in replayed)
    assert rows[ids["m4"]]["replays"] == 0 and rows[ids["late"]]["replays"] == 0, "past up_to: not replayed"
    assert rows[ids["done"]]["replays"] == 1, "replayed before: not again"


async def test_letters_the_replay_brings_back_are_not_replayed_again(pool):
    async with pool.acquire() as conn:
        for i in range(5):
            await _store(conn, "t.planned", f"m{i}".encode())
        up_to = await last_unreplayed_id(conn)

        async def fails_again(value):  # the consumer sets the replayed message aside again at once
            await _store(conn, "t.planned", value)

        producer = FakeProducer(on_send=fails_again)
        replayed, _ = await replay_unreplayed(conn, producer, up_to, page=2)
        assert len(replayed) == 5 and len(producer.sent) == 5
        assert await conn.fetchval("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL") == 5


async def test_given_ids_are_read_a_page_at_a_time_too(pool):
    async with pool.acquire() as conn:
        ids = [await _store(conn, "t.planned", f"m{i}".encode(), replayed=i == 0) for i in range(5)]
        counting, producer = CountingConnection(conn), FakeProducer()
        replayed, truncated = await replay(counting, producer, [*reversed(ids), 999_999], page=2)
        assert max(counting.fetched) <= 2
        assert replayed == ids and truncated == [], "a replayed letter asked for is sent again"
        assert len(producer.sent) == 5


async def test_the_cli_replays_all_a_page_at_a_time(monkeypatch, capsys, kafka_bootstrap, topic_prefix,
                                                     database_url, pool):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("AUTOPOST_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setattr(_dead_letters, "REPLAY_PAGE", 2)
    settings = settings_for(kafka_bootstrap, topic_prefix, database_url)
    topic = topic_prefix + "replayed"
    await ensure_topics(settings.kafka, [topic])

    async def autopost(*argv):
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, out = await autopost("dlq", "replay", "--all")
    assert code == 1 and "nothing to replay" in out
    async with pool.acquire() as conn:
        ids = [await _store(conn, topic, f"m{i}".encode()) for i in range(5)]
        done = await _store(conn, topic, b"done", replayed=True)
        cut = await _store(conn, topic, b"cut", truncated=True)
    code, out = await autopost("dlq", "replay", "--all", str(done), str(ids[0]))
    assert code == 0, out
    assert "replayed 6 dead letter(s)" in out and f"not replayed: [{cut}]" in out
    records = await read_topic(kafka_bootstrap, topic, 6)
    assert sorted(r.value for r in records) == sorted([f"m{i}".encode() for i in range(5)] + [b"done"])
    async with pool.acquire() as conn:
        replays = dict(await conn.fetch("SELECT id, replays FROM dead_letters"))
    assert replays == {**dict.fromkeys(ids, 1), done: 2, cut: 0}
