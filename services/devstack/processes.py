"""A small supervisor for `autopost dev`: named children, name-prefixed output, orderly stop.

Each child runs in its own session (so its own process group): a terminal Ctrl-C reaches only
the parent, which then stops the children itself instead of racing them. Signals go to the
child's whole group, so helpers it spawned go too. If the parent is SIGKILLed, the kernel
kills the children (Linux parent-death signal).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ._parent_death import kill_with_parent

_MAX_LINE = 64 * 1024  # longer lines are cut rather than buffered without bound
_DRAIN_AFTER_EXIT = 0.5  # seconds to wait for the last output once a child has exited


@dataclass(frozen=True)
class ChildExit:
    name: str
    pid: int
    returncode: int  # negative: killed by that signal number

    def describe(self) -> str:
        if self.returncode < 0:
            try:
                return f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:  # e.g. a real-time signal
                return f"killed by signal {-self.returncode}"
        return f"exited with code {self.returncode}"


@dataclass
class _Child:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str] | None
    cwd: str | Path | None
    pid: int = 0
    transport: asyncio.SubprocessTransport | None = None
    watcher: asyncio.Task[int] | None = None
    stopping: bool = False  # an exit we asked for is not reported as unexpected
    returncode: int | None = field(default=None)


class ProcessGroup:
    """Start named children; `async with ProcessGroup() as group:` stops them all on the way out.

    An exit is *unexpected* unless it came from `stop`, `restart` or `stop_all`; `kill` is
    the chaos tool and its result counts as unexpected (it simulates a crash). Unexpected
    exits are written to the output, passed to `on_unexpected_exit` (may be async) and
    queued for `wait_unexpected_exit()`.
    """

    def __init__(
        self,
        *,
        output: TextIO | None = None,
        on_unexpected_exit: Callable[[ChildExit], object] | None = None,
    ):
        self._output = output  # None: sys.stderr as it is at write time (pytest swaps it)
        self._on_unexpected_exit = on_unexpected_exit
        self._children: dict[str, _Child] = {}
        self._unexpected: asyncio.Queue[ChildExit] = asyncio.Queue()
        self._background: set[asyncio.Task[object]] = set()

    # --- starting and inspecting -------------------------------------------------------

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> int:
        """Start `argv` as `name`; `env` is layered over our environment. Returns the pid."""
        if (old := self._children.get(name)) and old.returncode is None:
            raise ValueError(f"{name!r} is already running (pid {old.pid})")
        child = _Child(name, tuple(argv), dict(env) if env is not None else None, cwd)
        await self._spawn(child)
        self._children[name] = child
        return child.pid

    @property
    def names(self) -> list[str]:
        return list(self._children)

    def pid(self, name: str) -> int:
        return self._child(name).pid

    def is_running(self, name: str) -> bool:
        return self._child(name).returncode is None

    def returncode(self, name: str) -> int | None:
        return self._child(name).returncode

    async def wait_unexpected_exit(self) -> ChildExit:
        """The next exit nobody asked for (each one is returned once)."""
        return await self._unexpected.get()

    # --- chaos and control --------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the child's process group (SIGSTOP/SIGCONT work too)."""
        child = self._child(name)
        if child.returncode is None:
            _signal_group(child.pid, sig)

    async def stop(self, name: str, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        child = self._child(name)
        await self._stop_children([child], timeout)
        assert child.returncode is not None
        return child.returncode

    async def restart(self, name: str, timeout: float = 5.0) -> int:
        """Stop (as `stop`) and start again with the same argv/env/cwd. Returns the new pid."""
        old = self._child(name)
        await self.stop(name, timeout)
        child = _Child(old.name, old.argv, old.env, old.cwd)
        await self._spawn(child)
        self._children[name] = child
        return child.pid

    async def stop_all(self, timeout: float = 5.0) -> None:
        """SIGTERM to every running child (latest started first), SIGKILL to those still there after `timeout`."""
        await self._stop_children(list(reversed(self._children.values())), timeout)

    def kill_all_now(self) -> None:
        """Synchronous last resort: SIGKILL every running child."""
        for child in self._children.values():
            if child.returncode is None:
                _signal_group(child.pid, signal.SIGKILL)

    async def __aenter__(self) -> ProcessGroup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    # --- internals ----------------------------------------------------------------------

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"no child named {name!r} (known: {', '.join(self._children) or 'none'})") from None

    async def _spawn(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(child.env or {})}  # lines appear as they are written
        transport, protocol = await loop.subprocess_exec(
            lambda: _OutputProtocol(lambda line: self._write(child.name, line), loop),
            *child.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=child.cwd,
            start_new_session=True,
            preexec_fn=kill_with_parent(),
        )
        child.transport = transport
        child.pid = transport.get_pid()
        child.watcher = asyncio.create_task(self._watch(child, protocol), name=f"watch {child.name}")

    async def _watch(self, child: _Child, protocol: _OutputProtocol) -> int:
        returncode = child.returncode = await protocol.exited
        # asyncio's Process.wait() would also wait for the pipes, which a grandchild may hold
        # open; so: exit first, then a short drain, then kill whatever is left of its group.
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(protocol.closed), _DRAIN_AFTER_EXIT)
        if not protocol.closed.done():
            _signal_group(child.pid, signal.SIGKILL)
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), _DRAIN_AFTER_EXIT)
        assert child.transport is not None
        child.transport.close()
        if not child.stopping:
            self._report_unexpected(ChildExit(child.name, child.pid, returncode))
        return returncode

    def _report_unexpected(self, event: ChildExit) -> None:
        self._write(event.name, f"*** {event.describe()} (unexpected)".encode())
        self._unexpected.put_nowait(event)
        if self._on_unexpected_exit is not None:
            result = self._on_unexpected_exit(event)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _stop_children(self, children: list[_Child], timeout: float) -> None:
        running = [c for c in children if c.watcher is not None and not c.watcher.done()]
        try:
            for child in running:
                child.stopping = True
                _signal_group(child.pid, signal.SIGTERM)
                _signal_group(child.pid, signal.SIGCONT)  # a stopped child acts on SIGTERM only once continued
            watchers = [c.watcher for c in running if c.watcher is not None]
            if not watchers:
                return
            _, pending = await asyncio.wait(watchers, timeout=timeout)
            for child in running:
                if child.watcher in pending:
                    _signal_group(child.pid, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending)
        except BaseException:  # cancelled (e.g. a second Ctrl-C): leave nothing behind
            self.kill_all_now()
            raise

    def _write(self, name: str, line: bytes) -> None:
        width = max(map(len, self._children), default=len(name))
        stream = self._output or sys.stderr
        text = line.rstrip(b"\r").decode(errors="replace")
        stream.write(f"{name:<{width}} | {text}\n")
        stream.flush()


class _OutputProtocol(asyncio.SubprocessProtocol):
    """Splits the child's stdout and stderr into lines; tells when it exits and when its pipes close."""

    def __init__(self, emit: Callable[[bytes], None], loop: asyncio.AbstractEventLoop):
        self._emit = emit
        self._partial: dict[int, bytes] = {}
        self._transport: asyncio.SubprocessTransport | None = None
        self.exited: asyncio.Future[int] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *lines, rest = (self._partial.get(fd, b"") + data).split(b"\n")
        for line in lines:
            self._emit(line)
        if len(rest) > _MAX_LINE:
            self._emit(rest)
            rest = b""
        self._partial[fd] = rest

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if rest := self._partial.pop(fd, b""):
            self._emit(rest)

    def process_exited(self) -> None:
        assert self._transport is not None
        if not self.exited.done():  # cancelled if the watcher was cancelled
            self.exited.set_result(self._transport.get_returncode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the child leads its own group (start_new_session)
