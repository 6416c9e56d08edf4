"""`gensynth profile` end to end in subprocesses: .onnx, .tflite and a parameter-dict JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hw_support import tiny_net, write_profile
from nni_gensynth.hardware.export import export_onnx, export_tflite

SHAPE = (1, 3, 16, 16)
REQUIRED = {"latency_ms", "latency_p90_ms", "cv", "energy_mj", "energy_source", "peak_mem_mb", "backend", "device"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    net = tiny_net()
    return {"onnx": export_onnx(net, SHAPE, directory=root), "tflite": export_tflite(net, SHAPE, directory=root),
            "cpu": write_profile(root, "cli-cpu"), "tflite_profile": write_profile(root, "cli-tflite", backend="litert"),
            "root": root}


def gensynth(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, GENSYNTH_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "nni_gensynth.cli", "profile", *args], capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize("kind, profile_key, backend", [("onnx", "cpu", "onnxruntime"),
                                                        ("tflite", "tflite_profile", "litert")])
def test_profile_json_last_line(setup, tmp_path, kind, profile_key, backend):
    out = gensynth(str(setup[kind]), "--profile", str(setup[profile_key]), "--json", cache=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert REQUIRED <= set(result)
    assert result["backend"] == backend and result["latency_ms"] > 0 and result["cached"] is False
    assert result["latency_ms"] <= result["latency_p90_ms"]
    assert "measuring" in out.stderr  # progress on stderr
    again = gensynth(str(setup[kind]), "--profile", str(setup[profile_key]), "--json", cache=tmp_path)
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert second["cached"] is True and second["latency_ms"] == result["latency_ms"]
    fresh = gensynth(str(setup[kind]), "--profile", str(setup[profile_key]), "--json", "--no-cache", cache=tmp_path)
    assert json.loads(fresh.stdout.strip().splitlines()[-1])["cached"] is False


def test_profile_human_output_and_errors(setup, tmp_path):
    out = gensynth(str(setup["onnx"]), "--profile", str(setup["cpu"]), cache=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "latency" in out.stdout and "energy" in out.stdout and "peak memory" in out.stdout
    wrong = gensynth(str(setup["tflite"]), "--profile", str(setup["cpu"]), cache=tmp_path)
    assert wrong.returncode == 2 and "needs .onnx" in wrong.stderr
    missing = gensynth(str(tmp_path / "nope.onnx"), "--profile", str(setup["cpu"]), cache=tmp_path)
    assert missing.returncode == 2 and "nope.onnx" in missing.stderr
    bad_shape = gensynth(str(setup["onnx"]), "--profile", str(setup["cpu"]), "--input-shape", "1,x", cache=tmp_path)
    assert bad_shape.returncode == 2 and "--input-shape" in bad_shape.stderr
    bad_profile = gensynth(str(setup["onnx"]), "--profile", "no-such-profile", cache=tmp_path)
    assert bad_profile.returncode == 2 and "no-such-profile" in bad_profile.stderr


def test_profile_parameter_dict_json(setup, tmp_path):
    """A parameter dict from the macro search space, built with nni_gensynth.models.build_model."""
    space = json.loads((Path(__file__).resolve().parents[1] / "search_spaces" / "mobilenet_macro.json").read_text())
    parameters = {key: spec["_value"][0] for key, spec in space.items()}  # first choice / lower bound
    params_path = tmp_path / "params.json"
    params_path.write_text(json.dumps(parameters))
    out = gensynth(str(params_path), "--profile", str(setup["cpu"]), "--json", "--input-shape", "1,3,16,16",
                   cache=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert REQUIRED <= set(result) and result["latency_ms"] > 0 and result["backend"] == "onnxruntime"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**parameters, "stem_width": "wide"}))
    bad = gensynth(str(broken), "--profile", str(setup["cpu"]), cache=tmp_path)
    assert bad.returncode == 2 and "stem_width" in bad.stderr


def test_profile_and_cache_survive_a_damaged_cache_file(setup, tmp_path):
    """Garbage where the measurement cache should be: a warning and a rebuilt cache, not a traceback."""
    (tmp_path / "measurements.sqlite").write_bytes(b"\x00\x01 not sqlite " * 300)
    out = gensynth(str(setup["onnx"]), "--profile", str(setup["cpu"]), "--json", cache=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "CacheWarning" in out.stderr and "moved it to" in out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["cached"] is False
    assert list(tmp_path.glob("measurements.sqlite.corrupt-*"))
    env = dict(os.environ, GENSYNTH_CACHE_DIR=str(tmp_path))
    check = subprocess.run([sys.executable, "-m", "nni_gensynth.cli", "cache", "--check"], capture_output=True,
                           text=True, timeout=60, env=env)
    assert check.returncode == 0 and "1 measurement row(s), ok" in check.stdout
