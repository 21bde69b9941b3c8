"""Engagement and blackouts on the wire: round trips, rejections naming the field."""

import uuid
from datetime import datetime, timezone

import orjson
import pytest

import contracts
from contracts import (
    Blackout,
    ContentSubmitted,
    ContractError,
    EngagementFigures,
    EngagementObserved,
    ObservedState,
    Platform,
    RemoteHandle,
    StatusCheck,
    StatusObserved,
    StatusRequested,
    Topics,
)

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def base_event(**changes) -> bytes:
    data = {"upstreamId": "b-1", "targets": [{"platform": "tiktok", "accountId": "a"}],
            "media": [{"url": "https://cdn.example.com/v.mp4"}], "contentType": "video"}
    data.update(changes)
    return orjson.dumps(data)


def test_both_shapes_of_blackout_are_read_and_written_in_camel_case():
    event = ContentSubmitted.from_bytes(base_event(blackouts=[
        {"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z"},
        {"localStart": "22:00", "localEnd": "07:00", "weekdays": ["Sat", "sunday"], "timezone": "Europe/Paris"},
    ]))
    absolute, recurring = event.blackouts
    assert absolute.end > absolute.start and recurring.weekdays == ["saturday", "sunday"]
    wire = orjson.loads(event.to_bytes())["blackouts"][1]
    assert wire == {"localStart": "22:00:00", "localEnd": "07:00:00", "weekdays": ["saturday", "sunday"],
                    "timezone": "Europe/Paris"}
    assert ContentSubmitted.from_bytes(event.to_bytes()) == event


@pytest.mark.parametrize("blackout", [
    {"start": "2026-12-24T00:00:00Z"},
    {"start": "2026-12-24T00:00:00Z", "end": "2026-12-23T00:00:00Z"},
    {"start": "2026-12-24T00:00:00Z", "end": "2026-12-25T00:00:00Z", "localStart": "01:00"},
    {"localStart": "22:00", "localEnd": "22:00"},
    {"localStart": "22:00", "localEnd": "23:00", "timezone": "Mars/Olympus"},
    {"localStart": "22:00", "localEnd": "23:00", "weekdays": ["someday"]},
    {"localStart": "25:00", "localEnd": "23:00"},
    {"start": "2026-12-24T00:00:00", "end": "2026-12-25T00:00:00Z"},
    {"whenever": True},
])
def test_bad_blackouts_are_rejected_naming_the_blackout(blackout):
    with pytest.raises(ContractError) as caught:
        ContentSubmitted.from_bytes(base_event(blackouts=[blackout]))
    assert caught.value.reason == "invalid_field"
    assert any(d["field"].startswith("blackouts.0") for d in caught.value.details), caught.value.details


def test_an_engagement_check_and_its_answer_round_trip():
    handle = RemoteHandle(kind="tiktok.publish_id", id="p1")
    asked = StatusRequested(message_id=uuid.uuid4(), target_id=uuid.uuid4(), platform=Platform.TIKTOK,
                            account_id="a", attempt=1, check=StatusCheck.ENGAGEMENT, remote_handle=handle,
                            url="https://www.tiktok.com/@a/video/1", age_seconds=3600)
    assert orjson.loads(asked.to_bytes())["check"] == "engagement"
    assert StatusRequested.from_bytes(asked.to_bytes()) == asked
    figures = EngagementFigures(views=100, likes=9, comments=1, shares=0, saves=2, audience_size=400)
    answer = StatusObserved(message_id=uuid.uuid4(), target_id=asked.target_id, attempt=1,
                            state=ObservedState.PUBLISHED, observed_at=NOW, check=StatusCheck.ENGAGEMENT,
                            age_seconds=3600, engagement=figures)
    again = StatusObserved.from_bytes(answer.to_bytes())
    assert again.engagement.interactions == 12 and again.engagement.audience_size == 400
    old = StatusObserved.from_bytes(orjson.dumps({"messageId": str(uuid.uuid4()), "targetId": str(uuid.uuid4()),
                                                  "attempt": 1, "state": "processing",
                                                  "observedAt": NOW.isoformat()}))
    assert old.check is StatusCheck.STATUS and old.engagement is None, "a status answer stays one"


def test_engagement_observed_goes_to_the_planner_keyed_by_account():
    message = EngagementObserved(
        message_id=uuid.uuid4(), target_id=uuid.uuid4(), post_id=uuid.uuid4(), platform=Platform.YOUTUBE,
        account_id="UCx", content_type="video", scheduled_time=NOW, published_at=NOW, age_seconds=86_400,
        final=True, figures=EngagementFigures(likes=3, audience_size=10), expected_engagement=0.2,
        strategy="learned", observed_at=NOW)
    assert EngagementObserved.from_bytes(message.to_bytes()) == message
    assert EngagementObserved.TOPIC == Topics.ENGAGEMENT_OBSERVED == "engagement.observed"
    model, key, flow = contracts.channels()[Topics.ENGAGEMENT_OBSERVED]
    assert model is EngagementObserved and key == "account id" and flow == "queue -> planner"
    assert "EngagementObserved" in contracts.message_schemas()
    assert Blackout.__name__ in str(contracts.message_schemas()["ContentSubmitted"])
