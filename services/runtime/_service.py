"""The one bootstrap: settings, telemetry, broker, health server and a service's own parts."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import ClassVar

from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from ._broker import build_broker
from ._health import AsgiServer, ReadinessCheck, health_app
from ._log_reset import LogResetWatch
from ._messaging import Outgoing, publish_all
from ._settings import Settings
from ._telemetry import build_tracer_provider
from ._topics import ensure_topics

log = logging.getLogger("autopost.service")


class ServiceContext:
    """What a service is given: its settings, broker, tracer, and how to send."""

    def __init__(self, name: str, settings: Settings, *, exporter: SpanExporter | None = None):
        self.name = name
        self.settings = settings
        self.tracer_provider: TracerProvider = build_tracer_provider(name, exporter=exporter)
        self.tracer = self.tracer_provider.get_tracer(f"autopost.{name}")
        self.broker: KafkaBroker = build_broker(settings.kafka, self.tracer_provider, name)

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    async def send(self, messages: list[Outgoing]) -> None:
        await publish_all(self.broker, messages)


class Service:
    """A service's own parts; the host calls these in order."""

    name: ClassVar[str]

    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx

    def register(self, broker: KafkaBroker) -> None:
        """Declare subscribers (before the broker starts)."""

    async def setup(self) -> None:
        """Open what handlers need (database pools, HTTP clients) before consuming starts."""

    async def started(self) -> None:
        """Start background work (dispatchers) once the broker is running."""

    async def stopping(self) -> None:
        """Stop background work, before the broker stops."""

    async def close(self) -> None:
        """Release what `setup` opened, after the broker has stopped."""

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {}


class ServiceHost:
    def __init__(self, service: Service, *, http_port: int | None = None):
        self.service = service
        self.ctx = service.ctx
        port = self.ctx.settings.http_port if http_port is None else http_port
        self._health = AsgiServer(
            health_app({"kafka": self._broker_ready, **service.readiness_checks()}),
            self.ctx.settings.http_host,
            port,
        ) if port else None
        self._log_resets = LogResetWatch(self.ctx.broker)

    async def _broker_ready(self) -> bool:
        return await self.ctx.broker.ping(timeout=2.0)

    async def start(self) -> None:
        await ensure_topics(self.ctx.settings.kafka)
        self.service.register(self.ctx.broker)
        await self.service.setup()
        await self.ctx.broker.start()
        await self._log_resets.start()
        await self.service.started()
        if self._health:
            await self._health.start()
        log.info("%s started", self.ctx.name)

    async def stop(self) -> None:
        if self._health:
            await self._health.stop()
        await self.service.stopping()
        await self._log_resets.stop()
        await self.ctx.broker.stop()
        await self.service.close()
        self.ctx.tracer_provider.shutdown()
        log.info("%s stopped", self.ctx.name)

    async def __aenter__(self) -> "ServiceHost":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_until_signalled(service: Service) -> None:
    """Run one service until SIGTERM or SIGINT, then stop it in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ServiceHost(service):
        await stop.wait()


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
