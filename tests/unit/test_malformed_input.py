"""Hypothesis throws malformed input at every decoder and at the planner's handler: each one is
taken or rejected with a reason; nothing raises anything else, nothing is dropped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import (
    AdminAlert,
    ContentRejected,
    ContractError,
    DeadLetter,
    Message,
    PostPlanned,
    PublishRequested,
    PublishResult,
    StatusObserved,
    StatusRequested,
    Topics,
)
from services.planner.handlers import PlannerHandlers
from services.runtime import Record, ServiceContext, Settings, open_database

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "content_event.json").read_text())
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    """Every place in a JSON document a mutation can hit."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


PATHS = [p for p in _paths(EXAMPLE) if p]


@st.composite
def mutated_events(draw) -> bytes:
    """The documented event with one place replaced, removed, or joined by a stranger."""
    event = json.loads(json.dumps(EXAMPLE))
    path = draw(st.sampled_from(PATHS))
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "remove":
        parent.pop(path[-1]) if isinstance(parent, dict) else parent.pop(path[-1])
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    else:
        parent.append(draw(json_values))
    return orjson.dumps(event)


payloads = st.one_of(st.binary(max_size=200), json_values.map(orjson.dumps), mutated_events())

MODELS: list[type[Message]] = [PostPlanned, PublishRequested, PublishResult, StatusRequested, StatusObserved,
                               DeadLetter, AdminAlert, ContentRejected]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(raw=payloads, model=st.sampled_from(MODELS))
def test_every_decoder_takes_a_message_or_gives_a_reason(raw, model):
    try:
        model.from_bytes(raw)
    except ContractError as error:
        assert error.reason and error.message


class SentByPlanner:
    """The planner's handler over a real database (its record is in Postgres), in an event loop
    of its own that every example reuses, and what it sent."""

    def __init__(self, database_url: str):
        self.ctx = ServiceContext("planner", Settings(database_url=database_url))
        self.sent = []

        async def send(messages):
            self.sent.extend(messages)

        self.ctx.send = send
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(open_database(database_url, self.ctx.tracer_provider))
        self.handlers = PlannerHandlers(self.ctx, self.pool, clock=lambda: NOW)

    def submitted(self, record: Record) -> None:
        self.loop.run_until_complete(self.handlers.submitted([record]))

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


@pytest.fixture
def planner(database_url) -> Iterator[SentByPlanner]:
    planner = SentByPlanner(database_url)
    yield planner
    planner.close()


@pytest.mark.integration
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=payloads)
def test_the_planner_plans_or_rejects_every_event_with_a_reason(planner, raw):
    planner.sent.clear()
    record = Record(topic=Topics.CONTENT_SUBMITTED, partition=0, offset=1, key=b"k", value=raw, headers={})
    planner.submitted(record)
    (out,) = planner.sent  # one answer per event: nothing dropped
    assert out.topic in (Topics.POST_PLANNED, Topics.CONTENT_REJECTED), \
        f"not planned nor rejected, but {out.topic}: {out.value[:300]!r}"
    if out.topic == Topics.CONTENT_REJECTED:
        rejected = ContentRejected.from_bytes(out.value)
        assert rejected.reason and rejected.payload() == raw
