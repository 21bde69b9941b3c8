"""/livez, /readyz and /metrics, served by every service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# A check answers True/False, or (ok, detail) to say why in the response.
ReadinessCheck = Callable[[], Awaitable[bool | tuple[bool, Any]]]
LivenessCheck = ReadinessCheck


async def run_checks(checks: dict[str, ReadinessCheck], timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
    """Run every check (concurrently, each bounded by `timeout`); an error or time-out fails it."""

    async def one(check: ReadinessCheck) -> tuple[bool, Any]:
        try:
            result = await asyncio.wait_for(check(), timeout=timeout)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"[:200]
        if isinstance(result, tuple):
            return bool(result[0]), result[1]
        return bool(result), None

    names = list(checks)
    outcomes = await asyncio.gather(*(one(checks[n]) for n in names))
    results: dict[str, Any] = {}
    for name, (ok, detail) in zip(names, outcomes):
        results[name] = ok if detail is None else {"ok": ok, "detail": detail}
    return all(ok for ok, _ in outcomes), results


def health_app(
    checks: dict[str, ReadinessCheck], liveness: dict[str, LivenessCheck] | None = None
) -> Starlette:
    """/livez fails only when restarting would help (a consume or background task has died);
    /readyz fails when a dependency is unreachable or a consumer has stopped making progress."""

    async def livez(_: Request) -> Response:
        alive, results = await run_checks(liveness or {})
        return JSONResponse({"status": "ok" if alive else "failed", "checks": results},
                            status_code=200 if alive else 503)

    async def readyz(_: Request) -> Response:
        ready, results = await run_checks(checks)
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/livez", livez), Route("/readyz", readyz), Route("/metrics", metrics)]
    )


class _EmbeddedServer(uvicorn.Server):
    """The host process owns SIGTERM/SIGINT; uvicorn must not take them over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AsgiServer:
    """Serves an ASGI app on the running event loop (health endpoints, the sandboxes)."""

    def __init__(self, app: Any, host: str, port: int):
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name=f"asgi:{self._server.config.port}")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            raise RuntimeError(f"could not serve on port {self._server.config.port}")

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, timeout=5)
