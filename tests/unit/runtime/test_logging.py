"""One JSON object per line, with the current trace and span ids; secrets never reach a line."""

import io
import logging

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.runtime import configure_logging, scrub


@pytest.fixture
def lines():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", service="queue", fmt="json", stream=stream)
    yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_each_line_is_json_with_the_trace_and_span_of_the_current_span(lines):
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("autopost.test")
    log.info("outside any span")
    with tracer.start_as_current_span("work") as span:
        log.warning("inside %s", "a span")
        context = span.get_span_context()
    outside, inside = lines()
    assert "trace_id" not in outside and outside["message"] == "outside any span"
    assert inside["message"] == "inside a span"
    assert inside["level"] == "WARNING" and inside["logger"] == "autopost.test" and inside["service"] == "queue"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["time"].endswith("+00:00")


def test_secrets_are_scrubbed_from_messages_and_tracebacks(lines):
    log = logging.getLogger("autopost.test")
    try:
        raise RuntimeError("refresh failed for postgresql://autopost:hunter2@db:5432/autopost")
    except RuntimeError:
        log.exception("call with headers %s", {"Authorization": "Bearer abc.def-123"})
    (line,) = lines()
    text = orjson.dumps(line).decode()
    assert "hunter2" not in text and "abc.def-123" not in text
    assert "postgresql://autopost:[redacted]@db:5432/autopost" in line["exception"]
    assert "RuntimeError" in line["exception"]


@pytest.mark.parametrize(("raw", "secret"), [
    ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
    ("{'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
    ("Authorization: OAuth ya29.a0AfH6SMB", "ya29.a0AfH6SMB"),  # Google's older scheme
    ('{"Authorization": "Token tok-77"}', "tok-77"),
    ("authorization=raw-credential-1", "raw-credential-1"),
    ("GET /oauth?client_key=k&access_token=act.XYZ&x=1", "act.XYZ"),
    ('{"refresh_token": "rft.987", "open_id": "u1"}', "rft.987"),
    ("client_secret=s3cr3t&grant_type=refresh_token", "s3cr3t"),
    ("redis://:pa55@cache:6379/0", "pa55"),
    ("dsn host=db password=topsecret user=autopost", "topsecret"),
    ("token sandbox:creator-42 refused", "creator-42"),
])
def test_scrub_removes_each_kind_of_secret(raw, secret):
    cleaned = scrub(raw)
    assert secret not in cleaned
    assert "[redacted]" in cleaned


def test_scrub_leaves_ordinary_text_alone():
    text = "published target 5f0c on tiktok after 2 attempts (status=posted, url=https://www.tiktok.com/@a/video/1)"
    assert scrub(text) == text


def test_text_format_is_scrubbed_too():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers)
    configure_logging("INFO", fmt="text", stream=stream)
    try:
        logging.getLogger("autopost.test").info("Bearer tok-1 used")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
    assert "tok-1" not in stream.getvalue() and "autopost.test" in stream.getvalue()
