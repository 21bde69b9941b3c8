"""The notifier's webhooks: refused at start if httpx could not send to them, Slack bodies
Slack takes (and cannot be made to ping), no webhook URL in the logs."""

import logging
import uuid
from datetime import datetime, timezone

import httpx
import orjson
import pytest

from contracts import AdminAlert, AlertKind, Platform
from services.notifier.webhooks import Webhook, body_for, parse_webhooks


@pytest.mark.parametrize("url, complaint", [
    ("https://[::1/x", "malformed"),
    ("https://hooks.example/a\x01b", "character"),
    ("https://hooks.example/a\nb", "character"),
    ("https:///services/x", "no host"),
    ("ftp://hooks.example/x", "http(s)"),
    ("http://hooks.example:0/x", "port"),
])
def test_a_webhook_url_httpx_would_refuse_is_refused_at_start_naming_the_webhook(url, complaint):
    config = orjson.dumps([{"name": "ops", "url": url}]).decode()
    for text in (config, url):
        with pytest.raises(ValueError) as raised:
            parse_webhooks(text)
        message = str(raised.value)
        assert complaint in message and message.startswith(("ops:", "webhook-")), message
        assert "hooks.example" not in message, "the URL may carry a secret: never in the error"


def test_good_webhooks_still_parse():
    hooks = parse_webhooks("slack+https://hooks.slack.com/services/T/B/X, http://[::1]:8080/ops?k=v")
    assert [h.format for h in hooks] == ["slack", "json"]
    assert all(h.name.startswith("webhook-") and "hooks" not in h.name for h in hooks)


def test_a_comma_listed_webhook_keeps_its_name_when_another_is_removed():
    """Deliveries are kept by name: the second URL must not take the first's pending alerts."""
    first, second = "https://a.example/hook/s3cret", "https://b.example/hook"
    before = {h.url: h.name for h in parse_webhooks(f"{first},{second}")}
    after = {h.url: h.name for h in parse_webhooks(second)}
    assert after[second] == before[second] != before[first]
    with pytest.raises(ValueError, match="ops: the url is missing"):
        parse_webhooks('[{"name": "ops"}]')


def alert(message: str, **extra) -> AdminAlert:
    return AdminAlert(alert_id=uuid.uuid4(), kind=AlertKind.ATTEMPTS_EXHAUSTED, reason="internal_error",
                      message=message, platform=Platform.TIKTOK,
                      raised_at=datetime.now(timezone.utc), **{"account_id": "acct", **extra})


def texts(body) -> list[str]:
    found = [body["text"]]
    for block in body["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [f["text"] for f in block.get("fields", [])] + [e["text"] for e in block.get("elements", [])]
    return found


def test_a_slack_section_never_passes_slacks_3000_characters():
    body = body_for(alert("x" * 4000), Webhook("chat", "https://h/x", "slack"), None)
    section = body["blocks"][0]["text"]["text"]
    assert len(section) <= 3000 and section.endswith("…")
    assert all(len(t) <= 3000 for t in texts(body))
    # escaping lengthens: still within, and never cut through an escape
    body = body_for(alert("&" * 4000, last_error={"m": "<" * 4000}), Webhook("chat", "https://h/x", "slack"), None)
    assert all(len(t) <= 3000 for t in texts(body))
    section = body["blocks"][0]["text"]["text"]
    assert section.removesuffix("…").endswith("&amp;")


def test_alert_text_is_escaped_so_it_cannot_ping_or_link_in_slack():
    evil = alert("<!channel> a & b <https://evil|click>", account_id="<@U123>",
                 last_error={"message": "<!here>"}, trace_id="ab" * 16)
    body = body_for(evil, Webhook("chat", "https://h/x", "slack"), "http://jaeger:16686")
    for text in texts(body):
        assert "<!channel>" not in text and "<!here>" not in text and "<@U123>" not in text
        assert "<https://evil" not in text
    assert "&lt;!channel&gt; a &amp; b" in body["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in body["text"]
    trace = next(f["text"] for f in body["blocks"][1]["fields"] if f["text"].startswith("*Trace*"))
    assert trace == f"*Trace*\n<http://jaeger:16686/trace/{'ab' * 16}|{'ab' * 16}>", "our own link still links"


def test_json_bodies_are_unchanged():
    a = alert("<!channel> & more")
    assert body_for(a, Webhook("ops", "https://h/x"), None)["message"] == "<!channel> & more"


async def test_no_webhook_url_reaches_the_logs_but_other_requests_are_logged_as_before(caplog):
    from services.notifier.delivery import WebhookUrlRedaction

    secret = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    hooks = [Webhook("chat", secret, "slack"), Webhook("ops", "http://ops.example/hook?token=TOPSECRET")]
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    caplog.set_level(logging.INFO, logger="httpx")
    redaction = WebhookUrlRedaction(hooks).install()
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            for hook in hooks:
                await http.post(hook.url, json={})
            await http.get("http://other.example/api/things")  # another service's request
    finally:
        redaction.remove()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRET" not in logged and "/services/" not in logged, logged
    assert "<webhook chat>" in logged and "<webhook ops>" in logged
    assert "http://other.example/api/things" in logged, "other services' httpx logs are kept"
    caplog.clear()
    async with httpx.AsyncClient(transport=transport) as http:
        await http.post(secret, json={})
    assert secret in caplog.text, "removed with the service: nothing left behind"
