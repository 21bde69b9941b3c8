"""What the benchmarks share: percentiles, the raw Kafka ceiling, CPU and memory per process,
sampling profiles, and the stack's processes."""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from collections.abc import Collection
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.devstack import delete_topics  # noqa: E402
from services.runtime import create_missing_topics  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(percentile(values, 0.5), 3), "p99": round(percentile(values, 0.99), 3),
            "max": round(max(values), 3), "n": len(values)}


async def kafka_ceiling(bootstrap: str, messages: int, size: int, partitions: int = 6) -> dict[str, Any]:
    """aiokafka alone on the same broker: pipelined sends of `size`-byte keyed messages to a
    fresh topic while a group consumer reads them in batches and commits once per batch."""
    topic = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    await create_missing_topics(bootstrap, [topic], partitions)
    payload = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, max_batch_size=256 * 1024)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}.g",
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1000,
                                session_timeout_ms=2000, heartbeat_interval_ms=250)
    await producer.start()
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        started = time.monotonic()

        async def produce() -> float:
            futures = [await producer.send(topic, payload, key=str(i).encode()) for i in range(messages)]
            await asyncio.gather(*futures)
            return time.monotonic()

        async def consume() -> float:
            seen = 0
            while seen < messages:
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                seen += sum(len(b) for b in batches.values())
                if batches:
                    await consumer.commit()
            return time.monotonic()

        produced_at, consumed_at = await asyncio.gather(produce(), consume())
    finally:
        await consumer.stop()
        await producer.stop()
        await delete_topics(bootstrap, [topic])
    return {
        "messages": messages,
        "message_bytes": size,
        "produce_per_second": round(messages / (produced_at - started)),
        "produce_to_consume_per_second": round(messages / (consumed_at - started)),
    }


def tree(pid: int, apart: Collection[int] = ()) -> list[psutil.Process]:
    """The process and its descendants, but not those in `apart` (measured on their own) nor
    theirs: the fork server's children are the services."""
    try:
        root = psutil.Process(pid)
        found, queue = [root], collections.deque([root])
        while queue:
            for child in queue.popleft().children():
                if child.pid not in apart:
                    found.append(child)
                    queue.append(child)
        return found
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int, apart: Collection[int] = ()) -> float:
    return sum(_own_cpu(proc) for proc in tree(pid, apart))


def rss_mb(pid: int, apart: Collection[int] = ()) -> float:
    """Resident memory, shared pages included: what one service would hold on its own."""
    total = 0
    for proc in tree(pid, apart):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return round(total / 2**20, 1)


def rss_and_pss_mb(pid: int, apart: Collection[int] = ()) -> tuple[float, float]:
    """(RSS, PSS) in one walk of the tree. Proportional set size divides each shared page among
    the processes sharing it, so the sum over processes is the memory they hold together (a sum
    of RSS counts a page once per process mapping it)."""
    rss = pss = 0
    for proc in tree(pid, apart):
        try:
            info = proc.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss, pss = rss + info.rss, pss + info.pss
    return round(rss / 2**20, 1), round(pss / 2**20, 1)


class CpuWindow:
    """CPU seconds each named process used between `start()` and `stop()`, as cores busy; also
    Postgres's server processes (not ours, but working for us) and the whole machine's."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self._before: dict[str, float] = {}
        self._started = 0.0

    def _read(self) -> dict[str, float]:
        seconds = {name: cpu_seconds(pid, self.pids.values()) for name, pid in self.pids.items()}
        seconds["postgres"] = sum(_own_cpu(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")
        machine = psutil.cpu_times()
        seconds["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        return seconds

    def start(self) -> None:
        self._before = self._read()
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Cores busy by name; "machine" is every process on it, ours or not."""
        elapsed = time.monotonic() - self._started
        return {name: round((used - self._before.get(name, 0.0)) / elapsed, 3) for name, used in self._read().items()}


def _own_cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
        return times.user + times.system
    except psutil.NoSuchProcess:
        return 0.0


class Profiles:
    """py-spy sampling each process (collapsed stacks) while the benchmark runs."""

    def __init__(self, pids: dict[str, int], directory: Path, rate: int = 50):
        self.pids = pids
        self.directory = directory
        self.rate = rate
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self._procs[name] = subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--nonblocking",
                 "--output", str(self.directory / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, list[tuple[str, float]]]:
        for proc in self._procs.values():
            proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        for proc in self._procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        return {name: top_functions(self.directory / f"{name}.txt") for name in self._procs}


def top_functions(path: Path, count: int = 12) -> list[tuple[str, float]]:
    """Share of samples in which each function is on the stack (inclusive), from collapsed stacks.
    The frames every sample starts with (interpreter, command line, event loop entry) are left out."""
    if not path.exists():
        return []
    samples: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            samples.append(([_frame_name(frame) for frame in stack.split(";")], int(n)))
    total = sum(n for _, n in samples)
    if not total:
        return []
    # the main thread's samples share their first frames; other threads' (exporters, executors) don't
    first = collections.Counter(frames[0] for frames, _ in samples if frames).most_common(1)[0][0]
    entry = os.path.commonprefix([frames for frames, _ in samples if frames and frames[0] == first])
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, n in samples:
        skip = len(entry) if frames[:len(entry)] == entry else 0
        for frame in set(frames[skip:]):
            inclusive[frame] += n
    idle = ("select (selectors.py)", "_run_once (base_events.py)", "run_forever (base_events.py)")
    ranked = [(f, round(n / total, 3)) for f, n in inclusive.most_common(count * 4) if f not in idle]
    return ranked[:count]


def _frame_name(frame: str) -> str:
    """`function (file.py)` from py-spy's `function (path/file.py:line)`."""
    if " (" not in frame:
        return frame
    function, _, where = frame.partition(" (")
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def stack_pids(stack: Any) -> dict[str, int]:
    pids = {name: stack.group.pid(name) for name in stack.group.names}
    if stack.broker is not None:
        pids["tansu"] = stack.broker.pid
    return pids


def cores() -> int:
    return os.cpu_count() or 1


def content_events(count: int, platforms: list[str], media_url: str, *, account: str | None = None,
                   at: Any = None, spread_seconds: float = 0.0, prefix: str = "bench") -> list[bytes]:
    """`count` content events; each post's own accounts unless `account` names one for all.
    With `at`, post i is scheduled at `at + (i / count) * spread_seconds`."""
    import datetime as dt

    import orjson

    events = []
    for i in range(count):
        if at is None:
            schedule: dict[str, Any] = {"mode": "asap"}
        else:
            moment = at + dt.timedelta(seconds=spread_seconds * i / max(1, count))
            schedule = {"mode": "at", "scheduledTime": moment.isoformat()}
        events.append(orjson.dumps({
            "upstreamId": f"{prefix}-{i}",
            "targets": [{"platform": p, "accountId": account or f"{prefix}{i}-{p}"} for p in platforms],
            "media": [{"url": media_url, "mimeType": "video/mp4"}],
            "caption": f"{prefix} {i}",
            "contentType": "video",
            "schedule": schedule,
        }))
    return events


async def produce_all(bootstrap: str, topic: str, payloads: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for start in range(0, len(payloads), 5000):
            futures = [await producer.send(topic, p, key=str(start + i).encode())
                       for i, p in enumerate(payloads[start:start + 5000])]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_rows(conn: Any, expected: int, timeout: float, query: str = "SELECT count(*) FROM targets") -> float:
    """Seconds until `query` counts `expected` (raises on time-out)."""
    started = time.monotonic()
    while True:
        n = await conn.fetchval(query)
        if n >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out: {n} of {expected} after {timeout}s ({query})")
        await asyncio.sleep(0.5)
