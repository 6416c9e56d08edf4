"""Nothing a trial, a device or the surrogates do can make `ask` or `tell` raise (issue #11)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nni_gensynth.engine.gensynth import GenSynth
from nni_gensynth.engine.objective import Objective, Requirements
from nni_gensynth.engine.space import SearchSpace
from nni_gensynth.engine.surrogate import GaussianProcess

SPACE = {"w": {"_type": "choice", "_value": [8, 16, 32, 64]},
         "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
         "d": {"_type": "randint", "_value": [1, 6]}}


def engine(objective: str = "default", **kwargs) -> GenSynth:
    return GenSynth(SearchSpace(SPACE), Objective(objective), seed=0, population_size=3, **kwargs)


def deep(levels: int, leaf=0.5):
    value = leaf
    for _ in range(levels):
        value = {"x": value}
    return value


def good(params: dict) -> dict:
    return {"default": math.log(params["w"]) - abs(math.log10(params["lr"]) + 2), "latency_ms": params["w"] / 8}


@pytest.mark.parametrize("objective, metrics", [
    ("default", {"default": 10**400}),  # float(int) overflowed in the objective
    ("default", {"default": float("nan")}), ("default", {"default": float("inf")}),
    ("default", {"default": True}), ("default", {"default": "0.9"}), ("default", {"default": [0.9]}),
    ("default", {"default": deep(100_000)}),
    ("default", 10**400), ("default", float("nan")), ("default", "garbage"), ("default", [1, 2]), ("default", {}),
    ("netscore", {"accuracy": 1e200, "params": 1e6, "macs": 1e9}),  # a ** 2 overflowed
    ("netscore", {"accuracy": 0.9, "params": 0, "macs": 1e9}),
    ("netscore", {"accuracy": 150, "params": 1e6, "macs": 1e9}),
])
def test_an_unusable_result_is_a_recorded_failure(objective, metrics):
    gs = engine(objective)
    arch = gs.ask()
    gs.tell(arch, metrics)
    assert arch in gs.failed and gs.records[arch].score is None
    json.dumps(gs.state_dict(), allow_nan=False)


def test_extreme_but_meaningful_results_are_scored():
    gs = engine("netscore_hw")
    arch = gs.ask()
    gs.tell(arch, {"accuracy": 0.9, "params": 1e6, "latency_ms": 1e-320})  # sqrt underflowed to 0
    assert math.isfinite(gs.records[arch].score)
    gs = engine()
    arch = gs.ask()
    gs.tell(arch, {"default": 1e308, "extra": -1e308})
    assert gs.records[arch].score == 1e308


@pytest.mark.parametrize("responses", [
    deep(100_000), "[" * 200_000, "{" * 100_000, "{\"x\": " * 900 + "1" + "}" * 900, {"w": {"target": deep(5000)}},
    {"w": {"target": 10**400, "weight": 10**400}}, {"lr": {"target": -5.0}}, {"lr": {"target": 1e308}},
    {f"x{i}": {"target": i} for i in range(50_000)}, "x" * 5_000_000, [1, 2, 3], 17,
])
def test_hostile_probe_responses_are_dropped_and_learning_goes_on(responses):
    gs = engine()
    for _ in range(7):  # two cycles: Δθ_G reads the responses
        arch = gs.ask()
        gs.tell(arch, dict(good(gs.space.to_parameters(arch)), responses=responses))
    assert len(gs.cycles) == 2 and not gs.failed
    json.dumps(gs.state_dict(), allow_nan=False)


def test_a_surrogate_that_runs_out_of_memory_keeps_the_previous_theta_i(monkeypatch):
    gs = engine()
    for _ in range(3):
        arch = gs.ask()
        gs.tell(arch, good(gs.space.to_parameters(arch)))
    assert len(gs.cycles) == 1 and gs.inquisitor.u_model.fitted
    before = gs.inquisitor.u_model.hyperparameters()
    conditioned_on = len(gs.inquisitor.u_model._x)

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.3 TiB")

    monkeypatch.setattr(GaussianProcess, "fit", out_of_memory)
    monkeypatch.setattr(GaussianProcess, "condition", out_of_memory)
    for _ in range(6):  # two more cycles, each refit failing, and every ask's conditioning too
        arch = gs.ask()
        assert gs.space.from_parameters(gs.space.to_parameters(arch)) == arch
        gs.tell(arch, good(gs.space.to_parameters(arch)))
    assert len(gs.cycles) == 3
    assert gs.inquisitor.u_model.hyperparameters() == before
    assert len(gs.inquisitor.u_model._x) == conditioned_on  # still the posterior it had, not half of one
    monkeypatch.undo()
    arch = gs.ask()
    gs.tell(arch, good(gs.space.to_parameters(arch)))
    gs.ask()  # conditioning is tried again with the next data, and succeeds once the surrogate can
    assert len(gs.inquisitor.u_model._x) == 10


def test_a_half_refitted_theta_i_is_rolled_back(monkeypatch):
    """The U surrogate refits, the latency one fails: θ_I is as it was, not a mix of both."""
    gs = GenSynth(SearchSpace(SPACE), Objective(), Requirements({"latency_ms": {"max": 4}}), seed=0, population_size=3)
    for _ in range(3):
        arch = gs.ask()
        gs.tell(arch, good(gs.space.to_parameters(arch)))
    u_before = gs.inquisitor.u_model.hyperparameters()
    real_fit = GaussianProcess.fit

    def fit(self, *args, **kwargs):
        if self is gs.inquisitor.metric_models["latency_ms"]:
            raise np.linalg.LinAlgError("singular")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(GaussianProcess, "fit", fit)
    for _ in range(3):
        arch = gs.ask()
        gs.tell(arch, good(gs.space.to_parameters(arch)))
    assert len(gs.cycles) == 2
    assert gs.inquisitor.u_model.hyperparameters() == u_before


def test_ask_answers_even_when_the_generator_cannot_sample(monkeypatch):
    gs = engine()
    monkeypatch.setattr(gs.generator, "sample_rows", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    arch = gs.ask()
    assert gs.space.to_parameters(arch) == gs.space.to_parameters(gs.space.from_parameters(gs.space.to_parameters(arch)))
    gs.tell(arch, {"default": 1.0})


def test_a_raising_on_cycle_callback_does_not_stop_tell():
    def on_cycle(stats):
        raise RuntimeError("plotting failed")

    gs = engine(on_cycle=on_cycle)
    for _ in range(4):
        arch = gs.ask()
        gs.tell(arch, good(gs.space.to_parameters(arch)))
    assert len(gs.cycles) == 1


@pytest.mark.parametrize("measured", [
    {"latency_ms": float("nan")}, {"latency_ms": 10**400}, {"latency_ms": [1]}, {"latency_ms": deep(10_000)},
    {"latency_ms": "fast"}, {3: 1.0}, float("nan"), None, "garbage",
])
def test_a_hostile_device_answer_is_not_a_measurement(measured):
    gs = GenSynth(SearchSpace(SPACE), Objective(), Requirements({"latency_ms": {"max": 4}}),
                  profiler=lambda params: measured, seed=0, population_size=3)
    for _ in range(4):
        arch = gs.ask()
        gs.tell(arch, {"default": 1.0})
    assert gs.measurements or measured is None or not isinstance(measured, dict)
    for metrics in gs.measurements.values():
        assert gs.requirements.is_met(metrics) is None  # no latency measured: unknown, and nothing poisoned
    json.dumps(gs.state_dict(), allow_nan=False)


def test_near_copies_of_a_failed_network_are_kept_away_from_and_other_choices_are_not():
    """A space with a continuous decision offers endless near copies of a network that failed
    (e.g. one the model space's constraints reject): proposals keep away from them."""
    space = SearchSpace({"block": {"_type": "choice", "_value": ["a", "b", "c"]},
                         "dropout": {"_type": "uniform", "_value": [0.0, 1.0]}})
    gs = GenSynth(space, Objective("accuracy"), seed=0, population_size=3)
    failed = space.from_parameters({"block": "a", "dropout": 0.5})
    gs.tell(failed, None)
    assert failed in gs.failed
    rows = np.array([space.values_row(space.from_parameters(p)) for p in (
        {"block": "a", "dropout": 0.52}, {"block": "a", "dropout": 0.9}, {"block": "b", "dropout": 0.5})])
    away = gs._away_from_failures(space.features(rows))
    assert away[0] == 0.0 and 0.5 < away[1] < 1.0 and away[2] == 1.0
    proposed = []
    for _ in range(30):  # every "a" network is rejected: the search moves on to the other blocks
        arch = gs.ask()
        parameters = space.to_parameters(arch)
        proposed.append(parameters["block"])
        gs.tell(arch, None if parameters["block"] == "a" else {"accuracy": 0.5 + parameters["dropout"] / 10})
    assert proposed[-15:].count("a") <= 3, proposed
