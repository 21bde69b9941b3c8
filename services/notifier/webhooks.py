"""Where alerts go, and what each receiver is sent: our JSON, or a Slack-compatible body."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson

from contracts import AdminAlert

Format = Literal["json", "slack"]


@dataclass(frozen=True)
class Webhook:
    name: str  # what logs and the database show: webhook URLs often carry a secret
    url: str
    format: Format = "json"


def parse_webhooks(config: str) -> list[Webhook]:
    """A JSON array of {"name", "url", "format"}, or comma-separated URLs ("slack+https://…")."""
    config = config.strip()
    if not config:
        return []
    if config.startswith("["):
        items = orjson.loads(config)
        hooks = []
        for n, item in enumerate(items):
            name = f"webhook-{n + 1}"
            if not isinstance(item, dict):
                raise ValueError(f"{name}: each webhook must be an object with a url")
            name = str(item.get("name") or name)
            if not isinstance(item.get("url"), str):
                raise ValueError(f"{name}: the url is missing")
            hooks.append(Webhook(name, item["url"], item.get("format", "json")))
    else:
        hooks = []
        for raw in (part.strip() for part in config.split(",") if part.strip()):
            slack = raw.startswith("slack+")
            url = raw.removeprefix("slack+")
            hooks.append(Webhook(_name_of(url), url, "slack" if slack else "json"))
    for hook in hooks:
        if hook.format not in ("json", "slack"):
            raise ValueError(f"{hook.name}: format must be json or slack, not {hook.format!r}")
        _check_url(hook)
    if len({h.name for h in hooks}) != len(hooks):
        raise ValueError("webhook names must be distinct")
    return hooks


def _name_of(url: str) -> str:
    """A URL's own name, never the URL (its path is often the receiver's secret): deliveries are
    kept by webhook name, so a name by position would send a removed URL's pending alerts to
    the one that took its place."""
    return "webhook-" + hashlib.sha256(url.encode()).hexdigest()[:8]


def _check_url(hook: Webhook) -> None:
    """What httpx would refuse at the first send refused now, naming the webhook and never
    showing the URL (its path or query is often the receiver's secret)."""
    try:
        url = httpx.URL(hook.url)
        port = url.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        reason = "it has a character a URL cannot hold" if "character" in str(exc) else "it is malformed"
        raise ValueError(f"{hook.name}: the URL is not one that can be sent to ({reason})") from None
    if url.scheme not in ("http", "https") or not hook.url.lower().startswith(("https://", "http://")):
        raise ValueError(f"{hook.name}: the URL must be http(s)")
    if not url.host:
        raise ValueError(f"{hook.name}: the URL has no host")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{hook.name}: the URL's port is out of range")


def trace_link(alert: AdminAlert, jaeger_url: str | None) -> str | None:
    if not (alert.trace_id and jaeger_url):
        return None
    return f"{jaeger_url.rstrip('/')}/trace/{alert.trace_id}"


def body_for(alert: AdminAlert, hook: Webhook, jaeger_url: str | None) -> dict[str, Any]:
    link = trace_link(alert, jaeger_url)
    if hook.format == "slack":
        return _slack(alert, link)
    return {**alert.to_wire(), "traceUrl": link} if link else alert.to_wire()


SECTION_TEXT_MAX = 3000  # Slack refuses a block whose text is longer
FIELD_TEXT_MAX = 2000


def slack_escape(text: str) -> str:
    """Slack reads `&`, `<` and `>` as markup (`<!channel>` pings everyone): escaped, they are text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int) -> str:
    """`text` escaped for Slack, cut to `limit` characters (an ellipsis marks a cut); never
    through the middle of an escape."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[:limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _slack(alert: AdminAlert, link: str | None) -> dict[str, Any]:
    trace = None
    if link:
        # the link's markup is ours; what goes in it is escaped, and `|` would end the URL
        trace = f"<{slack_escape(link).replace('|', '%7C')}|{slack_escape(alert.trace_id or '')}>"
    elif alert.trace_id:
        trace = slack_escape(alert.trace_id)
    facts = [
        ("Kind", alert.kind.value), ("Reason", alert.reason),
        ("Platform", alert.platform.value if alert.platform else None), ("Account", alert.account_id),
        ("Post", str(alert.post_id) if alert.post_id else None),
        ("Target", str(alert.target_id) if alert.target_id else None),
    ]
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{_fit(value, FIELD_TEXT_MAX - len(name) - 3)}"}
              for name, value in facts if value]
    if trace:
        fields.append({"type": "mrkdwn", "text": f"*Trace*\n{trace}"})
    last_error = orjson.dumps(alert.last_error).decode() if alert.last_error else None
    prefix = ":rotating_light: "
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": prefix + _fit(alert.message, SECTION_TEXT_MAX - len(prefix))}},
        {"type": "section", "fields": fields[:10]},  # Slack takes at most 10 fields
    ]
    if last_error:
        # backticks would end the code span early: shown as the similar ˋ
        shown = _fit(last_error.replace("`", "ˋ"), 2900)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"last error: `{shown}`"}]})
    return {"text": _fit(f"autopost {alert.kind.value}: {alert.message}", 3000), "blocks": blocks}
