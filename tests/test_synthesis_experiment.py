"""examples/synthesis.yml through a real NNI experiment, with a tiny budget.

The file as shipped, changed only in budget (2 trials, 1 epoch, 2 results per cycle) and paths:
the tuner evaluates the MobileNetV2 prototype in the dispatcher, resolves the requirements stated
relative to it, screens proposals on ONNX Runtime and LiteRT, and the report shows the prototype
beside the best network.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from nni_experiments import Experiment, rest

REPO = Path(__file__).resolve().parents[1]


def test_the_synthesis_example_runs_as_an_nni_experiment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    config = yaml.safe_load((REPO / "examples" / "synthesis.yml").read_text())
    config.update(searchSpaceFile=str(REPO / "search_spaces" / "mobilenetv2_prototype.json"),
                  trialCodeDirectory=str(REPO), maxTrialNumber=2, maxExperimentDuration="12m",
                  trialCommand=config["trialCommand"].replace("--epochs 8", "--epochs 1"))
    assert "--epochs 1" in config["trialCommand"]
    config["tuner"]["classArgs"].update(population_size=2, max_profiler_calls=4)
    with Experiment(config, tmp_path) as exp:
        final = exp.wait(timeout=700)
        assert final["status"] == "DONE", (final, exp.log("dispatcher.log")[-3000:])
        jobs = rest(exp.port, "trial-jobs")
        dispatcher = exp.log("dispatcher.log")
        state = json.loads((exp.directory / "checkpoint" / "gensynth" / "state.json").read_text())
    assert len(jobs) == 2 and all(j["status"] == "SUCCEEDED" for j in jobs)
    # the prototype was evaluated by the tuner, once, and its figures resolved the requirements
    assert dispatcher.count("evaluating the prototype") == 1
    tuner = state["tuner"]
    proto = tuner["prototype_result"]
    assert proto["params"] == 2_236_682 and proto["latency_ms"] > 0 and proto["litert_latency_ms"] > 0
    resolved = tuner["requirements"]
    assert resolved["latency_ms"]["max"] == proxy(proto["latency_ms"] / 4)
    assert resolved["macs"]["max"] == proxy(proto["macs"] / 10) and resolved["params"]["max"] == proxy(proto["params"] / 10)
    assert resolved["accuracy"]["min"] == proxy(proto["accuracy"] - 0.005)
    assert len(state["records"]) == 3  # the prototype and both trials

    from nni_gensynth.results import write_report

    index = write_report(exp.id, tmp_path / "report", experiment_dir=tmp_path / "nni")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["requirements"] == resolved  # judged by the resolved requirements, not the text
    assert summary["prototype"]["prototype"]["params"] == 2_236_682
    assert "Prototype vs best feasible" in index.read_text()


def proxy(value: float) -> float:
    """The resolved bound as the tuner rounds it."""
    return round(value, 12)
