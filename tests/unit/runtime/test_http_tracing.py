"""The HTTP transport's spans: one per request, in the caller's trace, the context sent along."""

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime import TracedTransport, build_tracer_provider


def traced_client(status: int):
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider("test-http", exporter=exporter)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={})

    transport = TracedTransport(httpx.MockTransport(answer), provider)
    return httpx.AsyncClient(transport=transport), provider, exporter, seen


async def test_a_request_is_a_client_span_inside_the_callers_trace_and_carries_it():
    http, provider, exporter, seen = traced_client(200)
    tracer = provider.get_tracer("test")
    async with http:
        with tracer.start_as_current_span("publish") as parent:
            await http.post("https://open.example.com:8443/v2/post/publish/?code=secret-ish", json={})
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "POST"]
    assert span.kind is SpanKind.CLIENT
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["url.full"] == "https://open.example.com:8443/v2/post/publish/"  # no query
    assert span.attributes["server.address"] == "open.example.com"
    assert span.attributes["server.port"] == 8443
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET
    trace_id, span_id = seen[0].headers["traceparent"].split("-")[1:3]
    assert (int(trace_id, 16), int(span_id, 16)) == (span.context.trace_id, span.context.span_id)


async def test_a_server_error_marks_the_span_and_a_client_error_does_not():
    for status, expected in ((503, StatusCode.ERROR), (400, StatusCode.UNSET)):
        http, _, exporter, _ = traced_client(status)
        async with http:
            response = await http.get("http://127.0.0.1/x")
        assert response.status_code == status
        (span,) = exporter.get_finished_spans()
        assert span.status.status_code is expected
        assert span.attributes["http.response.status_code"] == status


async def test_a_transport_failure_ends_the_span_with_the_exception():
    exporter = InMemorySpanExporter()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = TracedTransport(httpx.MockTransport(refuse), build_tracer_provider("t", exporter=exporter))
    async with httpx.AsyncClient(transport=transport) as http:
        try:
            await http.get("http://127.0.0.1/x")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("the failure reached the caller")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
