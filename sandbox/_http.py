"""Request/response helpers the fakes share."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ._store import SandboxSettings

_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: the benchmark drives thousands of requests through these fakes
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


async def read_json(request: Request) -> dict[str, Any] | None:
    """The JSON object body, {} when empty, None when it is not a JSON object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


async def read_params(request: Request) -> dict[str, str]:
    """Query parameters merged with a form-urlencoded or JSON body (Graph API style)."""
    params = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if request.method in {"POST", "PUT"}:
        raw = await request.body()
        if raw and content_type.startswith("application/json"):
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                params.update({k: v if isinstance(v, str) else orjson.dumps(v).decode()
                               for k, v in data.items()})
        elif raw:
            params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def account_for(token: str) -> str:
    """`sandbox:<accountId>` belongs to that account; any other token belongs to itself."""
    return token.removeprefix("sandbox:") if token.startswith("sandbox:") else token


def public_base(request: Request, settings: SandboxSettings) -> str:
    """The sandbox root as clients see it, for absolute upload URLs."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def parse_content_range(value: str) -> tuple[int | None, int | None, int | None] | None:
    """`bytes first-last/total` → (first, last, total); `*` parts → None; malformed → None."""
    match = _CONTENT_RANGE.match(value.strip())
    if not match:
        return None
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        None if total == "*" else int(total),
    )


async def count_body(request: Request) -> int:
    """Bytes in the request body, read as a stream and dropped (the fakes keep no media)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return size
