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

from ._forkserver import SOCKET_FD_ENV, ForkServer, forkable
from ._parent_death import kill_with_parent

_MAX_LINE = 64 * 1024  # longer lines are cut rather than buffered without bound
_DRAIN_AFTER_EXIT = 0.5  # seconds to wait for the last output once a child has exited
_FORK_SERVER = "preload"  # the child that forks the others, with `preload`


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
    pass_fds: tuple[int, ...] = ()
    pid: int = 0
    exited: asyncio.Future[int] | None = None
    closed: asyncio.Future[object] | None = None  # its output pipes are closed
    close: Callable[[], None] = lambda: None
    watcher: asyncio.Task[int] | None = None
    stopping: bool = False  # an exit we asked for is not reported as unexpected
    returncode: int | None = field(default=None)


class ProcessGroup:
    """Start named children; `async with ProcessGroup() as group:` stops them all on the way out.

    An exit is *unexpected* unless it came from `stop`, `restart` or `stop_all`; `kill` is
    the chaos tool and its result counts as unexpected (it simulates a crash). Unexpected
    exits are written to the output, passed to `on_unexpected_exit` (may be async) and
    queued for `wait_unexpected_exit()`.

    With `preload` (module names), `python -m/-c` children are forked from one child,
    `preload`, that imported those modules once: they share its memory (`_forkserver`).
    """

    def __init__(
        self,
        *,
        output: TextIO | None = None,
        on_unexpected_exit: Callable[[ChildExit], object] | None = None,
        preload: Sequence[str] = (),
    ):
        self._output = output  # None: sys.stderr as it is at write time (pytest swaps it)
        self._on_unexpected_exit = on_unexpected_exit
        self._preload = tuple(preload)
        self._fork_server: ForkServer | None = None
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
        return await self._start(name, argv, env=env, cwd=cwd)

    async def _start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                     cwd: str | Path | None = None, pass_fds: tuple[int, ...] = ()) -> int:
        if (old := self._children.get(name)) and old.returncode is None:
            raise ValueError(f"{name!r} is already running (pid {old.pid})")
        child = _Child(name, tuple(argv), dict(env) if env is not None else None, cwd, pass_fds)
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
        child = _Child(old.name, old.argv, old.env, old.cwd, old.pass_fds)
        await self._spawn(child)
        self._children[name] = child
        return child.pid

    async def stop_all(self, timeout: float = 5.0) -> None:
        """SIGTERM to every running child (latest started first), SIGKILL to those still there after `timeout`.
        The fork server goes last: its children die with it, before they could stop in order."""
        children = list(reversed(self._children.values()))
        await self._stop_children([c for c in children if c.name != _FORK_SERVER], timeout)
        await self._stop_children([c for c in children if c.name == _FORK_SERVER], timeout)

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
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(child.env or {})}  # lines appear as they are written
        if self._preload and child.name != _FORK_SERVER and forkable(child.argv):
            await self._fork(child, env)
        else:
            await self._exec(child, env)
        child.watcher = asyncio.create_task(self._watch(child), name=f"watch {child.name}")

    async def _exec(self, child: _Child, env: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
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
            pass_fds=child.pass_fds,
        )
        child.pid = transport.get_pid()
        child.exited, child.closed, child.close = protocol.exited, protocol.closed, transport.close

    async def _fork(self, child: _Child, env: dict[str, str]) -> None:
        server = await self._running_fork_server()
        loop = asyncio.get_running_loop()
        protocol = _OutputProtocol(lambda line: self._write(child.name, line), loop)
        pipes = [os.pipe(), os.pipe()]  # stdout, stderr: (read, write)
        try:
            child.pid, child.exited = await server.fork(child.argv, env, str(child.cwd) if child.cwd else None,
                                                        pipes[0][1], pipes[1][1])
        finally:
            for _, write in pipes:
                os.close(write)
        readers = [_PipeReader(protocol, fd, loop) for fd in (1, 2)]
        transports = [(await loop.connect_read_pipe(lambda r=reader: r, open(read, "rb", 0)))[0]
                      for reader, (read, _) in zip(readers, pipes)]
        child.closed = asyncio.gather(*(reader.lost for reader in readers))

        def close() -> None:
            for transport in transports:
                transport.close()

        child.close = close

    async def _running_fork_server(self) -> ForkServer:
        """The `preload` child, started on first use, and again if it has exited."""
        if self._fork_server is not None and self.is_running(_FORK_SERVER):
            return self._fork_server
        if self._fork_server is not None:
            await self._fork_server.close()
        ours, theirs = ForkServer.socket_pair()
        try:
            await self._start(_FORK_SERVER, [sys.executable, "-m", "services.devstack._forkserver", *self._preload],
                              env={SOCKET_FD_ENV: str(theirs.fileno())}, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self._fork_server = ForkServer(ours)
        await self._fork_server.ready()
        return self._fork_server

    async def _watch(self, child: _Child) -> int:
        assert child.exited is not None and child.closed is not None
        returncode = child.returncode = await child.exited
        # asyncio's Process.wait() would also wait for the pipes, which a grandchild may hold
        # open; so: exit first, then a short drain, then kill whatever is left of its group.
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.closed), _DRAIN_AFTER_EXIT)
        if not child.closed.done():
            _signal_group(child.pid, signal.SIGKILL)
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.closed), _DRAIN_AFTER_EXIT)
        child.close()
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


class _PipeReader(asyncio.Protocol):
    """One output pipe of a forked child, fed to the child's `_OutputProtocol` as fd 1 or 2."""

    def __init__(self, lines: _OutputProtocol, fd: int, loop: asyncio.AbstractEventLoop):
        self._lines, self._fd = lines, fd
        self.lost: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self._lines.pipe_data_received(self._fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lines.pipe_connection_lost(self._fd, exc)
        if not self.lost.done():
            self.lost.set_result(None)


def _signal_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the child leads its own group (start_new_session)
