"""The trial outside NNI: all keys reported, feasibility logic, failures exit non-zero."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nni_gensynth.trial import TrialOptions, run_trial

REPO = Path(__file__).resolve().parents[1]
SMALL = {"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 16, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 1, "stage3_width": 24, "stage3_kernel": 5, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 1, "lr": 0.01}
REQUIRED_KEYS = {"default", "accuracy", "latency_ms", "latency_p90_ms", "energy_mj", "energy_source",
                 "peak_mem_mb", "params", "macs", "netscore", "feasible"}


def run_cli(*args: str, cache_dir: Path = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache_dir is not None:
        env["GENSYNTH_CACHE_DIR"] = str(cache_dir)
    return subprocess.run([sys.executable, "-m", "nni_gensynth.trial", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_outside_nni_measures_trains_and_reports_all_keys(tmp_path):
    constraints = {"latency_ms": {"max": 1000.0}}  # any real network meets this
    proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "1", "--hw-profile", "host-cpu",
                   "--constraints", json.dumps(constraints), "--no-progress", cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert REQUIRED_KEYS <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["latency_ms"] > 0 and metrics["latency_p90_ms"] >= metrics["latency_ms"]
    assert metrics["energy_mj"] > 0 and isinstance(metrics["energy_source"], str)
    assert metrics["params"] > 0 and metrics["macs"] > 0
    assert metrics["feasible"] is True and metrics["default"] == metrics["accuracy"]
    assert metrics["measure_seconds"] > 0 and metrics["trained"] is True
    assert "measured on host-cpu" in proc.stderr


def test_infeasible_network_reports_zero_default_but_real_accuracy():
    metrics = run_trial(SMALL, TrialOptions(epochs=2, hw_profile="none", constraints={"params": {"max": 100}},
                                            progress=False))
    assert metrics["feasible"] is False and metrics["default"] == 0.0
    assert metrics["accuracy"] > 0.2  # trained all the same (2 epochs on digits)
    assert metrics["netscore"] is not None


def test_skip_infeasible_does_not_train():
    metrics = run_trial(SMALL, TrialOptions(epochs=2, hw_profile="none", constraints={"macs": {"max": 10}},
                                            skip_infeasible=True, progress=False))
    assert metrics["trained"] is False and metrics["accuracy"] is None
    assert metrics["feasible"] is False and metrics["default"] == 0.0


def test_seeded_runs_are_identical_and_seed_matters():
    options = TrialOptions(epochs=1, hw_profile="none", progress=False)
    a = run_trial(SMALL, options)
    b = run_trial(SMALL, options)
    assert a["accuracy"] == b["accuracy"]
    c = run_trial(SMALL, TrialOptions(epochs=1, hw_profile="none", progress=False, seed=1))
    assert c["accuracy"] != a["accuracy"]


def test_constraint_on_unmeasured_or_unknown_metric_is_rejected():
    with pytest.raises(ValueError, match="latency_ms"):
        run_trial(SMALL, TrialOptions(epochs=1, hw_profile="none", constraints={"latency_ms": {"max": 1}}))
    with pytest.raises(ValueError, match="latncy_ms"):
        run_trial(SMALL, TrialOptions(epochs=1, hw_profile="none", constraints={"latncy_ms": {"max": 1}}))


def test_failing_trial_exits_nonzero_with_traceback_naming_the_problem():
    bad = {**SMALL, "stage2_kernel": 4}
    proc = run_cli("--parameters", json.dumps(bad), "--epochs", "1", "--hw-profile", "none")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "stage2_kernel" in proc.stderr
    assert not proc.stdout.strip().endswith("}")  # no metrics line


def test_no_parameters_outside_nni_fails_clearly():
    proc = run_cli("--epochs", "1", "--hw-profile", "none")
    assert proc.returncode != 0
    assert "--parameters" in proc.stderr


def test_bad_constraints_json_fails():
    proc = run_cli("--parameters", json.dumps(SMALL), "--constraints", "{latency", "--hw-profile", "none")
    assert proc.returncode != 0 and "--constraints" in proc.stderr


def test_profiler_measures_what_the_trial_measures(tmp_path, monkeypatch):
    """The tuner-side profiler and the trial share the measurement: same hash, same cache entry."""
    from nni_gensynth.trial import TrialProfiler, measurement_hash

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    profiler = TrialProfiler(hw_profile="host-cpu", image_size=16, channels=1)
    before = profiler(SMALL)
    assert before["latency_ms"] > 0 and before["macs"] > 0
    assert all(isinstance(v, float) for v in before.values())
    # the learning rate does not change what is measured; the input size does
    assert measurement_hash({**SMALL, "lr": 0.5}, "macro_mobilenet", (1, 1, 16, 16), 10) == \
        measurement_hash(SMALL, "macro_mobilenet", (1, 1, 16, 16), 10)
    assert measurement_hash(SMALL, "macro_mobilenet", (1, 1, 32, 32), 10) != \
        measurement_hash(SMALL, "macro_mobilenet", (1, 1, 16, 16), 10)
    # the same network from different parameter dicts (a skipped stage's kernel) is one measurement
    skipped_kernel = {**SMALL, "stage4_kernel": 5}  # SMALL has stage4_depth 0
    again = TrialProfiler(hw_profile="host-cpu", image_size=16, channels=1)(skipped_kernel)
    assert again["latency_ms"] == before["latency_ms"]
    metrics = run_trial({**SMALL, "lr": 0.02}, TrialOptions(epochs=1, hw_profile="host-cpu", progress=False))
    assert metrics["latency_ms"] == before["latency_ms"]  # a cache hit, not a second measurement
    assert metrics["macs"] == before["macs"] and metrics["params"] == before["params"]


def test_trial_measures_on_onnx_runtime_and_litert_when_given_both(tmp_path, monkeypatch):
    """--hw-profile host-cpu,host-tflite: the requirement metrics from the first, LiteRT's prefixed."""
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path))
    metrics = run_trial(SMALL, TrialOptions(epochs=1, hw_profile="host-cpu,host-tflite", progress=False,
                                            constraints={"litert_latency_ms": {"max": 1000}}))
    assert metrics["backend"] == "onnxruntime" and metrics["litert_backend"] == "litert"
    assert metrics["latency_ms"] > 0 and metrics["litert_latency_ms"] > 0 and metrics["feasible"] is True
    assert metrics["litert_energy_source"] in ("rapl", "model")


def test_trained_weights_are_saved_where_nni_gives_the_trial_a_folder(tmp_path):
    """Under NNI the trial saves its state_dict as $NNI_OUTPUT_DIR/model.pt (gensynth export
    loads it); the saved weights reproduce the trained network's accuracy."""
    import torch

    from nni_gensynth.data import load_dataset
    from nni_gensynth.models import build_model
    from nni_gensynth.training import evaluate
    from nni_gensynth.trial import build_parser, options_from_args

    os.environ["NNI_OUTPUT_DIR"] = str(tmp_path)
    try:
        options = options_from_args(build_parser().parse_args(["--epochs", "2", "--hw-profile", "none"]))
    finally:
        del os.environ["NNI_OUTPUT_DIR"]
    assert options.weights_path == str(tmp_path / "model.pt")
    options.progress = False
    metrics = run_trial(SMALL, options)
    data = load_dataset(None, image_size=options.image_size, channels=options.channels)
    model = build_model(SMALL, num_classes=data.num_classes, in_channels=data.x_train.shape[1])
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True), strict=True)
    assert evaluate(model, data.x_test, data.y_test) == pytest.approx(metrics["accuracy"])
