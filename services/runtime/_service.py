"""The one bootstrap: settings, telemetry, broker, health server and a service's own parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import ContractError, Message, Topics

from . import _metrics as metrics
from ._background import stop_task
from ._broker import ConsumerWatch, build_broker, consumers_of
from ._health import AsgiServer, LivenessCheck, ReadinessCheck, health_app
from ._lag import LagMonitor
from ._messaging import Outgoing, Record, dead_letter_for, publish_all
from ._settings import Settings
from ._startup import when_reachable
from ._telemetry import build_tracer_provider
from ._topics import ensure_topics

M = TypeVar("M", bound=Message)

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

    def decode_all(self, records: Sequence[Record], model: type[M], consumer: str) -> tuple[list[M], list[Outgoing]]:
        """Each record as `model`, and a dead letter for each one that is not."""
        decoded, rejected = self.decode_each(records, lambda record: model, consumer)
        return [message for message, _ in decoded], rejected

    def decode_each(self, records: Sequence[Record], model_of: Callable[[Record], type[M]],
                    consumer: str) -> tuple[list[tuple[M, Record]], list[Outgoing]]:
        """Each record as the model `model_of` names for it (by topic, say), paired with its
        record (its headers carry the trace), in order; a dead letter for each one that is not."""
        decoded: list[tuple[M, Record]] = []
        rejected: list[Outgoing] = []
        for record in records:
            try:
                decoded.append((model_of(record).from_bytes(record.value), record))
            except ContractError as error:
                rejected.append(self.dead_letter(record, error, consumer))
        return decoded, rejected

    def dead_letter(self, record: Record, error: ContractError, consumer: str | None = None) -> Outgoing:
        """A message this service cannot read, set aside whole (reason, payload, headers)."""
        log.warning("dead-lettering %s@%s/%s: %s", record.topic, record.partition, record.offset, error)
        return dead_letter_for(record, reason=error.reason, message=error.message,
                               consumer=consumer or self.name, topic=self.topic(Topics.DEAD_LETTER))


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
        """Dependencies beyond Kafka (the database): /readyz fails while one is unreachable."""
        return {}

    def liveness_checks(self) -> dict[str, LivenessCheck]:
        """Background work whose death only a restart mends (a dispatcher task): /livez fails."""
        return {}


class ServiceHost:
    """Runs one service: topics, broker, health server, consumer watch and lag measurement."""

    def __init__(self, service: Service, *, http_port: int | None = None):
        self.service = service
        self.ctx = service.ctx
        port = self.ctx.settings.http_port if http_port is None else http_port
        self._health = AsgiServer(
            health_app(self.readiness_checks(), self.liveness_checks()),
            self.ctx.settings.http_host,
            port,
        ) if port else None
        self._lag: LagMonitor | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._running = False

    @property
    def consumers(self) -> list[ConsumerWatch]:
        return consumers_of(self.ctx.broker)

    def readiness_checks(self) -> dict[str, ReadinessCheck]:
        return {"kafka": self._broker_ready, "consumers": self._consumers_progressing,
                **self.service.readiness_checks()}

    def liveness_checks(self) -> dict[str, LivenessCheck]:
        return {"consumers": self._consumers_running, **self.service.liveness_checks()}

    async def _broker_ready(self) -> bool:
        return await self.ctx.broker.ping(timeout=1.5)  # inside the 2 s every check gets

    async def _consumers_progressing(self) -> tuple[bool, list[dict[str, Any]]]:
        states = [await watch.check(self.ctx.settings.stall_seconds) for watch in self.consumers]
        return self._running and all(s["running"] and not s["stalled"] for s in states), states

    async def _consumers_running(self) -> tuple[bool, dict[str, bool]]:
        running = {watch.group: watch.running for watch in self.consumers}
        # before start and after stop there is nothing to judge
        return (not self._running) or all(running.values()), running

    async def start(self) -> None:
        await when_reachable("broker", lambda: ensure_topics(self.ctx.settings.kafka))
        self.service.register(self.ctx.broker)
        await self.service.setup()
        await self.ctx.broker.start()
        await self.service.started()
        self._running = True
        metrics.SERVICE_INFO.labels(self.ctx.name).set(1)
        await self._start_watching()
        if self._health:
            await self._health.start()
        log.info("%s started", self.ctx.name)

    async def _start_watching(self) -> None:
        settings = self.ctx.settings
        groups = {watch.group: watch.topics for watch in self.consumers}
        if settings.lag_interval_seconds > 0 and groups:
            self._lag = LagMonitor(settings.kafka.bootstrap_servers, groups, settings.lag_interval_seconds)
            await self._lag.start()
        self._watch_task = asyncio.create_task(self._watch_consumers(), name=f"{self.ctx.name}:watch")

    async def _watch_consumers(self) -> None:
        """Keeps the stalled/assigned gauges current between probes, and rewinds a partition
        whose log was reset under its consumer (see `_rewind_reset_log`)."""
        interval = max(0.5, min(5.0, self.ctx.settings.stall_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            for watch in self.consumers:
                with contextlib.suppress(Exception):
                    await watch.check(self.ctx.settings.stall_seconds)

    async def stop(self) -> None:
        self._running = False
        if self._health:
            await self._health.stop()
        if self._watch_task is not None:
            await stop_task(self._watch_task)
        if self._lag is not None:
            await self._lag.stop()
        await self.service.stopping()
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
