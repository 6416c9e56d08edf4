"""GenSynthStrategy on real NasExperiments (sequential engine, raw format)."""
from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("pytorch_lightning")  # nni.nas imports it

import nni  # noqa: E402

from nas_support import INPUT_SHAPE, ToySpace, forget, report_toy, run_sequential, toy_accuracy, toy_latency  # noqa: E402
from nni_gensynth import GenSynthStrategy  # noqa: E402
from nni_gensynth.nas.strategy import storable_by_nni  # noqa: E402

LATENCY = {"latency_ms": {"max": 2.0}}


def _strategy(**kwargs) -> GenSynthStrategy:
    arguments = dict(objective="accuracy", constraints=LATENCY, profiler=toy_latency, seed=0, population_size=3)
    return GenSynthStrategy(**{**arguments, **kwargs})


def _trained(strategy: GenSynthStrategy) -> list:
    return [r for r in strategy.gensynth.records.values() if r.score is not None]


_SEEN: list = []


def report_and_remember(model) -> None:
    _SEEN.append(dict(nni.get_current_parameter().sample))
    report_toy(model)


def test_searches_categorical_numerical_nested_and_constrained_mutables_measured_before_training():
    _SEEN.clear()
    strategy = _strategy()
    experiment = run_sequential(strategy, report_and_remember, trials=12)
    try:
        assert len(_SEEN) == 12
        for sample in _SEEN:
            assert sample["toy/width"] * sample["toy/depth"] <= 16  # the constraint: never submitted
            assert toy_latency(sample)["latency_ms"] <= 2.0  # measured before training, infeasible never trained
            assert 0.0 <= sample["toy/dropout"] <= 0.5
        networks = {json.dumps({k: v for k, v in s.items() if k != "toy/kernel" or s["toy/block"] == "conv"},
                               sort_keys=True) for s in _SEEN}
        assert len(networks) == 12  # distinct networks: an unused kernel never makes a "new" one
        state = strategy.state_dict()
        assert state["results"] == 12 + state["rejected"]  # rejected samples are told to the engine
        assert len(strategy.gensynth.failed) == state["rejected"]
        rejected = [strategy.search_space.to_sample(a) for a in strategy.gensynth.failed]
        assert any(s["toy/width"] * s["toy/depth"] > 16 for s in rejected), "no sample broke the constraint"
        assert strategy.gensynth.profiler_calls >= 12
        assert len(strategy.gensynth.cycles) == state["results"] // 3
    finally:
        forget(experiment)


def test_learns_the_whole_metric_dict_from_the_event_not_model_metric():
    strategy = _strategy()
    experiment = run_sequential(strategy, trials=6)
    try:
        models = list(strategy.list_models())
        assert models and all(model.metric == 0.0 for model in models)  # NNI kept only `default`
        best = strategy.best(1)[0]
        assert best["metrics"]["accuracy"] == toy_accuracy(best["sample"]) == max(
            r.metrics["accuracy"] for r in _trained(strategy))
        assert best["metrics"]["latency_ms"] == toy_latency(best["sample"])["latency_ms"]
        assert experiment.export_top_models(formatter="dict")[0] == models[0].sample == best["sample"]
        generated = strategy.generate(3)  # from the taught generator, each meeting the requirements by measurement
        assert len(generated) == 3 and len({json.dumps(s, sort_keys=True) for s in generated}) == 3
        assert all(toy_latency(s)["latency_ms"] <= 2.0 and s["toy/width"] * s["toy/depth"] <= 16 for s in generated)
    finally:
        forget(experiment)


def fail_on_pool(model) -> None:
    sample = nni.get_current_parameter().sample
    _SEEN.append(dict(sample))
    if sample["toy/block"] == "pool":
        raise RuntimeError("this network does not train")
    report_toy(model)


def test_a_failing_trial_is_a_failure_of_that_network_and_the_search_goes_on():
    _SEEN.clear()
    strategy = _strategy()
    experiment = run_sequential(strategy, fail_on_pool, trials=12)
    try:
        space = strategy.search_space
        failed = [space.to_sample(a) for a in strategy.gensynth.failed]
        trained = [space.to_sample(r.arch) for r in _trained(strategy)]
        assert len(_SEEN) == 12 and any(s["toy/block"] == "pool" for s in _SEEN), "no pool network was trained"
        assert trained == [s for s in _SEEN if s["toy/block"] != "pool"]
        assert all(s in failed for s in _SEEN if s["toy/block"] == "pool")
    finally:
        forget(experiment)


GARBAGE = {"pool": {"accuracy": 0.9}, "skip": {"default": float("nan"), "accuracy": "high"}}


def report_garbage(model) -> None:
    sample = nni.get_current_parameter().sample
    nni.report_final_result(GARBAGE.get(sample["toy/block"], {"default": 0.5, "accuracy": toy_accuracy(sample)}))


def test_metrics_nni_cannot_store_are_logged_failures_never_exceptions():
    assert storable_by_nni(0.5) and storable_by_nni({"default": 1, "x": "y"})
    assert not any(storable_by_nni(m) for m in ({"accuracy": 0.9}, {"default": math.nan}, "x", None, [1]))
    strategy = _strategy(constraints={})
    experiment = run_sequential(strategy, report_garbage, trials=10, space=ToySpace(constrained=False))
    try:
        space = strategy.search_space
        records = list(strategy.gensynth.records.values())
        assert len(records) == 10
        blocks = {space.to_sample(r.arch)["toy/block"] for r in records}
        assert {"conv", "pool"} <= blocks or {"conv", "skip"} <= blocks, blocks
        for record in records:
            block = space.to_sample(record.arch)["toy/block"]
            # pool: no `default`, which NNI needs, but the accuracy GenSynth optimises; skip: nothing usable
            assert record.score == {"pool": 0.9, "skip": None}.get(block, record.metrics.get("accuracy"))
        for model in experiment._engine.list_models():  # NNI stored no unusable metric and raised nothing
            assert (model.metric is None) == (model.sample["toy/block"] in GARBAGE)
    finally:
        forget(experiment)


def test_a_stopped_experiment_resumes_its_learned_state_and_retrains_the_interrupted_network(tmp_path):
    calls = {"n": 0}

    def interrupt_at_six(model) -> None:
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # Ctrl-C during the 6th training: NNI stops and checkpoints
        report_toy(model)

    first = _strategy()
    experiment = run_sequential(first, interrupt_at_six, trials=10, workdir=tmp_path)
    try:
        saved = first.state_dict()
        assert len(_trained(first)) == 5 and len(saved["in_flight"]) == 1
        interrupted = saved["in_flight"][0]

        _SEEN.clear()
        second = _strategy()
        run_sequential(second, report_and_remember, trials=10, workdir=tmp_path, experiment_id=experiment.id,
                       resume=True)
        assert second.search_space.to_sample(second.search_space.space.from_parameters(interrupted)) == _SEEN[0]
        assert len(_trained(second)) == 5 + len(_SEEN)  # learned before the stop, and after
        assert second.state_dict()["results"] > saved["results"]
        assert [c.cycle for c in second.gensynth.cycles] == list(range(1, len(second.gensynth.cycles) + 1))
    finally:
        forget(experiment)  # the resumed experiment has the same id


def test_the_checkpoint_file_keeps_what_nni_start_time_checkpoint_lacks(tmp_path):
    path = tmp_path / "gensynth.json"
    first = _strategy(checkpoint=path)
    experiment = run_sequential(first, trials=6)
    forget(experiment)
    saved = json.loads(path.read_text())
    assert saved["results"] == first.state_dict()["results"] >= 6

    again = _strategy(checkpoint=path)
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace
    from nni.nas.evaluator import FunctionalEvaluator

    again.initialize(RawFormatModelSpace.from_model(ToySpace(), FunctionalEvaluator(report_toy)),
                     SequentialExecutionEngine())
    assert len(again.gensynth.records) == len(first.gensynth.records)  # read from the file at start
    again.load_state_dict({"version": 1, "engine": {}, "results": 0})  # NNI's older start-time checkpoint
    assert len(again.gensynth.records) == len(first.gensynth.records)
    again.load_state_dict({"garbage": True})  # logged, never raised
    assert len(again.gensynth.records) == len(first.gensynth.records)


def test_measures_frozen_modules_on_a_hardware_profile_through_the_evaluator():
    strategy = GenSynthStrategy(objective="accuracy", constraints={"params": {"max": 1500}, "latency_ms": {"max": 5.0}},
                                hw_profile="host-cpu", input_shape=INPUT_SHAPE, seed=0, population_size=2)
    experiment = run_sequential(strategy, trials=3, space=ToySpace(constrained=False))
    try:
        trained = _trained(strategy)
        assert len(trained) == 3
        for record in trained:
            assert record.metrics["params"] <= 1500 and 0 < record.metrics["latency_ms"] <= 5.0
            assert record.metrics["profile"] == "host-cpu"
        too_big = [m for m in strategy.gensynth.measurements.values() if m["params"] > 1500]
        assert all("latency_ms" not in m for m in too_big)  # counts broke a requirement: no device time spent
    finally:
        forget(experiment)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"optimize_mode": "up"}, ValueError, "optimize_mode"),
    ({"population_size": 1}, ValueError, "population_size"),
    ({"seed": "0"}, ValueError, "seed"),
    ({"probing": 1}, ValueError, "probing"),
    ({"constraints": {"latency_ms": {"below": 3}}}, ValueError, "constraints"),
    ({"hw_profile": "host-cpu"}, ValueError, "input_shape"),
    ({"hw_profile": "no-such-device", "input_shape": (1, 1, 8, 8)}, ValueError, "hw_profile"),
    ({"hw_profile": "host-cpu", "input_shape": (1, 0, 8, 8)}, ValueError, "input_shape"),
    ({"hw_profile": "host-cpu", "input_shape": (1, 1, 8, 8), "profiler": toy_latency}, ValueError, "not both"),
    ({"profiler": "no.such.module:fn"}, ValueError, "profiler"),
])
def test_bad_arguments_are_refused_in_the_constructor_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        GenSynthStrategy(**kwargs)
