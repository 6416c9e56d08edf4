"""Real nnictl experiments with the registered GenSynth tuner."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from nni_experiments import Experiment, rest

TRIALS = Path(__file__).parent / "fixtures" / "trials"
SPACE = {"width": {"_type": "choice", "_value": [8, 16, 32, 64]},
         "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]}}


def _config(tmp_path: Path, class_args: dict, space: dict = SPACE, trials: int = 8,
            trial_script: str = "toy_trial.py") -> dict:
    (tmp_path / "space.json").write_text(json.dumps(space))
    return {
        "experimentName": "gensynth-e2e",
        "searchSpaceFile": str(tmp_path / "space.json"),
        "trialCommand": f"{sys.executable} {trial_script}",
        "trialCodeDirectory": str(TRIALS),
        "trialConcurrency": 2,
        "maxTrialNumber": trials,
        "maxExperimentDuration": "5m",
        "tuner": {"name": "GenSynth", "classArgs": class_args},
        "trainingService": {"platform": "local"},
    }


def test_small_experiment_reaches_done_and_learns(tmp_path):
    args = {"optimize_mode": "maximize", "objective": "accuracy",
            "constraints": {"latency_ms": {"max": 2.5}}, "population_size": 3, "seed": 0}
    with Experiment(_config(tmp_path, args), tmp_path) as exp:
        final = exp.wait(timeout=240)
        assert final["status"] == "DONE", final
        jobs = rest(exp.port, "trial-jobs")
        assert len(jobs) == 8 and all(j["status"] == "SUCCEEDED" for j in jobs)
        state = json.loads((exp.directory / "checkpoint" / "gensynth" / "state.json").read_text())
    assert len(state["records"]) == 8
    assert len(state["cycles"]) == 2
    best = max((r["metrics"]["accuracy"] for r in state["records"] if r["metrics"]["latency_ms"] <= 2.5))
    assert best > 0.6


@pytest.mark.parametrize("objective", ["accuracy", "netscore_hw"])
def test_hostile_results_fail_their_trial_only_and_the_experiment_reaches_done(tmp_path, objective):
    """One trial reports {"default": 10**400}, one a NaN, one a 200-deep dict and a huge latency:
    before, the first killed NNI's dispatcher thread and the experiment hung RUNNING forever."""
    args = {"optimize_mode": "maximize", "objective": objective, "population_size": 3, "seed": 0,
            "constraints": {"latency_ms": {"max": 2.5}}}
    with Experiment(_config(tmp_path, args, trials=8, trial_script="hostile_trial.py"), tmp_path) as exp:
        final = exp.wait(timeout=240)
        assert final["status"] == "DONE", final
        jobs = rest(exp.port, "trial-jobs")
        state = json.loads((exp.directory / "checkpoint" / "gensynth" / "state.json").read_text())
        dispatcher_log = exp.log("dispatcher.log")
    assert len(jobs) == 8
    assert "Dispatcher terminiated" not in dispatcher_log.split("Dispatcher exiting")[0]
    learned = [r for r in state["records"] if r["trained"]]
    assert len(state["records"]) == 8
    json.dumps(state, allow_nan=False)  # nothing hostile reached the saved state
    if objective == "accuracy":
        assert len(learned) >= 5  # the normal ones were learned from
    else:  # the toy trial reports no params: U is never known, and the tuner says so once
        assert not learned
        assert dispatcher_log.count("objective 'netscore_hw': none of") == 1
        assert "(nor params, which it is computed from)" in dispatcher_log


def test_killed_experiment_resumes_learning_where_it_stopped(tmp_path):
    """`nnictl stop` mid-run, then `nnictl resume`: the tuner reloads its learned state, learns
    the finished trials once (NNI replays them), and the cycles continue."""
    args = {"optimize_mode": "maximize", "objective": "accuracy", "population_size": 3, "seed": 1}
    config = _config(tmp_path, args, trials=10)
    config["trialConcurrency"] = 1
    with Experiment(config, tmp_path) as exp:
        state_file = exp.directory / "checkpoint" / "gensynth" / "state.json"
        deadline = time.monotonic() + 180
        while not (state_file.exists() and len(json.loads(state_file.read_text())["records"]) >= 4):
            assert time.monotonic() < deadline, "no 4 results within 180 s"
            time.sleep(0.5)
        exp.stop()
        before = json.loads(state_file.read_text())
        exp.resume()
        final = exp.wait(timeout=240)
        assert final["status"] == "DONE", final
        after = json.loads(state_file.read_text())
        dispatcher_log = exp.log("dispatcher.log")
        succeeded = [j for j in rest(exp.port, "trial-jobs") if j["status"] == "SUCCEEDED"]
    assert f"resumed GenSynth state: {len(before['records'])} results" in dispatcher_log
    # every finished trial learned exactly once: the old ones were not replayed twice, and the
    # resumed run added to them (a trial cancelled by the stop reported nothing)
    assert len(after["records"]) == len(succeeded) > len(before["records"])
    assert after["cycles"][: len(before["cycles"])] == before["cycles"]
    assert len(after["cycles"]) == len(after["records"]) // 3


@pytest.mark.parametrize("class_args, space, message", [
    ({"optimize_mode": "maxi"}, SPACE, "optimize_mode must be 'maximize' or 'minimize'"),
    ({"constraints": {"latency_ms": {"maximum": 1}}}, SPACE, "constraints"),
    ({"hw_profile": "no-such-device"}, SPACE, "hw_profile"),
    ({}, {"lr": {"_type": "loguniform", "_value": [0, 1]}}, "parameter 'lr' (loguniform)"),
])
def test_bad_class_args_or_space_fail_fast_naming_the_problem(tmp_path, class_args, space, message):
    with Experiment(_config(tmp_path, class_args, space), tmp_path) as exp:
        final = exp.wait(until=("ERROR", "DONE", "STOPPED"), timeout=30)
        assert final["status"] == "ERROR"
        deadline = time.monotonic() + 10  # the manager may flush its log a moment after the status
        while message not in exp.log("nnimanager.log") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert message in exp.log("nnimanager.log")
