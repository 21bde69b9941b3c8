"""`autopost plan INPUT.json`: the original shape in and out, one input or an array."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from contracts import ScheduleInput
from services.cli import main
from services.planner.command import run
from services.planner.domain import generate_optimal_schedule

NOW = "2026-03-20T10:00:00Z"
INPUT = {
    "platform": "tiktok",
    "contentType": "video",
    "audienceData": {"timezone": "Europe/Paris", "activityHours": [12, 18, 19, 20], "peakDays": ["Tuesday"]},
    "historicalPerformance": {"bestTimes": [{"hour": 19, "engagementRate": 0.071}]},
}


def plan(tmp_path: Path, data, *args: str) -> tuple[int, object, str]:
    path = tmp_path / "input.json"
    path.write_bytes(orjson.dumps(data))
    out, err = io.StringIO(), io.StringIO()
    options = {"count": 1, "horizon_days": 7.0, "strategy": "learned", "now": NOW}
    for arg in args:
        name, _, value = arg.partition("=")
        options[name] = type(options[name])(value) if name in ("count", "horizon_days") else value
    code = run(str(path), out=out, err=err, **options)
    return code, orjson.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def test_one_input_gives_its_slots_in_the_original_shape(tmp_path):
    code, slots, _ = plan(tmp_path, INPUT, "count=3")
    assert code == 0 and len(slots) == 3
    assert all(set(s) == {"timestamp", "platform", "contentType", "expectedEngagement"} for s in slots)
    assert slots[0]["timestamp"] == "2026-03-24T18:00:00Z", "Tuesday 19:00 in Paris"
    assert [s["expectedEngagement"] for s in slots] == sorted((s["expectedEngagement"] for s in slots), reverse=True)


def test_an_array_of_inputs_gives_an_array_of_results(tmp_path):
    other = {**INPUT, "platform": "youtube", "audienceData": {"timezone": "Asia/Tokyo", "activityHours": [21]}}
    code, results, _ = plan(tmp_path, [INPUT, other], "count=2")
    assert code == 0 and [len(r) for r in results] == [2, 2]
    assert {s["platform"] for s in results[1]} == {"youtube"}


def test_the_heuristic_is_the_original(tmp_path):
    code, slots, _ = plan(tmp_path, INPUT, "count=4", "strategy=heuristic", "horizon_days=2")
    expected = generate_optimal_schedule(ScheduleInput.model_validate(INPUT),
                                         datetime.fromisoformat(NOW.replace("Z", "+00:00")), count=4, horizon_days=2)
    assert code == 0 and slots == [s.to_wire() for s in expected]


@pytest.mark.parametrize(("data", "field"), [
    ({**INPUT, "platform": "myspace"}, "platform"),
    ({**INPUT, "audienceData": {"timezone": "Mars/Olympus", "activityHours": [1]}}, "audienceData.timezone"),
    ({k: v for k, v in INPUT.items() if k != "contentType"}, "contentType"),
    ({**INPUT, "surprise": 1}, "surprise"),
    ([INPUT, {**INPUT, "audienceData": {"timezone": "UTC", "activityHours": [25]}}], "[1].audienceData.activityHours.0"),
    ({**INPUT, "blackouts": [{"localStart": "22:00"}]}, "blackouts.0"),
])
def test_invalid_input_names_the_field_and_exits_nonzero(tmp_path, data, field):
    code, out, err = plan(tmp_path, data)
    assert code == 2 and out is None
    assert f"{field}:" in err, err


def test_unreadable_files_and_bad_options_are_errors(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    err = io.StringIO()
    assert run(str(path), count=1, horizon_days=7, strategy="learned", now=None, err=err) == 2
    assert "not JSON" in err.getvalue()
    assert run(str(tmp_path / "missing.json"), count=1, horizon_days=7, strategy="learned", now=None,
               err=io.StringIO()) == 2
    assert plan(tmp_path, INPUT, "count=0")[0] == 2


def test_the_subcommand_is_wired(tmp_path, capsys):
    path = tmp_path / "input.json"
    path.write_bytes(orjson.dumps(INPUT))
    assert main(["plan", str(path), "--count", "2", "--horizon-days", "3", "--now", NOW]) == 0
    assert len(orjson.loads(capsys.readouterr().out)) == 2
