"""A TCP proxy in front of a server, so the local stack can make it unreachable for a while.

Services get the proxy's address instead of the server's; `cut()` drops every connection and
refuses new ones until `restore()`, which is what a database failover or a network partition
looks like from the services' side. It forwards to a TCP address or a unix socket (the
embedded Postgres listens on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import parse_qs, urlsplit, urlunsplit

_CHUNK = 64 * 1024


class OutageProxy:
    def __init__(self, target_host: str, target_port: int | None, *, unix_path: str | None = None):
        self.target_host, self.target_port, self.unix_path = target_host, target_port, unix_path
        self.available = True
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def for_postgres(cls, url: str) -> "OutageProxy":
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        port = parts.port or 5432
        if socket_dir and socket_dir.startswith("/"):
            return cls("", None, unix_path=f"{socket_dir}/.s.PGSQL.{port}")
        return cls(parts.hostname or "127.0.0.1", port)

    def url_through(self, url: str) -> str:
        """The same DSN, reaching the server through this proxy."""
        parts = urlsplit(url)
        query = "&".join(f"{k}={v}" for k, vs in parse_qs(parts.query).items() if k != "host" for v in vs)
        user = f"{parts.username}{':' + parts.password if parts.password else ''}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}", query=query))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.available = False
        for writer in list(self._writers):
            _abort(writer)
        for task in list(self._pipes):
            task.cancel()

    def restore(self) -> None:
        self.available = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.available:
            _abort(writer)
            return
        try:
            if self.unix_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort(writer)
            return
        self._writers.update((writer, up_writer))
        pipes = [asyncio.create_task(_pipe(reader, up_writer)), asyncio.create_task(_pipe(up_reader, writer))]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._pipes.discard(task)
            for w in (writer, up_writer):
                self._writers.discard(w)
                _abort(w)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once, with a reset: what a dead server or a cut network looks like."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    transport.abort()
