"""gensynth generate on the recorded GenSynth experiment (a real NNI database and state file)."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from report_support import EXPERIMENT_ID, LATENCY_MAX, REPO, install_recorded_experiment
from nni_gensynth.cli import main as gensynth
from nni_gensynth.engine import SearchSpace
from nni_gensynth.models import build_model


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))  # really measure
    install_recorded_experiment(tmp_path / "nni")
    return tmp_path / "nni"


def generate(workdir, out, *extra):
    return gensynth(["generate", "--experiment", EXPERIMENT_ID, "--out", str(out), "--experiment-dir", str(workdir),
                     *extra])


def test_generates_distinct_measured_networks_that_meet_the_requirements(workdir, tmp_path, capsys):
    out = tmp_path / "generated"
    assert generate(workdir, out, "-n", "3") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["found"] == 3 and summary["requirements"] == {"latency_ms": {"max": LATENCY_MAX}}
    space = SearchSpace(json.loads((REPO / "search_spaces" / "mobilenet_macro.json").read_text()))
    networks = set()
    for k in ("1", "2", "3"):
        folder = out / k
        params = json.loads((folder / "arch.txt").read_text())
        assert space.from_parameters(params).encode() == (folder / "arch.txt").read_text().strip()
        metrics = json.loads((folder / "metrics.json").read_text())
        measured = metrics["measured"]
        # measured now, on host-cpu, and within the requirement
        assert metrics["profile"] == "host-cpu" and measured["backend"] == "onnxruntime"
        assert 0 < measured["latency_ms"] <= LATENCY_MAX and measured["energy_source"] in ("rapl", "model")
        model = build_model(params)
        assert metrics["network"] == model.network_key and measured["params"] == sum(p.numel() for p in model.parameters())
        networks.add(metrics["network"])
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 1, 16, 16), np.float32)})
        assert output.shape == (1, 10)
    assert len(networks) == 3 and [n["dir"] for n in summary["networks"]] == ["1", "2", "3"]
    assert "wrote 3 networks" in capsys.readouterr().out


def test_fewer_than_asked_exits_non_zero_saying_how_many(workdir, tmp_path, capsys):
    code = generate(workdir, tmp_path / "none", "-n", "2", "--constraints", '{"latency_ms": {"max": 1e-6}}',
                    "--max-calls", "2")
    assert code == 1
    assert "found only 0 of 2" in capsys.readouterr().err
    assert json.loads((tmp_path / "none" / "summary.json").read_text())["found"] == 0


def test_bad_input_is_named(workdir, tmp_path, capsys):
    assert generate(workdir, tmp_path / "x", "-n", "0") == 2
    assert "-n must be >= 1" in capsys.readouterr().err
    assert generate(workdir, tmp_path / "x", "-n", "1", "--constraints", "[1]") == 2
    assert "--constraints must be a JSON object" in capsys.readouterr().err
    (workdir / EXPERIMENT_ID / "checkpoint" / "gensynth" / "state.json").unlink()
    assert generate(workdir, tmp_path / "x", "-n", "1") == 2
    assert "no GenSynth state file" in capsys.readouterr().err
