"""OpenTelemetry in one place: a tracer provider per service, and trace context on messages
and requests.

The provider is passed explicitly (FastStream's middleware, asyncpg's instrumentation and our
HTTP transport all take one), so tests can run several services in one process, each with its own
`service.name`, into one in-memory exporter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")


def build_tracer_provider(
    service_name: str, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider for one service; exports OTLP/HTTP when `OTEL_EXPORTER_OTLP_*` is set."""
    resource = Resource.create({"service.name": service_name, "service.namespace": "autopost"})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif _otlp_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _otlp_configured() -> bool:
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def headers_to_dict(headers: Iterable[tuple[str, bytes]] | Mapping[str, str] | None) -> dict[str, str]:
    """Kafka record headers (name, bytes) pairs, as text."""
    if not headers:
        return {}
    if isinstance(headers, Mapping):
        return dict(headers)
    return {name: value.decode("utf-8", "replace") for name, value in headers if value is not None}


def trace_carrier(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the W3C trace headers: what a post stores to continue its trace later."""
    return {name: headers[name] for name in TRACE_HEADERS if name in headers}


def context_from(carrier: Mapping[str, str] | None) -> Context:
    return _PROPAGATOR.extract(dict(carrier or {}))


def current_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject_carrier(carrier)
    return carrier


def inject_carrier(headers: MutableMapping[str, str]) -> None:
    """The current trace context into outgoing headers (HTTP requests)."""
    _PROPAGATOR.inject(headers)


def trace_id_of(carrier: Mapping[str, str] | None) -> str | None:
    span_context = trace.get_current_span(context_from(carrier)).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
