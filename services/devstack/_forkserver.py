"""Start the local stack's Python processes by forking one that has already imported them.

Every service imports the same libraries (FastStream, pydantic, asyncpg, OpenTelemetry, httpx,
aiohttp): about 50 MB of objects each. Started on their own, eight processes hold eight copies;
forked from one process that imported them once and moved its objects out of the collector's
reach (`gc.freeze`), they share those pages until one writes to them. This is `autopost dev`'s
way only: in production each service is a pod of its own.

The fork server is started with one end of a SOCK_SEQPACKET socket pair (one request or reply
per packet, so file descriptors travel with the request they belong to). A request carries the
command line, environment and working directory, with the child's stdout and stderr pipes as
SCM_RIGHTS; the reply is the pid. When a child exits the server reaps it and says so; the
parent sees nothing else of it, since the child is the server's, not the parent's.

What it can start is what `python -m MODULE ...` and `python -c CODE ...` start, run in the
child by `runpy` and `exec` as the interpreter would run them.

    python -m services.devstack._forkserver MODULE [MODULE ...]
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import runpy
import selectors
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence

import orjson

from services.devstack._parent_death import kill_with_parent

SOCKET_FD_ENV = "AUTOPOST_FORKSERVER_FD"
_PACKET = 64 * 1024


def forkable(argv: Sequence[str]) -> bool:
    """`python -m MODULE ...` or `python -c CODE ...`, with this interpreter."""
    return len(argv) >= 3 and argv[0] == sys.executable and argv[1] in ("-m", "-c")


class ForkServer:
    """The parent's side: `fork()` asks for a child and returns its pid and its exit code to come."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._sock.setblocking(False)
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name="fork server replies")
        self._lock = asyncio.Lock()  # one request at a time: replies come in request order

    @staticmethod
    def socket_pair() -> tuple[socket.socket, socket.socket]:
        """(ours, the server's): pass the second's fd to the server, then close it here."""
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    async def ready(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(asyncio.shield(self._ready), timeout)

    async def fork(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None,
                   stdout: int, stderr: int) -> tuple[int, asyncio.Future[int]]:
        """Start `argv` (see `forkable`) writing to the given pipe ends."""
        assert forkable(argv), argv
        request = orjson.dumps({"argv": list(argv[1:]), "env": dict(env), "cwd": cwd})
        async with self._lock:
            await self.ready()
            while True:
                try:
                    socket.send_fds(self._sock, [request], [stdout, stderr])
                    break
                except BlockingIOError:  # the server's queue is full: it is busy forking
                    await asyncio.sleep(0.01)
            pid = await asyncio.wait_for(self._pids.get(), 30)
        return pid, self._exits[pid]

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while packet := await loop.sock_recv(self._sock, _PACKET):
                reply = orjson.loads(packet)
                if "ready" in reply:
                    self._ready.set_result(None)
                elif "pid" in reply:  # always before that child's exit
                    self._exits[reply["pid"]] = loop.create_future()
                    self._pids.put_nowait(reply["pid"])
                elif (future := self._exits.pop(reply["exit"], None)) and not future.done():
                    future.set_result(reply["code"])
        except OSError:
            pass
        finally:  # the server is gone, and its children with it (parent-death signal)
            if not self._ready.done():
                self._ready.set_exception(RuntimeError("the fork server exited while starting"))
            for future in self._exits.values():
                if not future.done():
                    future.set_result(-signal.SIGKILL)
            self._sock.close()

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


# --- the server's side -------------------------------------------------------------------

def serve(modules: Sequence[str]) -> None:
    gc.disable()  # no collections while importing: fewer pages written before the freeze
    sock = socket.socket(fileno=int(os.environ.pop(SOCKET_FD_ENV)))
    # a fork copies only the forking thread: no BLAS thread pool (numpy's) to leave behind
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    for module in modules:
        importlib.import_module(module)
    gc.freeze()  # what exists now stays shared: the children's collector does not touch it
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with_parent = kill_with_parent()  # made here: it checks for the server as the parent
    _reply(sock, {"ready": True})
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is sock:
                    data, fds, _, _ = socket.recv_fds(sock, _PACKET, 2)
                    if not data:
                        return  # the parent closed its end
                    pid = os.fork()
                    if pid == 0:
                        _become(orjson.loads(data), fds, with_parent, close=[sock.fileno(), wake_read, wake_write])
                    for fd in fds:
                        os.close(fd)
                    _reply(sock, {"pid": pid})
                else:
                    os.read(wake_read, 4096)
                    _reap(sock)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _reply(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _reply(sock: socket.socket, message: dict) -> None:
    sock.send(orjson.dumps(message))


def _become(request: dict, fds: list[int], with_parent: Callable[[], None] | None, *,
            close: list[int]) -> None:
    """In the child: what `subprocess` would have set up, then the module or code, as Python would."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        os.setsid()  # its own process group, as `start_new_session` gives
        if with_parent is not None:
            with_parent()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in (devnull, *fds):
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        if request["cwd"]:
            os.chdir(request["cwd"])
        gc.enable()
        flag, target, *args = request["argv"]
        if flag == "-c":
            sys.argv = ["-c", *args]
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = [target, *args]  # runpy puts the module's path in argv[0]
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe must not stop the exit
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1:])
