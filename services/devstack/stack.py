"""The whole local stack as child processes: broker, Postgres, sandboxes, every service."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx

from contracts import Platform
from services.accounts import Account, connect_sandbox_accounts, new_key_entry
from services.catalog import SERVICES
from services.runtime import AccountSettings, KafkaSettings, Settings, ensure_topics

from .kafka import TansuBroker, start_tansu
from .outage import OutageProxy
from .paths import state_dir
from .postgres import Database, create_database, drop_database, resolve_database
from .processes import ProcessGroup

# The local broker's group timings (../shared/kafka-local.md); quick status checks for demos.
DEV_ENV = {
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "250",
    "AUTOPOST_STATUS_FIRST_CHECK_SECONDS": "0.5",
    "AUTOPOST_STATUS_MAX_INTERVAL_SECONDS": "2",
    "AUTOPOST_LEASE_SECONDS": "60",
    "AUTOPOST_LOG_FORMAT": "text",  # a terminal, not a log pipeline
    "PYTHONUNBUFFERED": "1",
}


# What the stack's Python processes import, once, in the process they are forked from.
PRELOAD = ("services.cli", "services.runtime", "services.planner.app", "services.queue.app",
           "services.publishers.app", "services.poller.app", "services.notifier.app", "sandbox",
           "uvicorn", "uvloop", "httptools")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# With faults on, platform calls time out sooner than the sandbox's slow answers (3 s), so the
# clients meet real timeouts.
FAULT_ENV = {"AUTOPOST_PLATFORM_TIMEOUT_SECONDS": "2"}


@dataclass
class StackOptions:
    services: tuple[str, ...] = tuple(SERVICES)
    processing_seconds: float = 0.5
    partitions: int = 6
    log_level: str = "WARNING"
    env: dict[str, str] = field(default_factory=dict)
    # services reach Postgres through a proxy that `stack.database_outage` can cut
    database_outages: bool = False
    faults: str | None = None  # a sandbox fault profile, e.g. "flaky"
    sandbox_args: tuple[str, ...] = ()  # more `autopost sandbox` flags
    # fork the services and the sandbox from one process that imported them (shared memory)
    preload: bool = True


class DevStack:
    """Start with `async with DevStack(options) as stack:`; everything stops on the way out."""

    def __init__(self, options: StackOptions | None = None, *, output=None):
        self.options = options or StackOptions()
        self.group = ProcessGroup(output=output, preload=PRELOAD if self.options.preload else ())
        self.broker: TansuBroker | None = None
        self.database: Database | None = None
        self.database_name = f"autopost_dev_{uuid.uuid4().hex[:8]}"
        self.database_url = ""  # direct, for the harness; services may go through `outage`
        self.outage: OutageProxy | None = None
        self.sandbox_url = ""
        self.http_ports: dict[str, int] = {}
        self.credential_keys = new_key_entry("dev")  # this stack's own: its database is thrown away too

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    def service_env(self, name: str) -> dict[str, str]:
        return {
            **DEV_ENV,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.outage.url_through(self.database_url) if self.outage else self.database_url,
            "AUTOPOST_SANDBOX_URL": self.sandbox_url,
            "AUTOPOST_TOPIC_PARTITIONS": str(self.options.partitions),
            "AUTOPOST_HTTP_PORT": str(self.http_ports[name]),
            "AUTOPOST_LOG_LEVEL": self.options.log_level,
            "AUTOPOST_CREDENTIAL_KEYS": self.credential_keys,
            **(FAULT_ENV if self.options.faults else {}),
            **self.options.env,
        }

    async def start(self) -> None:
        state = state_dir()
        state.mkdir(exist_ok=True)
        self.broker = await start_tansu(log_path=state / "tansu.log")
        await ensure_topics(KafkaSettings(bootstrap_servers=self.bootstrap, partitions=self.options.partitions))
        self.database = await asyncio.to_thread(resolve_database)
        self.database_url = await create_database(self.database.url, self.database_name)
        if self.options.database_outages:
            self.outage = OutageProxy.for_postgres(self.database_url)
            await self.outage.start()
        sandbox_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        # --require-oauth: every platform call must carry a token the sandbox's OAuth issued
        await self.group.start("sandbox", [
            sys.executable, "-m", "services.cli", "sandbox", "--port", str(sandbox_port),
            "--processing-seconds", str(self.options.processing_seconds), "--require-oauth",
            *(("--faults", self.options.faults) if self.options.faults else ()), *self.options.sandbox_args])
        await _wait_http(f"{self.sandbox_url}/_sandbox/stats", "sandbox", self.group)
        for name in self.options.services:
            self.http_ports[name] = free_port()
            await self.group.start(name, self.service_argv(name), env=self.service_env(name))
        await asyncio.gather(*(self.wait_ready(name) for name in self.options.services))

    @property
    def settings(self) -> Settings:
        """What a process of this stack sees (for work done in-process, like connecting accounts)."""
        return Settings(database_url=self.database_url, sandbox_url=self.sandbox_url,
                        accounts=AccountSettings.for_sandbox(self.credential_keys))

    async def connect_accounts(self, accounts: list[tuple[Platform | str, str]]) -> list[Account]:
        """Connect accounts through the sandbox's OAuth (authorize → code → token), as an owner would."""
        return await connect_sandbox_accounts(self.settings, accounts)

    def service_argv(self, name: str) -> list[str]:
        return [sys.executable, "-m", "services.cli", "service", name]

    async def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        await _wait_http(f"http://127.0.0.1:{self.http_ports[name]}/readyz", name, self.group, timeout)

    async def sandbox_stats(self) -> dict:
        """The sandbox's own record: published, duplicates, faults injected."""
        async with httpx.AsyncClient(timeout=10.0) as http:
            return (await http.get(f"{self.sandbox_url}/_sandbox/stats")).json()

    async def stop(self) -> None:
        await self.group.stop_all(timeout=10)
        if self.outage is not None:
            await self.outage.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.database is not None:
            try:
                await drop_database(self.database.url, self.database_name)
            finally:
                self.database.stop()

    async def __aenter__(self) -> "DevStack":
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _wait_http(url: str, name: str, group: ProcessGroup, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not group.is_running(name):
                raise RuntimeError(f"{name} exited with {group.returncode(name)} while starting")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} was not ready within {timeout}s ({url})")


