"""Fault injection: rules aimed at a platform, an operation and an account, firing with a
probability and at most `count` times, set through `/_sandbox/faults` or `autopost sandbox
--faults` / `--fault`.

    {"kind": "rate_limit", "platform": "tiktok", "operation": "video_init", "account": "acme",
     "probability": 0.5, "count": 3, "skip": 0, "waitSeconds": 2}

Kinds, each answered in the platform's own envelope and codes:
- `rate_limit`: the platform's rate-limit error, with its wait (Retry-After / usage header);
- `server_error`: a 5xx the platform documents as transient;
- `timeout`: a slow answer: waits `waitSeconds`, then carries the request out anyway, as a server
  does when only the answer is lost;
- `auth_expired`: the platform's expired-token error (e.g. in the middle of an upload);
- `quota`: the platform's daily-cap error;
- `lost_chunk` (uploads): the chunk is acknowledged or half-kept but not stored whole;
- `processing_failure` (creates): the object is accepted, then fails in processing with
  `reason` (TikTok fail_reason, Instagram subcode, YouTube failureReason);
- `session_expired` (uploads): the upload URL or session is gone (404).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ._store import Faults

ANSWERED = {"rate_limit", "server_error", "auth_expired", "quota"}
MARKED = {"lost_chunk", "processing_failure", "session_expired"}
KINDS = ANSWERED | MARKED | {"timeout"}
UPLOADS = {"tiktok.upload", "youtube.upload"}
CREATES = {"tiktok.video_init", "tiktok.inbox_init", "tiktok.content_init", "instagram.media.post",
           "youtube.insert"}
# a pull init carried out without its answer cannot be told apart from one never made: clients
# rightly stop there (platforms.md §1.9), so the flaky mix does not slow those down
UNANSWERABLE = ("tiktok.video_init", "tiktok.content_init")

Responder = Callable[["FaultRule"], Response]


@dataclass
class FaultRule:
    kind: str
    platform: str | None = None
    operation: str | None = None  # "video_init" or "tiktok.video_init"; comma-separated for several
    exclude: tuple[str, ...] = ()  # operations this rule leaves alone
    account: str | None = None
    probability: float = 1.0
    count: int | None = None  # fire at most this many times
    skip: int = 0  # let this many matching requests through first
    wait_seconds: float = 1.0  # rate_limit: the server's wait; timeout: the delay
    reason: str | None = None  # processing_failure / quota: the platform's reason or subcode
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    seen: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(sorted(KINDS))}")
        if not 0 <= self.probability <= 1:
            raise ValueError("probability must be between 0 and 1")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FaultRule":
        names = {"kind", "platform", "operation", "account", "probability", "count", "skip", "reason"}
        unknown = set(data) - names - {"waitSeconds", "exclude"}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        return cls(**{k: v for k, v in data.items() if k in names},
                   wait_seconds=float(data.get("waitSeconds", 1.0)), exclude=tuple(data.get("exclude", ())))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "platform": self.platform, "operation": self.operation,
                "exclude": list(self.exclude), "account": self.account, "probability": self.probability,
                "count": self.count, "skip": self.skip, "waitSeconds": self.wait_seconds,
                "reason": self.reason, "seen": self.seen, "hits": self.hits}

    def applies(self, operation: str, account: str | None) -> bool:
        platform = operation.split(".", 1)[0]
        if self.platform and self.platform != platform:
            return False
        if self.operation and not any(_same(operation, o.strip()) for o in self.operation.split(",")):
            return False
        if any(_same(operation, o) for o in self.exclude):
            return False
        if self.account and self.account != account:
            return False
        if self.kind in ("lost_chunk", "session_expired") and operation not in UPLOADS:
            return False
        if self.kind == "processing_failure" and operation not in CREATES:
            return False
        return True


def _same(operation: str, name: str) -> bool:
    return operation == name or operation.split(".", 1)[-1] == name


class FaultInjector(Faults):
    """The rules, in order: the first that applies and fires decides the request."""

    def __init__(self, responders: dict[str, Callable[[str, FaultRule], Response]] | None = None,
                 rng: random.Random | None = None):
        self.rules: list[FaultRule] = []
        self.injected: Counter[str] = Counter()
        self.responders = responders or {}
        self.rng = rng or random.Random()

    def add(self, rules: list[FaultRule]) -> list[str]:
        self.rules.extend(rules)
        return [r.id for r in rules]

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) < before

    def clear(self) -> None:
        self.rules.clear()
        self.injected.clear()

    async def before(self, operation: str, request: Request, account: str | None = None) -> Response | None:
        for rule in self.rules:
            if not rule.applies(operation, account):
                continue
            rule.seen += 1
            if rule.seen <= rule.skip or (rule.count is not None and rule.hits >= rule.count):
                continue
            if rule.probability < 1 and self.rng.random() >= rule.probability:
                continue
            rule.hits += 1
            self.injected[rule.kind] += 1
            return await self._apply(rule, operation, request)
        return None

    async def _apply(self, rule: FaultRule, operation: str, request: Request) -> Response | None:
        if rule.kind == "timeout":
            await request.body()  # read it now: the client may be gone when the work is done
            await asyncio.sleep(rule.wait_seconds)
            return None
        if rule.kind in MARKED:
            setattr(request.state, rule.kind, rule.reason or True)
            return None
        return self.responders[operation.split(".", 1)[0]](rule.kind, rule)


def flaky(probability: float = 0.2, wait_seconds: float = 1.0, delay_seconds: float = 3.0) -> list[FaultRule]:
    """About one request in `probability` meets a transient fault a correct client survives:
    server errors, short rate limits, slow answers, lost chunks, processing failures."""
    share = probability / 4
    return [
        FaultRule("lost_chunk", probability=probability),  # uploads only
        FaultRule("processing_failure", probability=share / 2),  # creates only
        FaultRule("timeout", probability=share, wait_seconds=delay_seconds, exclude=UNANSWERABLE),
        FaultRule("rate_limit", probability=share * 1.5, wait_seconds=wait_seconds),
        FaultRule("server_error", probability=share * 1.5),
    ]


PROFILES: dict[str, Callable[[], list[FaultRule]]] = {"flaky": flaky, "none": list}
