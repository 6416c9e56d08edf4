"""The evaluator: one path for a candidate (build, count, measure, train, probe), and its spec."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from nni_gensynth.engine.metrics import TRAINING_KEY
from nni_gensynth.evaluator import EvaluationSpec, Evaluator, SpecError, spec_from_argv, spec_from_trial_command
from nni_gensynth.models import mobilenetv2

SMALL = {"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 16, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 1, "stage3_width": 24, "stage3_kernel": 5, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 1, "lr": 0.01}
SPACE = mobilenetv2.search_space()
TINY_MBV2 = {k: (v["_value"][0] if k.endswith(("width", "expansion")) else "skip" if k.endswith("block") else 3)
             for k, v in SPACE.items()}
MBV2 = dict(builder="mobilenetv2", image_size=32, channels=3, num_classes=10)


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))


# -- measuring: counts first, each profile in turn, stop at the first broken requirement --------------
def test_counts_rule_out_a_network_before_any_device_time():
    evaluator = Evaluator(EvaluationSpec(**MBV2, requirements={"params": {"max": 1000}}))
    metrics = evaluator(mobilenetv2.prototype_parameters())
    assert set(metrics) == {"params", "macs", TRAINING_KEY} and metrics["params"] > 2e6


def test_measures_on_onnx_runtime_and_litert_side_by_side():
    evaluator = Evaluator(EvaluationSpec(**MBV2, hw_profiles=("host-cpu", "host-tflite"),
                                         requirements={"params": {"max": 1e6}}))
    facts = evaluator.measure(TINY_MBV2)
    assert facts["backend"] == "onnxruntime" and facts["litert_backend"] == "litert"
    for prefix in ("", "litert_"):
        assert facts[f"{prefix}latency_ms"] > 0 and facts[f"{prefix}energy_mj"] > 0
        assert facts[f"{prefix}energy_source"] in ("rapl", "model")
    numeric = evaluator(TINY_MBV2)  # the engine's view: numbers only, from the cache now
    assert numeric["latency_ms"] == facts["latency_ms"] and "energy_source" not in numeric


def test_a_latency_that_breaks_the_requirements_is_not_measured_again_on_litert():
    evaluator = Evaluator(EvaluationSpec(**MBV2, hw_profiles=("host-cpu", "host-tflite"),
                                         requirements={"latency_ms": {"max": 1e-6}}))
    facts = evaluator.measure(TINY_MBV2)
    assert facts["latency_ms"] > 1e-6 and not any(k.startswith("litert_") for k in facts)
    every = evaluator.measure(TINY_MBV2, stop_when_broken=False)  # the prototype's way: every profile
    assert every["litert_latency_ms"] > 0


def test_the_screening_measurement_is_the_trials_cache_entry():
    """Same network, same input, same key: what the tuner measured is a cache hit in the trial;
    the learning rate does not change what is measured, the input size does."""
    evaluator = Evaluator(EvaluationSpec(hw_profiles=("host-cpu",)))
    before = evaluator(SMALL)
    model = evaluator.build(SMALL)
    assert evaluator.cache_key({**SMALL, "lr": 0.5}, model) == evaluator.cache_key(SMALL, model)
    bigger = Evaluator(EvaluationSpec(hw_profiles=("host-cpu",), image_size=32))
    assert bigger.cache_key(SMALL, bigger.build(SMALL)) != evaluator.cache_key(SMALL, model)
    # the same network from different parameter dicts (a skipped stage's kernel) is one measurement
    assert evaluator({**SMALL, "stage4_kernel": 5})["latency_ms"] == before["latency_ms"]
    metrics = Evaluator(EvaluationSpec(epochs=1)).evaluate({**SMALL, "lr": 0.02}, progress=False)
    assert metrics["latency_ms"] == before["latency_ms"]  # a cache hit, not a second measurement
    assert metrics["macs"] == before["macs"] and metrics["params"] == before["params"]


def test_requirements_on_metrics_it_cannot_report_are_refused_naming_them():
    with pytest.raises(SpecError, match="latency_ms.*no hardware profile"):
        Evaluator(EvaluationSpec(hw_profiles=(), requirements={"latency_ms": {"max": 1}}))
    with pytest.raises(SpecError, match="latncy_ms"):
        Evaluator(EvaluationSpec(requirements={"latncy_ms": {"max": 1}}))
    Evaluator(EvaluationSpec(hw_profiles=("host-cpu", "host-tflite"), requirements={"litert_latency_ms": {"max": 1}}))


# -- training and the whole candidate -----------------------------------------------------------------
def test_an_infeasible_network_reports_zero_default_but_real_accuracy():
    metrics = Evaluator(EvaluationSpec(epochs=2, hw_profiles=(), requirements={"params": {"max": 100}})).evaluate(
        SMALL, progress=False)
    assert metrics["feasible"] is False and metrics["default"] == 0.0
    assert metrics["accuracy"] > 0.2 and metrics["netscore"] is not None  # trained all the same


def test_skip_infeasible_does_not_train():
    spec = EvaluationSpec(epochs=2, hw_profiles=(), requirements={"macs": {"max": 10}}, skip_infeasible=True)
    metrics = Evaluator(spec).evaluate(SMALL, progress=False)
    assert metrics["trained"] is False and metrics["accuracy"] is None
    assert metrics["feasible"] is False and metrics["default"] == 0.0


def test_seeded_evaluations_are_identical_and_the_seed_matters():
    spec = EvaluationSpec(epochs=1, hw_profiles=())
    a = Evaluator(spec).evaluate(SMALL, progress=False)
    b = Evaluator(spec).evaluate(SMALL, progress=False)
    assert a["accuracy"] == b["accuracy"] and a["test_accuracy"] == b["test_accuracy"]
    c = Evaluator(spec.replace(seed=1)).evaluate(SMALL, progress=False)
    assert (c["accuracy"], c["test_accuracy"]) != (a["accuracy"], a["test_accuracy"])


def test_prototype_networks_are_probed_and_others_refuse_probe():
    spec = EvaluationSpec(**MBV2, epochs=1, hw_profiles=())
    metrics = Evaluator(spec).evaluate(TINY_MBV2, progress=False)
    assert json.loads(metrics["responses"])  # compact JSON text: {decision: {"target", "weight"}}
    assert "responses" not in Evaluator(spec.replace(probe=False)).evaluate(TINY_MBV2, progress=False)
    with pytest.raises(SpecError, match="probe_sites"):
        Evaluator(EvaluationSpec(epochs=1, hw_profiles=(), probe=True)).evaluate(SMALL, progress=False)


# -- the spec and its command-line form ---------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(image_size=st.integers(1, 4096), channels=st.integers(1, 64), epochs=st.integers(1, 10_000),
       seed=st.integers(0, 2**32 - 1), probe=st.sampled_from([None, True, False]),
       fraction=st.floats(0.01, 1.0), profiles=st.sampled_from([(), ("host-cpu",), ("host-cpu", "host-tflite")]),
       limit=st.one_of(st.none(), st.floats(1e-6, 1e6)), skip=st.booleans(), cache=st.booleans(),
       precision=st.sampled_from([None, "fp32", "int8", "both"]))
def test_the_command_line_form_gives_the_spec_back(image_size, channels, epochs, seed, probe, fraction, profiles,
                                                    limit, skip, cache, precision):
    spec = EvaluationSpec(image_size=image_size, channels=channels, epochs=epochs, seed=seed, probe=probe,
                          probe_fraction=fraction, hw_profiles=profiles, skip_infeasible=skip, use_cache=cache,
                          requirements={} if limit is None else {"params": {"max": limit}}, precision=precision)
    assert spec_from_argv(spec.to_argv()) == spec
    assert EvaluationSpec.from_dict(spec.as_dict()) == spec


@pytest.mark.parametrize("changes,fragment", [
    ({"epochs": 0}, "epochs: must be within \\[1, 10000\\]"),
    ({"image_size": float("nan")}, "image_size: must be an integer"),
    ({"probe_fraction": float("inf")}, "probe_fraction: must be a finite number"),
    ({"threads": True}, "threads: must be an integer"),
    ({"builder": ""}, "builder: must be a non-empty string"),
    ({"hw_profiles": ["host-cpu", 3]}, "hw_profiles\\[1\\]: must be a string"),
    ({"requirements": {"latency_ms": {"max": "fast"}}}, "requirements"),
    ({"precision": "int4"}, "precision: must be one of fp32, int8, both"),
])
def test_bad_settings_are_named(changes, fragment):
    with pytest.raises(SpecError, match=fragment):
        EvaluationSpec(**changes)
    with pytest.raises(SpecError, match="unknown setting 'epoch'"):
        EvaluationSpec.from_dict({"epoch": 3})


def test_a_trial_command_gives_its_spec_and_other_commands_none():
    spec = spec_from_trial_command("python3 -m nni_gensynth.trial --builder mobilenetv2 --image-size 32 "
                                   "--channels 3 --hw-profile host-cpu,host-tflite --probe --probe-fraction 0.8")
    assert spec.builder == "mobilenetv2" and spec.input_shape == (1, 3, 32, 32) and spec.probe_fraction == 0.8
    assert spec_from_trial_command("python3 train.py --epochs 3") is None
    assert spec_from_trial_command("python3 -m nni_gensynth.trial 'unclosed") is None
    with pytest.raises(SpecError, match="epochs"):
        spec_from_trial_command("python3 -m nni_gensynth.trial --epochs x")


def test_the_search_never_reads_the_test_split():
    """Shuffling the test labels changes test_accuracy and nothing the tuner does: the same
    proposals, the same learned scores (the tuner learns from validation accuracy only)."""
    import dataclasses

    import torch

    from nni_gensynth import GenSynthTuner

    space = json.load(open(__import__("pathlib").Path(__file__).resolve().parents[1] / "search_spaces"
                           / "mobilenet_macro.json"))
    spec = EvaluationSpec(epochs=1, hw_profiles=())
    data = Evaluator(spec).data
    shuffled = dataclasses.replace(data, y_test=data.y_test[torch.randperm(len(data.y_test),
                                                                           generator=torch.Generator().manual_seed(0))])

    def search(split):
        evaluator = Evaluator(spec, data=split)
        tuner = GenSynthTuner(objective="accuracy", seed=0, population_size=2)
        tuner.update_search_space(space)
        proposals, tests = [], []
        for pid in range(4):
            params = tuner.generate_parameters(pid)
            metrics = evaluator.evaluate(params, progress=False)
            tuner.receive_trial_result(pid, params, metrics)
            proposals.append(params)
            tests.append(metrics["test_accuracy"])
        return proposals, [r.score for r in tuner.engine.records.values()], tests

    a, b = search(data), search(shuffled)
    assert a[0] == b[0] and a[1] == b[1]  # proposals and learned scores identical
    assert a[2] != b[2]  # while the test accuracies differ


# -- int8: measured as it ships, side by side with float32 -------------------------------------------
def _fast_profiles(directory, precision=None):
    """ONNX Runtime and LiteRT profiles with short timing, for 16x16 grey digits."""
    from hw_support import write_profile

    extra = {} if precision is None else {"precision": precision}
    return (str(write_profile(directory, "fast-ort", input_shape=[1, 1, 16, 16], **extra)),
            str(write_profile(directory, "fast-litert", backend="litert", input_shape=[1, 1, 16, 16], **extra)))


def test_precision_both_reports_float32_and_int8_side_by_side(tmp_path):
    """The profiles say `precision: both`: every candidate is measured as float32 and int8 on both
    backends, before training; after training the int8 models' accuracy is reported too."""
    evaluator = Evaluator(EvaluationSpec(epochs=3, hw_profiles=_fast_profiles(tmp_path, "both")))
    names = set(evaluator.constrainable())
    for scope in ("", "int8_", "litert_", "litert_int8_"):
        assert {f"{scope}latency_ms", f"{scope}energy_mj", f"{scope}peak_mem_mb"} <= names
    assert {"int8_accuracy", "test_int8_accuracy", "litert_int8_accuracy", "test_litert_int8_accuracy"} <= names

    before = evaluator.measure(SMALL)  # fresh weights: the int8 model is calibrated on untrained ones
    metrics = evaluator.evaluate(SMALL, progress=False)
    for scope in ("", "int8_", "litert_", "litert_int8_"):
        assert metrics[f"{scope}latency_ms"] > 0 and metrics[f"{scope}energy_mj"] > 0
        # one measurement per (network, profile, precision): the trial's is the screening's, cached
        assert metrics[f"{scope}latency_ms"] == before[f"{scope}latency_ms"]
    assert (metrics["delegate"], metrics["litert_delegate"], metrics["litert_int8_delegate"]) == (
        "CPUExecutionProvider", "xnnpack", "xnnpack")
    for name in ("int8_accuracy", "litert_int8_accuracy"):
        assert abs(metrics[name] - metrics["accuracy"]) <= 0.02 and metrics[f"{name}_n"] == metrics["accuracy_n"]
        assert abs(metrics[f"test_{name}"] - metrics["test_accuracy"]) <= 0.02
    float_only = Evaluator(EvaluationSpec(hw_profiles=_fast_profiles(tmp_path), precision="fp32")).constrainable()
    assert not [n for n in float_only if "int8" in n]


def test_a_requirement_on_int8_latency_drives_screening(tmp_path):
    """Measuring stops at the first broken requirement, int8 ones included: a network whose int8
    model is too slow on ONNX Runtime is not measured on LiteRT, nor trained."""
    profiles = _fast_profiles(tmp_path)
    spec = EvaluationSpec(hw_profiles=profiles, precision="both", requirements={"int8_latency_ms": {"max": 1e-6}},
                          skip_infeasible=True, epochs=1)
    screened = Evaluator(spec)(SMALL)  # the engine's profiler
    assert screened["latency_ms"] > 0 and screened["int8_latency_ms"] > 1e-6
    assert not [k for k in screened if k.startswith("litert_")]
    metrics = Evaluator(spec).evaluate(SMALL, progress=False)
    assert metrics["trained"] is False and metrics["feasible"] is False and "int8_accuracy" not in metrics
    generous = Evaluator(spec.replace(requirements={"int8_latency_ms": {"max": 1e3}}))(SMALL)
    assert generous["litert_int8_latency_ms"] > 0
    with pytest.raises(SpecError, match="needs an int8 measurement"):
        Evaluator(spec.replace(precision="fp32"))


def test_the_tuner_screens_on_int8_latency(tmp_path):
    """GenSynth with `int8_latency_ms: {max: ...}`: every proposal is measured as int8 before it is
    proposed, and a bound nothing meets costs profiler calls where a bound everything meets costs one."""
    from nni_gensynth import GenSynthTuner

    profile = _fast_profiles(tmp_path, "int8")[0]
    space = json.load(open(__import__("pathlib").Path(__file__).resolve().parents[1] / "search_spaces"
                           / "mobilenet_macro.json"))

    def first_request(bound):
        tuner = GenSynthTuner(objective="accuracy", constraints={"int8_latency_ms": {"max": bound}},
                              hw_profile=profile, evaluation={"epochs": 1}, seed=0, population_size=2)
        tuner.update_search_space(space)
        assert isinstance(tuner.generate_parameters(0), dict)
        return tuner.engine

    tight = first_request(1e-6)
    assert tight.profiler_calls > 1
    assert all(m["int8_latency_ms"] > 1e-6 for m in tight.measurements.values())
    loose = first_request(1e3)
    assert loose.profiler_calls == 1 and all(m["int8_latency_ms"] <= 1e3 for m in loose.measurements.values())
