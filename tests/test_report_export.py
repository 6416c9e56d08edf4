"""gensynth export: the chosen trial of the recorded experiment rebuilt (with saved weights) and exported."""
from __future__ import annotations

import json

import numpy as np
import pytest

from report_support import EXPERIMENT_ID, install_recorded_experiment
from nni_gensynth.cli import main as gensynth
from nni_gensynth.results import load_experiment
from nni_gensynth.results.analysis import best_feasible
from nni_gensynth.results.export import WEIGHTS_FILE, spec_for

SHAPE = (1, 1, 16, 16)


@pytest.fixture
def workdir(tmp_path):
    install_recorded_experiment(tmp_path / "nni")
    return tmp_path / "nni"


def save_trained_weights(workdir, trial):
    """Weights as a trial saves them (state_dict at <trial output dir>/model.pt), made distinct from
    a fresh initialisation so that an export without them would give other outputs."""
    import torch

    from nni_gensynth.models import build_model

    torch.manual_seed(123)
    model = build_model(trial.parameters)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.2, 0.2)
    trial_dir = workdir / EXPERIMENT_ID / "environments" / "local-env" / "trials" / trial.trial_id
    trial_dir.mkdir(parents=True)
    torch.save(model.state_dict(), trial_dir / WEIGHTS_FILE)
    return model.eval()


def test_export_best_feasible_to_onnx_with_trained_weights(workdir, tmp_path, capsys):
    import onnxruntime as ort
    import torch

    record = load_experiment(EXPERIMENT_ID, experiment_dir=workdir)
    best = best_feasible(record)
    trained = save_trained_weights(workdir, best)
    out = tmp_path / "deploy" / "best.onnx"
    assert gensynth(["export", EXPERIMENT_ID, "--experiment-dir", str(workdir), "--format", "onnx", "--out", str(out)]) == 0
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = trained(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    sidecar = json.loads(out.with_name("best.onnx.json").read_text())
    assert sidecar["trial_id"] == best.trial_id and sidecar["trained_weights"] is True
    assert sidecar["metrics"] == best.final and sidecar["parameters"] == best.parameters
    assert sidecar["architecture"].startswith(f"stem{best.parameters['stem_width']}|ir_r")
    assert sidecar["feasible"] is True and sidecar["requirements"] == {"latency_ms": {"max": 1.5}}
    assert str(out) in capsys.readouterr().out


def test_export_a_chosen_trial_to_tflite_without_weights(workdir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    record = load_experiment(EXPERIMENT_ID, experiment_dir=workdir)
    infeasible = next(t for t in record.trials if t.final["latency_ms"] > 1.5)
    out = tmp_path / "chosen.tflite"
    assert gensynth(["export", EXPERIMENT_ID, "--trial", infeasible.trial_id, "--experiment-dir", str(workdir),
                     "--format", "tflite", "--out", str(out)]) == 0
    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    assert list(interpreter.get_input_details()[0]["shape"]) == list(SHAPE)
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, 10]
    sidecar = json.loads(out.with_name("chosen.tflite.json").read_text())
    assert sidecar["trial_id"] == infeasible.trial_id and sidecar["feasible"] is False
    assert sidecar["trained_weights"] is False and sidecar["weights"] is None


def test_export_errors_name_what_is_wrong(workdir, tmp_path, capsys):
    base = ["export", EXPERIMENT_ID, "--experiment-dir", str(workdir)]
    assert gensynth(base + ["--trial", "nope", "--format", "onnx", "--out", str(tmp_path / "a.onnx")]) == 2
    assert "no trial 'nope'" in capsys.readouterr().err
    assert gensynth(base + ["--format", "onnx", "--out", str(tmp_path / "a.tflite")]) == 2
    assert "suffix '.tflite' but --format is 'onnx'" in capsys.readouterr().err
    assert gensynth(["export", "missing1", "--experiment-dir", str(tmp_path), "--format", "onnx",
                     "--out", str(tmp_path / "b.onnx")]) == 2
    assert "experiment 'missing1' not found" in capsys.readouterr().err
    record = load_experiment(EXPERIMENT_ID, experiment_dir=workdir)
    bad = workdir / EXPERIMENT_ID / "environments" / "local-env" / "trials" / best_feasible(record).trial_id
    bad.mkdir(parents=True)
    (bad / WEIGHTS_FILE).write_bytes(b"not a torch file")
    assert gensynth(base + ["--format", "onnx", "--out", str(tmp_path / "c.onnx")]) == 2
    assert "cannot load trained weights" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_how_networks_were_built_comes_from_the_trial_command():
    from types import SimpleNamespace as NS

    from nni_gensynth.evaluator import EvaluationSpec
    from nni_gensynth.results.model import ExperimentRecord

    def record(command: str) -> ExperimentRecord:
        return ExperimentRecord("x", "sqlite", None, {"trialCommand": command}, [])

    spec = spec_for(record("python3 -m nni_gensynth.trial --epochs 2 --image-size 32 --channels 3 "
                           "--constraints '{\"latency_ms\": {\"max\": 2}}'"))
    assert spec.input_shape == (1, 3, 32, 32) and spec.epochs == 2 and spec.hw_profiles == ()
    assert spec_for(record("python3 trial.py")) == EvaluationSpec(hw_profiles=())
    assert spec_for(record("python3 trial.py"), "mobilenetv2", "1,3,8,8", 4).replace(num_classes=None) == \
        EvaluationSpec(hw_profiles=(), builder="mobilenetv2", channels=3, image_size=8)
    with pytest.raises(ValueError, match="square"):
        spec_for(record("python3 trial.py"), input_shape="1,3,8,16")
    assert NS  # keep the import group tidy
