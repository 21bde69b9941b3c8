"""The wire model base: camelCase on the wire, snake_case in Python, orjson bytes."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = 1

M = TypeVar("M", bound="WireModel")


class ContractError(ValueError):
    """A payload that is not a valid message; `reason` is a machine-readable code."""

    def __init__(self, reason: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details = details or []


class WireModel(BaseModel):
    """Base of every message and nested shape on the wire.

    Internal messages ignore unknown fields so a newer producer can add one during a rolling
    upgrade; the upstream event (`ContentSubmitted`) forbids them, since it is outside input.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        str_strip_whitespace=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_wire())


class Message(WireModel):
    """A top-level message: carries its schema version."""

    schema_version: int = SCHEMA_VERSION
    TOPIC: ClassVar[str] = ""

    @classmethod
    def from_bytes(cls: type[M], raw: bytes | bytearray | memoryview | str) -> M:
        return decode(cls, raw)


def decode(model: type[M], raw: bytes | bytearray | memoryview | str) -> M:
    """Parse and validate one payload, or raise `ContractError` with a reason code."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("invalid_json", f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("invalid_json", "payload must be a JSON object")
    version = data.get("schemaVersion", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ContractError(
            "unsupported_schema_version",
            f"schemaVersion {version!r} is not supported (this build reads {SCHEMA_VERSION})",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [_detail(err) for err in exc.errors(include_url=False, include_input=False)]
        raise ContractError(_reason_for(details), _summary(details), details) from None


def _detail(err: Any) -> dict[str, Any]:
    return {
        "field": ".".join(str(part) for part in err["loc"]),
        "type": err["type"],
        "message": err["msg"],
    }


def _reason_for(details: list[dict[str, Any]]) -> str:
    """The most specific reason code for a set of field errors."""
    for detail in details:
        leaf = detail["field"].rsplit(".", 1)[-1]
        if leaf == "platform":
            return "unknown_platform"
        if leaf == "accountId" and detail["type"] in {"missing", "string_too_short"}:
            return "missing_account"
    return "invalid_field"


def _summary(details: list[dict[str, Any]]) -> str:
    return "; ".join(f"{d['field'] or '(root)'}: {d['message']}" for d in details[:5])
