"""A post from content event to published on all three sandboxes, in one trace."""

from contextlib import AsyncExitStack

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts import Platform, Topics
from harness import (
    ALL_SERVICES,
    Pipeline,
    connect_accounts,
    event_json,
    produce,
    serve_sandbox,
    settings_for,
    target_rows,
    wait_for,
)
from services.runtime import build_tracer_provider, current_carrier

pytestmark = pytest.mark.e2e


async def test_event_to_published_on_every_platform_in_one_trace(kafka_bootstrap, topic_prefix, database_url):
    exporter = InMemorySpanExporter()
    async with AsyncExitStack() as stack:
        sandbox_url = await serve_sandbox(stack, processing_seconds=0.3)
        settings = settings_for(kafka_bootstrap, topic_prefix, database_url, sandbox_url)
        accounts = [("tiktok", "creator-1"), ("instagram", "17841400000000001"), ("youtube", "UCchannel")]
        await connect_accounts(settings, accounts)
        await stack.enter_async_context(Pipeline(settings, exporter=exporter))

        upstream = build_tracer_provider("upstream", exporter=exporter).get_tracer("test")
        event = event_json("e2e-1", accounts, f"{sandbox_url}/media/clip.mp4?bytes=700000")
        with upstream.start_as_current_span("upstream submit") as root:
            headers = [(k, v.encode()) for k, v in current_carrier().items()]
            await produce(kafka_bootstrap, topic_prefix + Topics.CONTENT_SUBMITTED, [event],
                          key=b"e2e-1", headers=headers)
        trace_id = root.get_span_context().trace_id

        async def all_posted():
            rows = await target_rows(database_url)
            return rows if len(rows) == 3 and all(r["status"] == "posted" for r in rows) else None

        rows = await wait_for(all_posted, 60, "every target posted")
        async with httpx.AsyncClient() as http:
            published = (await http.get(f"{sandbox_url}/_sandbox/published")).json()

    # every target of the post, once each, with the URL the platform gave
    assert sorted(r["platform"] for r in rows) == sorted(p.value for p in Platform)
    assert sorted(p["platform"] for p in published) == sorted(p.value for p in Platform)
    urls = {r["platform"]: r["url"] for r in rows}
    assert urls["youtube"].startswith("https://www.youtube.com/watch?v=")
    assert urls["instagram"].startswith("https://www.instagram.com/")
    assert urls["tiktok"].startswith("https://www.tiktok.com/@")
    assert {p["url"] for p in published if p["url"]} <= set(urls.values())
    for row in rows:
        assert row["published_at"] >= row["scheduled_time"]

    # one trace, from the upstream producer through every service, with HTTP calls inside it
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    services = {s.resource.attributes["service.name"] for s in spans}
    # the notifier is not on a post's path unless something fails
    assert set(ALL_SERVICES) - {"notifier"} <= services, services
    names = {s.name for s in spans}
    assert {"plan content", "dispatch publish", "dispatch status"} <= names
    assert any(s.attributes.get("http.request.method") or s.attributes.get("http.method") for s in spans), \
        "httpx calls to the platforms are in the post's trace"
