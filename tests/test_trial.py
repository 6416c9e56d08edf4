"""The trial, a thin command line over the evaluator: all keys reported, failures exit non-zero."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nni_gensynth.trial import build_parser

REPO = Path(__file__).resolve().parents[1]
SMALL = {"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3, "stage1_expansion": 1,
         "stage2_depth": 1, "stage2_width": 16, "stage2_kernel": 3, "stage2_expansion": 3,
         "stage3_depth": 1, "stage3_width": 24, "stage3_kernel": 5, "stage3_expansion": 3,
         "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3, "stage4_expansion": 1, "lr": 0.01}
REQUIRED_KEYS = {"default", "accuracy", "test_accuracy", "latency_ms", "latency_p90_ms", "energy_mj",
                 "energy_source", "peak_mem_mb", "params", "macs", "netscore", "feasible"}


def run_cli(*args: str, cache_dir: Path = None, env_extra: dict = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cache_dir is not None:
        env["GENSYNTH_CACHE_DIR"] = str(cache_dir)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "nni_gensynth.trial", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_outside_nni_measures_trains_and_reports_all_keys(tmp_path):
    constraints = {"latency_ms": {"max": 1000.0}}  # any real network meets this
    proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "1", "--hw-profile", "host-cpu",
                   "--constraints", json.dumps(constraints), "--no-progress", cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert REQUIRED_KEYS <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["latency_ms"] > 0 and metrics["latency_p90_ms"] >= metrics["latency_ms"]
    assert metrics["energy_mj"] > 0 and isinstance(metrics["energy_source"], str)
    assert metrics["params"] > 0 and metrics["macs"] > 0
    assert metrics["feasible"] is True and metrics["default"] == metrics["accuracy"]
    assert metrics["measure_seconds"] > 0 and metrics["trained"] is True


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


def test_bad_constraints_json_and_bad_settings_fail_naming_them():
    proc = run_cli("--parameters", json.dumps(SMALL), "--constraints", "{latency", "--hw-profile", "none")
    assert proc.returncode != 0 and "--constraints" in proc.stderr
    proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "0", "--hw-profile", "none")
    assert proc.returncode != 0 and "epochs" in proc.stderr


def test_trained_weights_are_saved_where_nni_gives_the_trial_a_folder(tmp_path):
    """Under NNI the trial saves its state_dict as $NNI_OUTPUT_DIR/model.pt (gensynth export
    loads it); the saved weights reproduce the trained network's accuracy."""
    import torch

    from nni_gensynth.evaluator import EvaluationSpec, Evaluator
    from nni_gensynth.training import evaluate

    proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "2", "--hw-profile", "none", "--no-progress",
                   env_extra={"NNI_OUTPUT_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    evaluator = Evaluator(EvaluationSpec(hw_profiles=()))
    model = evaluator.build(SMALL)
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True), strict=True)
    data = evaluator.data
    assert evaluate(model, data.x_val, data.y_val) == metrics["accuracy"]


def test_trial_options_are_the_evaluation_spec():
    """Every evaluation option of the trial is a setting of the spec (one source of defaults)."""
    from nni_gensynth.evaluator import EvaluationSpec, spec_from_args

    args = build_parser().parse_args(["--parameters", "{}"])
    assert spec_from_args(args) == EvaluationSpec()
    args = build_parser().parse_args(["--builder", "mobilenetv2", "--image-size", "32", "--channels", "3",
                                      "--hw-profile", "host-cpu,host-tflite", "--probe"])
    spec = spec_from_args(args)
    assert spec.input_shape == (1, 3, 32, 32) and spec.hw_profiles == ("host-cpu", "host-tflite") and spec.probe


def test_the_trial_trains_on_the_users_own_images_and_arrays(tmp_path):
    """--data takes an ImageFolder tree (PNG/JPEG per class folder) or an .npz of x/y arrays; the
    trial reports validation and test accuracy with their intervals and the split sizes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for k, name in enumerate(("circle", "square", "triangle")):
        (folder / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(60 + 70 * k, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    x = rng.normal(size=(60, 10, 10)).astype(np.float32)
    y = np.arange(60) % 2
    x[y == 1] += 1.5
    np.savez(tmp_path / "arrays.npz", x=x, y=y)
    for source, classes in ((folder, 3), (tmp_path / "arrays.npz", 2)):
        proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "1", "--hw-profile", "none", "--no-progress",
                       "--data", str(source), "--channels", "3", "--image-size", "16")
        assert proc.returncode == 0, proc.stderr[-2000:]
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
        assert metrics["accuracy_n"] > 0 and metrics["test_accuracy_n"] > 0 and metrics["train_n"] > 0
        assert metrics["accuracy_low"] <= metrics["accuracy"] <= metrics["accuracy_high"]
        assert metrics["accuracy_n"] + metrics["test_accuracy_n"] + metrics["train_n"] == (36 if classes == 3 else 60)


def test_a_bad_dataset_fails_the_trial_naming_the_file(tmp_path):
    (tmp_path / "images" / "only_class").mkdir(parents=True)
    (tmp_path / "images" / "only_class" / "broken.png").write_bytes(b"not a png")
    proc = run_cli("--parameters", json.dumps(SMALL), "--epochs", "1", "--hw-profile", "none", "--no-progress",
                   "--data", str(tmp_path / "images"))
    assert proc.returncode != 0 and "broken.png" in proc.stderr


def test_every_reported_text_survives_nnis_own_message_decoding():
    """NNI 3.0 carries a final result as JSON nested three deep and its reader strips '//' as a
    comment: a device id like 'ssh://...' made the whole result undeliverable."""
    import nni

    from nni_gensynth.trial import _deliverable

    metrics = {"default": 0.9, "device": "ssh://pi@127.0.0.1:22", "note": "a // b", "energy_source": "pmic"}
    wire = json.dumps({"c": json.dumps({"value": json.dumps(_deliverable(metrics))})})
    decoded = json.loads(json.loads(nni.load(wire)["c"])["value"])
    assert decoded["default"] == 0.9 and "//" not in decoded["device"] and decoded["energy_source"] == "pmic"
    with pytest.raises(ValueError):  # the reason for the guard
        nni.load(json.dumps({"c": json.dumps({"value": json.dumps(metrics)})}))
