"""Every service `autopost service NAME` can run, and how to build it."""

from __future__ import annotations

from collections.abc import Callable

from contracts import Platform

from .runtime import Service, ServiceContext


def _planner(ctx: ServiceContext) -> Service:
    from .planner.app import PlannerService

    return PlannerService(ctx)


def _queue(ctx: ServiceContext) -> Service:
    from .queue.app import QueueService

    return QueueService(ctx)


def _poller(ctx: ServiceContext) -> Service:
    from .poller.app import PollerService

    return PollerService(ctx)


def _notifier(ctx: ServiceContext) -> Service:
    from .notifier.app import NotifierService

    return NotifierService(ctx)


def _publisher(platform: Platform) -> Callable[[ServiceContext], Service]:
    def build(ctx: ServiceContext) -> Service:
        from .publishers.app import PublisherService

        return PublisherService(ctx, platform)

    return build


SERVICES: dict[str, Callable[[ServiceContext], Service]] = {
    "planner": _planner,
    "queue": _queue,
    **{f"publisher-{p.value}": _publisher(p) for p in Platform},
    "poller": _poller,
    "notifier": _notifier,
}


def build_service(name: str, ctx: ServiceContext) -> Service:
    try:
        factory = SERVICES[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(SERVICES)}") from None
    return factory(ctx)
