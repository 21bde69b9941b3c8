"""The local stack itself: Tansu, topics, Postgres databases, the process supervisor."""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.devstack import (
    ChildExit,
    ProcessGroup,
    TansuBroker,
    create_database,
    drop_database,
    create_missing_topics,
    list_topics,
    partition_counts,
    start_embedded_postgres,
    start_tansu,
    wait_for_broker,
)
from services.devstack.topics import probe_broker

pytestmark = pytest.mark.integration

# The settings /work/shared/kafka-local.md measured as working on Tansu.
PRODUCER_SETTINGS = dict(
    acks="all", enable_idempotence=False, linger_ms=5, request_timeout_ms=10_000, retry_backoff_ms=100
)
CONSUMER_SETTINGS = dict(
    auto_offset_reset="earliest",
    enable_auto_commit=False,  # commit after success
    session_timeout_ms=2000,
    heartbeat_interval_ms=250,
    rebalance_timeout_ms=4000,
    max_poll_records=200,
)


# --- Kafka --------------------------------------------------------------------------------


async def test_tansu_is_up_in_its_own_session(tansu_broker: TansuBroker) -> None:
    assert tansu_broker.is_alive()
    assert tansu_broker.bootstrap == f"127.0.0.1:{tansu_broker.port}"
    assert os.getsid(tansu_broker.pid) == tansu_broker.pid  # a terminal Ctrl-C does not reach it
    await wait_for_broker(tansu_broker.bootstrap, timeout=2)


async def test_topics_get_explicit_partitions_and_creation_is_idempotent(kafka_bootstrap: str, topic_prefix: str) -> None:
    names = [f"{topic_prefix}one", f"{topic_prefix}two"]
    assert await create_missing_topics(kafka_bootstrap, names, partitions=6) == names
    assert await create_missing_topics(kafka_bootstrap, [*names, f"{topic_prefix}three"]) == [f"{topic_prefix}three"]
    assert await partition_counts(kafka_bootstrap, [*names, f"{topic_prefix}missing"]) == {n: 6 for n in names}
    assert f"{topic_prefix}missing" not in await list_topics(kafka_bootstrap)  # describing did not auto-create


async def test_produce_and_consume_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}round-trip"
    await create_missing_topics(kafka_bootstrap, [topic])
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(50)}

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, **PRODUCER_SETTINGS)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=key) for key, value in sent.items()])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=f"{topic_prefix}group", **CONSUMER_SETTINGS)
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:
        async with asyncio.timeout(10):
            while len(received) < len(sent):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        assert record.key not in received, "delivered twice"
                        received[record.key] = record.value
                await consumer.commit()
        partitions_used = {tp.partition for tp in consumer.assignment()}
    finally:
        await consumer.stop()
    assert received == sent
    assert len(partitions_used) == 6


async def test_a_paused_broker_answers_again_after_resume_with_its_data(tmp_path: Path) -> None:
    broker = await start_tansu(log_path=tmp_path / "tansu.log")
    try:
        await create_missing_topics(broker.bootstrap, ["kept"])
        broker.pause()
        with pytest.raises(TimeoutError):
            await probe_broker(broker.bootstrap, timeout=0.5)
        broker.resume()
        await wait_for_broker(broker.bootstrap, timeout=5)
        assert await partition_counts(broker.bootstrap, ["kept"]) == {"kept": 6}
        broker.pause()  # stop() must also end a paused broker
    finally:
        broker.stop(timeout=3)
    assert not broker.is_alive()
    assert "ready" in (tmp_path / "tansu.log").read_text()


async def test_a_second_broker_is_isolated(kafka_bootstrap: str, topic_prefix: str) -> None:
    other = await start_tansu()
    try:
        assert other.bootstrap != kafka_bootstrap
        await create_missing_topics(other.bootstrap, [f"{topic_prefix}only-there"])
        assert f"{topic_prefix}only-there" not in await list_topics(kafka_bootstrap)
        assert f"{topic_prefix}only-there" in await list_topics(other.bootstrap)
    finally:
        other.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(other.pid, 0)


# --- Postgres -----------------------------------------------------------------------------


async def test_database_create_and_drop_even_with_a_connection_open(database_admin_url: str) -> None:
    name = f"autopost_t_{secrets.token_hex(6)}"
    url = await create_database(database_admin_url, name)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
        await drop_database(database_admin_url, name)  # terminates `conn`
    finally:
        await conn.close()
    admin = await asyncpg.connect(database_admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await admin.close()
    await drop_database(database_admin_url, name)  # idempotent


async def test_database_url_fixture_gives_a_fresh_empty_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert (await conn.fetchval("SELECT current_database()")).startswith("autopost_t_")
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()


async def test_embedded_postgres_starts_and_answers() -> None:
    # `make demo` must work on machines without a Postgres server: this is that path.
    tmp = Path(tempfile.mkdtemp(prefix="autopost-pg-"))  # not pytest's tmp_path: embedded-postgres chmods the parents
    try:
        started = time.monotonic()
        database = await asyncio.to_thread(start_embedded_postgres, tmp / "pgdata", delete_on_stop=True)
        try:
            assert time.monotonic() - started < 20
            conn = await asyncpg.connect(database.url)
            try:
                assert await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()
        finally:
            await asyncio.to_thread(database.stop)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- processes ----------------------------------------------------------------------------


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


TALKER = _python(
    "import os, sys, time\n"
    "print(f'hello from {os.environ[\"WHO\"]}'); print('to stderr', file=sys.stderr)\n"
    "time.sleep(60)"
)
PARENT_OF_SLEEPER = _python(
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(f'grandchild {child.pid}'); time.sleep(60)"
)
IGNORES_SIGTERM = _python(
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('stubborn', flush=True)\ntime.sleep(60)"
)


def _said(output: io.StringIO, name: str, text: str) -> bool:
    return re.search(rf"^{re.escape(name)} +\| {re.escape(text)}", output.getvalue(), re.MULTILINE) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a grandchild re-parented to a PID 1 that does not reap stays a zombie: that is dead too
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


# Both ways of starting a child: exec'd by asyncio, or forked from a process that preloaded modules.
START_METHODS = {"exec": (), "preload": ("asyncio", "json")}


@pytest.mark.parametrize("preload", START_METHODS.values(), ids=START_METHODS.keys())
async def test_process_group_prefixes_restarts_reports_and_stops_everything(preload: tuple[str, ...]) -> None:
    output = io.StringIO()
    reported: list[ChildExit] = []
    group = ProcessGroup(output=output, on_unexpected_exit=reported.append, preload=preload)
    try:
        first_a = await group.start("alpha", TALKER, env={"WHO": "alpha"})
        await group.start("beta-svc", PARENT_OF_SLEEPER)
        await group.start("stubborn", IGNORES_SIGTERM)
        assert os.getsid(first_a) == first_a  # own session: a terminal Ctrl-C goes to the parent only

        # the name column widens as children are added, so match on `name<spaces>| `
        await _wait_for(lambda: all(_said(output, name, text) for name, text in [
            ("alpha", "hello from alpha"), ("alpha", "to stderr"), ("beta-svc", "grandchild"), ("stubborn", "stubborn")
        ]))
        grandchild = int(re.search(r"beta-svc +\| grandchild (\d+)", output.getvalue()).group(1))

        second_a = await group.restart("alpha")
        assert second_a != first_a and not _alive(first_a) and _alive(second_a)
        await _wait_for(lambda: output.getvalue().count("| hello from alpha") == 2)

        group.kill("alpha", signal.SIGKILL)  # a simulated crash is reported
        crash = await asyncio.wait_for(group.wait_unexpected_exit(), 5)
        assert crash == ChildExit("alpha", second_a, -signal.SIGKILL) and reported == [crash]
        assert _said(output, "alpha", "*** killed by SIGKILL (unexpected)")

        pids = [group.pid(name) for name in group.names]
        started = time.monotonic()
        await group.stop_all(timeout=0.5)  # stubborn ignores SIGTERM: SIGKILL after 0.5 s
        assert time.monotonic() - started < 3
        assert group.returncode("stubborn") == -signal.SIGKILL
        assert group.returncode("beta-svc") == -signal.SIGTERM
        assert reported == [crash]  # stopping is not an unexpected exit
        for pid in [*pids, first_a, grandchild]:
            assert not _alive(pid), f"pid {pid} survived stop_all"
    finally:
        await group.stop_all(timeout=1)


SHOWS_ITS_PARENT_AND_MODULES = _python(
    "import os, sys, time\n"
    "print(f'parent {os.getppid()} has json {\"json\" in sys.modules} args {sys.argv[1:]}', flush=True)\n"
    "time.sleep(60)"
)


async def test_preloaded_children_are_forked_and_die_with_the_fork_server() -> None:
    output = io.StringIO()
    reported: list[ChildExit] = []
    group = ProcessGroup(output=output, on_unexpected_exit=reported.append, preload=("json",))
    try:
        child = await group.start("child", [*SHOWS_ITS_PARENT_AND_MODULES, "a", "b"])
        server = group.pid("preload")
        await _wait_for(lambda: _said(output, "child", f"parent {server} has json True args ['a', 'b']"))
        assert os.getsid(child) == child

        group.kill("preload")  # its children go with it: the kernel's parent-death signal
        exits = {(await asyncio.wait_for(group.wait_unexpected_exit(), 5)).name for _ in range(2)}
        assert exits == {"preload", "child"}
        await _wait_for(lambda: not _alive(child))

        again = await group.start("child", SHOWS_ITS_PARENT_AND_MODULES)  # a new fork server
        assert group.pid("preload") != server
        await _wait_for(lambda: _said(output, "child", f"parent {group.pid('preload')} has json True"))
        assert _alive(again)
        # not forkable (not `python -c/-m`): exec'd as without preload
        await group.start("plain", ["/bin/sh", "-c", "echo plain $PPID; sleep 60"])
        await _wait_for(lambda: _said(output, "plain", f"plain {os.getpid()}"))
    finally:
        await group.stop_all(timeout=1)
    assert not _alive(server) and not _alive(again)
