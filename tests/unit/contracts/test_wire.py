"""The wire contracts: camelCase round trips, machine-readable rejections, schemas."""

import json
from pathlib import Path

import orjson
import pytest

import contracts
from contracts import ContentSubmitted, ContractError, Platform, Topics

EXAMPLE = Path(__file__).parents[3] / "examples" / "content_event.json"


def event(**changes) -> bytes:
    data = json.loads(EXAMPLE.read_text())
    data.update(changes)
    return orjson.dumps(data)


def test_the_documented_example_is_a_valid_event():
    submitted = ContentSubmitted.from_bytes(EXAMPLE.read_bytes())
    assert [t.platform for t in submitted.targets] == [Platform.TIKTOK, Platform.INSTAGRAM, Platform.YOUTUBE]
    assert submitted.audience_data.peak_days == ["tuesday", "thursday", "saturday"]


def test_round_trip_keeps_camel_case_names_on_the_wire():
    wire = orjson.loads(ContentSubmitted.from_bytes(event()).to_bytes())
    assert {"upstreamId", "contentType", "audienceData", "historicalPerformance"} <= wire.keys()
    assert wire["audienceData"]["activityHours"] == [8, 12, 18, 19, 20, 21]
    assert wire["historicalPerformance"]["bestTimes"][0]["engagementRate"] == 0.071


def test_same_upstream_id_gives_the_same_post_and_target_ids():
    a, b = ContentSubmitted.from_bytes(event()), ContentSubmitted.from_bytes(event(caption="changed"))
    assert a.post_id == b.post_id
    assert contracts.target_id_for(a.post_id, Platform.TIKTOK, "x") == contracts.target_id_for(
        b.post_id, Platform.TIKTOK, "x")


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b"not json", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        (event(targets=[{"platform": "myspace", "accountId": "a"}]), "unknown_platform", "targets.0.platform"),
        (event(targets=[{"platform": "tiktok"}]), "missing_account", "targets.0.accountId"),
        (event(targets=[{"platform": "tiktok", "accountId": ""}]), "missing_account", "targets.0.accountId"),
        (event(contentType="gif"), "invalid_field", "contentType"),
        (event(schemaVersion=99), "unsupported_schema_version", None),
        (event(surprise=1), "invalid_field", "surprise"),
        (event(audienceData={"timezone": "Mars/Olympus", "activityHours": [9]}), "invalid_field",
         "audienceData.timezone"),
        (event(audienceData={"timezone": "UTC", "activityHours": [24]}), "invalid_field",
         "audienceData.activityHours.0"),
        (event(schedule={"mode": "at"}), "invalid_field", "schedule.at.scheduledTime"),
        (event(schedule={"mode": "optimal", "notBefore": "2026-12-02T00:00:00Z",
                         "notAfter": "2026-12-01T00:00:00Z"}), "invalid_field", "schedule.optimal"),
        (event(targets=[{"platform": "tiktok", "accountId": "a"}, {"platform": "tiktok", "accountId": "a"}]),
         "invalid_field", ""),
        # a folder of the zone database: Python 3.11 raises IsADirectoryError, an "outage"
        (event(audienceData={"timezone": "US", "activityHours": [9]}), "invalid_field", "audienceData.timezone"),
        (event(blackouts=[{"localStart": "22:00", "localEnd": "07:00", "timezone": "Europe"}]), "invalid_field",
         "blackouts.0.timezone"),
        # Postgres stores no NUL: refused here, not planned and then unstorable
        (event(caption="launch\u0000day"), "invalid_field", ""),
        (event(targets=[{"platform": "tiktok", "accountId": "a", "hashtags": ["#a\u0000"]}]), "invalid_field", ""),
        # the planner's calendar overflows near the year 9999
        (event(schedule={"mode": "optimal", "notBefore": "9999-12-28T00:00:00Z"}), "invalid_field",
         "schedule.optimal.notBefore"),
        (event(schedule={"mode": "at", "scheduledTime": "9999-12-31T23:00:00-05:00"}), "invalid_field",
         "schedule.at.scheduledTime"),
    ],
)
def test_bad_events_are_rejected_with_a_reason_and_the_field(payload, reason, field):
    with pytest.raises(ContractError) as caught:
        ContentSubmitted.from_bytes(payload)
    assert caught.value.reason == reason
    if field is not None:
        assert any(d["field"] == field for d in caught.value.details), caught.value.details


def test_rejection_keeps_the_original_bytes():
    payload = b"\xff\xfe not even utf-8"
    with pytest.raises(ContractError) as caught:
        ContentSubmitted.from_bytes(payload)
    rejected = contracts.ContentRejected.of(caught.value, payload, Topics.CONTENT_SUBMITTED)
    again = contracts.ContentRejected.from_bytes(rejected.to_bytes())
    assert again.payload() == payload and again.reason == "invalid_json"


def test_schema_export_writes_every_message_and_an_asyncapi_document(tmp_path):
    written = {p.name for p in contracts.export_schemas(tmp_path)}
    for name in ("ContentSubmitted", "PostPlanned", "PublishRequested", "PublishResult",
                 "StatusRequested", "StatusObserved", "ContentRejected", "DeadLetter",
                 "ScheduleInput", "ScheduleSlot"):
        assert f"{name}.schema.json" in written
    doc = json.loads((tmp_path / "asyncapi.json").read_text())
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(Topics.all())
    refs = [m for m in json.dumps(doc).split('"$ref": "')[1:]]
    names = {r.split('"')[0].rsplit("/", 1)[-1] for r in refs if r.startswith("#/components/schemas/")}
    assert names <= doc["components"]["schemas"].keys()


def test_a_pending_error_says_so_on_the_wire_and_an_ordinary_one_has_no_such_field():
    pending = contracts.PublishError(error_class=contracts.ErrorClass.RETRYABLE, code="container_not_ready",
                                     message="m", retry_after_sec=60, pending=True)
    ordinary = contracts.PublishError(error_class=contracts.ErrorClass.RETRYABLE, code="timeout", message="m")
    assert pending.to_wire()["pending"] is True
    assert "pending" not in ordinary.to_wire(), "what a queue that predates the field receives unchanged"
    assert contracts.PublishError.model_validate(pending.to_wire()).pending is True
