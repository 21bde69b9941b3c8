"""Where alerts go, and what each receiver is sent: our JSON, or a Slack-compatible body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
        hooks = [Webhook(str(i.get("name") or f"webhook-{n + 1}"), str(i["url"]), i.get("format", "json"))
                 for n, i in enumerate(items)]
    else:
        hooks = []
        for n, raw in enumerate(part.strip() for part in config.split(",") if part.strip()):
            slack = raw.startswith("slack+")
            hooks.append(Webhook(f"webhook-{n + 1}", raw.removeprefix("slack+"), "slack" if slack else "json"))
    for hook in hooks:
        if hook.format not in ("json", "slack"):
            raise ValueError(f"{hook.name}: format must be json or slack, not {hook.format!r}")
        if not hook.url.startswith(("https://", "http://")):
            raise ValueError(f"{hook.name}: the URL must be http(s)")
    if len({h.name for h in hooks}) != len(hooks):
        raise ValueError("webhook names must be distinct")
    return hooks


def trace_link(alert: AdminAlert, jaeger_url: str | None) -> str | None:
    if not (alert.trace_id and jaeger_url):
        return None
    return f"{jaeger_url.rstrip('/')}/trace/{alert.trace_id}"


def body_for(alert: AdminAlert, hook: Webhook, jaeger_url: str | None) -> dict[str, Any]:
    link = trace_link(alert, jaeger_url)
    if hook.format == "slack":
        return _slack(alert, link)
    return {**alert.to_wire(), "traceUrl": link} if link else alert.to_wire()


def _slack(alert: AdminAlert, link: str | None) -> dict[str, Any]:
    facts = [
        ("Kind", alert.kind.value), ("Reason", alert.reason),
        ("Platform", alert.platform.value if alert.platform else None), ("Account", alert.account_id),
        ("Post", str(alert.post_id) if alert.post_id else None),
        ("Target", str(alert.target_id) if alert.target_id else None),
        ("Trace", f"<{link}|{alert.trace_id}>" if link else alert.trace_id),
    ]
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in facts if value]
    last_error = orjson.dumps(alert.last_error).decode() if alert.last_error else None
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":rotating_light: {alert.message}"}},
        {"type": "section", "fields": fields[:10]},  # Slack takes at most 10 fields
    ]
    if last_error:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"last error: `{last_error[:2900]}`"}]})
    return {"text": f"autopost {alert.kind.value}: {alert.message}"[:3000], "blocks": blocks}
