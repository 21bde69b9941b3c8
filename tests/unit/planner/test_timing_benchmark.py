"""The offline evaluation runs, compares on the same accounts, and keeps the truth hidden."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import orjson

from services.planner.domain import ScoringRequest

PATH = Path(__file__).parents[3] / "benchmarks" / "timing.py"


def load():
    spec = importlib.util.spec_from_file_location("timing_benchmark", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_a_small_run_reports_every_strategy_against_the_oracle(capsys):
    timing = load()
    assert timing.main(["--accounts", "6", "--weeks", "2", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert set(report["strategies"]) == {"heuristic", "industry", "random", "learned"}
    for result in report["strategies"].values():
        assert len(result["weekly"]) == 2 and all(0 < share <= 1.0001 for share in result["weekly"])
    assert report["calibration"]["posts"] > 0
    assert {"learnedOverHeuristic", "week1LearnedMinusHeuristic", "targets"} <= report.keys()


def test_the_learned_strategy_is_told_nothing_of_the_truth():
    """What reaches a strategy is a ScoringRequest: the event's inputs and its own readings."""
    timing = load()
    fields = set(ScoringRequest.__dataclass_fields__)
    assert fields == {"platform", "content_type", "audience", "audience_given", "history", "now_epoch",
                      "readings", "readings_key", "seed", "account_id"}
    world = random.Random(1)
    accounts = timing.make_accounts(world, 3, 12)
    assert len({a.brand for a in accounts}) == 1 and len({a.platform for a in accounts}) == 3
    events = timing.make_events(accounts, 1, world)
    assert all(set(e.payload) <= {"upstreamId", "targets", "media", "contentType", "schedule", "audienceData",
                                  "historicalPerformance"} for e in events)
