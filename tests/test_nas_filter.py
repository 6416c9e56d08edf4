"""HardwareFilter on NNI's own strategies (real NasExperiments, sequential engine)."""
from __future__ import annotations

import pytest

pytest.importorskip("pytorch_lightning")  # nni.nas imports it

import nni  # noqa: E402
from nni.nas.strategy import Random, RegularizedEvolution  # noqa: E402
from nni.nas.strategy.hpo import TPE  # noqa: E402
from nni.nas.strategy.middleware import Chain  # noqa: E402

from nas_support import INPUT_SHAPE, ToySpace, forget, report_toy, run_sequential, toy_latency  # noqa: E402
from nni_gensynth import HardwareFilter  # noqa: E402

LATENCY = {"latency_ms": {"max": 1.0}}
_TRAINED: list = []


def remember(model) -> None:
    _TRAINED.append(dict(nni.get_current_parameter().sample))
    report_toy(model)


@pytest.mark.parametrize("make", [
    lambda: RegularizedEvolution(population_size=4, sample_size=2, seed=0),
    lambda: Random(seed=0),
], ids=["RegularizedEvolution", "Random"])
def test_nni_strategies_train_only_what_measures_within_the_requirements(make):
    _TRAINED.clear()
    hw_filter = HardwareFilter(LATENCY, profiler=toy_latency)
    experiment = run_sequential(Chain(make(), hw_filter), remember, trials=8, space=ToySpace(constrained=False))
    try:
        assert len(_TRAINED) == 8  # blocked models do not use up the budget
        assert all(toy_latency(s)["latency_ms"] <= 1.0 for s in _TRAINED)
        assert hw_filter.blocked > 0 and hw_filter.measured == 8 + hw_filter.blocked
        assert all(toy_latency(s) == m for s, m in hw_filter.measurements)  # the model's sample, not a sample guess
    finally:
        forget(experiment)


def test_tpe_with_the_filter_and_a_metric_for_blocked_models(monkeypatch):
    import nni.nas.strategy.hpo as hpo
    import types

    monkeypatch.setattr(hpo, "time", types.SimpleNamespace(sleep=lambda s: None))  # its 1 s poll; nothing to wait for
    _TRAINED.clear()
    hw_filter = HardwareFilter(LATENCY, profiler=toy_latency, metric_for_invalid=0.0)
    experiment = run_sequential(Chain(TPE(optimize_mode="maximize", seed=0), hw_filter), remember, trials=6,
                                space=ToySpace(constrained=False, numerical=False))
    try:
        assert len(_TRAINED) == 6 and all(toy_latency(s)["latency_ms"] <= 1.0 for s in _TRAINED)
    finally:
        forget(experiment)


def test_measures_frozen_modules_on_a_hardware_profile():
    hw_filter = HardwareFilter({"params": {"max": 1200}}, hw_profile="host-cpu", input_shape=INPUT_SHAPE)
    experiment = run_sequential(Chain(Random(seed=1), hw_filter), trials=2, space=ToySpace(constrained=False))
    try:
        admitted = [m for _, m in hw_filter.measurements if m["params"] <= 1200]
        blocked = [m for _, m in hw_filter.measurements if m["params"] > 1200]
        assert len(admitted) == 2 and all(m["latency_ms"] > 0 and m["profile"] == "host-cpu" for m in admitted)
        assert all("latency_ms" not in m for m in blocked)  # counts broke the requirement: no device time
    finally:
        forget(experiment)


def failing_profiler(sample):
    raise OSError("device unplugged")


def test_a_model_that_cannot_be_measured_is_trained_and_bad_arguments_are_refused():
    hw_filter = HardwareFilter(LATENCY, profiler=failing_profiler)
    experiment = run_sequential(Chain(Random(seed=0), hw_filter), trials=3, space=ToySpace(constrained=False))
    forget(experiment)
    assert hw_filter.measured == 0 and hw_filter.blocked == 0
    with pytest.raises(ValueError, match="at least one requirement"):
        HardwareFilter({}, profiler=toy_latency)
    with pytest.raises(ValueError, match="hw_profile"):
        HardwareFilter(LATENCY)
    with pytest.raises(ValueError, match="constraints"):
        HardwareFilter({"latency_ms": {"max": "fast"}}, profiler=toy_latency)
