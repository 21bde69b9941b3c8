"""JSON Schema per message and one AsyncAPI 3.0 document for every topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ._alerts import AdminAlert
from ._base import SCHEMA_VERSION, Message
from ._common import Platform
from ._content import ContentRejected, ContentSubmitted
from ._engagement import EngagementObserved
from ._queue import (
    DeadLetter,
    PostPlanned,
    PublishRequested,
    PublishResult,
    StatusObserved,
    StatusRequested,
)
from ._schedule import ScheduleInput, ScheduleSlot
from ._slots import SlotChanged
from ._topics import Topics

# topic -> (message, what the key is, producer -> consumer)
def channels() -> dict[str, tuple[type[Message], str, str]]:
    table: dict[str, tuple[type[Message], str, str]] = {
        Topics.CONTENT_SUBMITTED: (ContentSubmitted, "upstream id", "upstream -> planner"),
        Topics.CONTENT_REJECTED: (ContentRejected, "upstream id", "planner -> operators"),
        Topics.POST_PLANNED: (PostPlanned, "post id", "planner -> queue"),
        Topics.PUBLISH_RESULT: (PublishResult, "target id", "publishers -> queue"),
        Topics.STATUS_OBSERVED: (StatusObserved, "target id", "poller -> queue"),
        Topics.ENGAGEMENT_OBSERVED: (EngagementObserved, "account id", "queue -> planner"),
        Topics.SLOT_CHANGED: (SlotChanged, "account id", "queue -> planner"),
        Topics.DEAD_LETTER: (DeadLetter, "original key", "any consumer -> operators"),
        Topics.ALERTS: (AdminAlert, "target or account id", "queue, publishers -> notifier"),
    }
    for platform in Platform:
        table[Topics.publish_requested(platform)] = (
            PublishRequested, "account id", f"queue -> publisher-{platform.value}")
        table[Topics.status_requested(platform)] = (
            StatusRequested, "account id", "queue -> poller")
    return table


def message_schemas() -> dict[str, dict[str, Any]]:
    models: list[type] = [m for m, _, _ in channels().values()] + [ScheduleInput, ScheduleSlot]
    return {m.__name__: m.model_json_schema(by_alias=True) for m in dict.fromkeys(models)}


def asyncapi_document() -> dict[str, Any]:
    schemas = message_schemas()
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "autopost",
            "version": str(SCHEMA_VERSION),
            "description": "Messages between autopost's services. Postgres is the record; "
            "Kafka carries at-least-once, so every consumer is idempotent.",
        },
        "defaultContentType": "application/json",
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}},
    }
    for name, schema in schemas.items():
        defs = schema.pop("$defs", {})
        for def_name, def_schema in defs.items():
            doc["components"]["schemas"][def_name] = def_schema
        doc["components"]["schemas"][name] = schema
    for topic, (model, key, flow) in channels().items():
        name = model.__name__
        doc["components"]["messages"][name] = {
            "name": name,
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channel_id = topic.replace(".", "_").replace("-", "_")
        doc["channels"][channel_id] = {
            "address": topic,
            "description": f"{flow}; key: {key}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        doc["operations"][f"send_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
    text = orjson.dumps(doc).decode().replace("#/$defs/", "#/components/schemas/")
    return orjson.loads(text)


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in message_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_bytes(orjson.dumps(asyncapi_document(), option=orjson.OPT_INDENT_2))
    written.append(path)
    return written
