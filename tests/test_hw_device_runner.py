"""The device runner on the real ONNX Runtime and the real LiteRT of this CPU, plus the shared
statistics and the export that feeds it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from nni_gensynth.device import runner, stats
from nni_gensynth.hardware.export import export_onnx, export_tflite, module_hash

SHAPE = (1, 3, 16, 16)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from hw_support import tiny_net

    directory = tmp_path_factory.mktemp("exports")
    net = tiny_net()
    return {"onnxruntime": export_onnx(net, SHAPE, directory=directory),
            "litert": export_tflite(net, SHAPE, directory=directory), "dir": directory, "net": net}


def run_runner(*args: str, timeout: float = 120) -> "tuple[int, dict]":
    out = subprocess.run([sys.executable, "-m", "nni_gensynth.device", *args], capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_runner_measures_real_interpreter(models, backend):
    code, answer = run_runner("measure", "--model", str(models[backend]), "--backend", backend, "--threads", "1",
                              "--affinity", "0", "--warmup-min-time-s", "0.05", "--warmup-min-runs", "3",
                              "--min-time-s", "0.2", "--min-runs", "20", "--max-runs", "100000")
    assert code == 0 and answer["ok"], answer
    samples = answer["samples_ms"]
    assert len(samples) >= 20 and all(s > 0 for s in samples)
    assert sum(samples) >= 200.0 * 0.95 or len(samples) == 100000  # repeated until the minimum time
    assert answer["backend"] == backend
    assert answer["runtime"].split()[0] == ("onnxruntime" if backend == "onnxruntime" else "ai_edge_litert")
    assert answer["threads"] == 1 and answer["affinity"] == [0]
    cpu = answer["cpu_samples_ms"]  # one thread: CPU time of the measuring thread per inference
    assert len(cpu) == len(samples) and 0 < stats.median(cpu) <= stats.median(samples) * 1.05 + 0.005
    assert answer["warmup"]["runs"] >= 3
    assert answer["input_shapes"] == [list(SHAPE)]
    assert answer["peak_mem_mb"] >= 0
    assert answer["energy"]["source"] in ("rapl", "battery", "pmic", "ina219", "model")
    assert answer["energy"]["energy_mj"] >= 0
    assert set(answer["device"]) >= {"hostname", "machine", "cpu_count", "python"}
    assert "max_temp_c" in answer["thermal"] and "throttled" in answer["thermal"]


QUICK = ["--warmup-min-time-s", "0", "--warmup-min-runs", "2", "--min-time-s", "0.05", "--min-runs", "5"]


def test_runner_reports_the_delegate_that_took_the_graph(models):
    """LiteRT's default XNNPACK delegate, counted from the interpreter's graph; --delegate none
    runs the built-in kernels (nothing delegated); ONNX Runtime names its execution provider."""
    _, default = run_runner("measure", "--model", str(models["litert"]), "--backend", "litert", *QUICK)
    assert default["delegate"]["requested"] == "default" and default["delegate"]["applied"] == "xnnpack"
    assert default["delegate"]["delegated_kernels"] >= 1
    _, off = run_runner("measure", "--model", str(models["litert"]), "--backend", "litert", "--delegate", "none",
                        *QUICK)
    assert off["ok"] and off["delegate"] == {"requested": "none", "applied": None, "delegated_kernels": 0,
                                             "nodes": default["delegate"]["nodes"]}  # the model's own ops
    _, ort = run_runner("measure", "--model", str(models["onnxruntime"]), "--backend", "onnxruntime", *QUICK)
    assert ort["delegate"]["applied"] == "CPUExecutionProvider"
    code, gpu = run_runner("measure", "--model", str(models["litert"]), "--backend", "litert", "--delegate", "gpu",
                           *QUICK)
    assert code == 2 and gpu["ok"] is False and "--delegate" in gpu["error"]  # benchmark_model's, not the runner's
    code, wrong = run_runner("measure", "--model", str(models["onnxruntime"]), "--backend", "onnxruntime",
                             "--delegate", "none", *QUICK)
    assert code == 1 and "backend litert" in wrong["error"]


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_runner_measures_int8_models(models, backend):
    """A full-integer .tflite takes int8 inputs; the QDQ .onnx takes float ones: both run."""
    from nni_gensynth.hardware.calibration import from_noise
    from nni_gensynth.hardware.export import export_model

    path = export_model(models["net"], backend, SHAPE, precision="int8", calibration=from_noise(SHAPE, 8),
                        directory=models["dir"])
    code, answer = run_runner("measure", "--model", str(path), "--backend", backend, *QUICK)
    assert code == 0 and answer["ok"] and answer["input_shapes"] == [list(SHAPE)]
    if backend == "litert":
        assert answer["delegate"]["applied"] == "xnnpack"  # XNNPACK runs int8 (QS8) kernels too


def test_runner_respects_max_runs_and_min_runs(models):
    code, answer = run_runner("measure", "--model", str(models["onnxruntime"]), "--backend", "onnxruntime",
                              "--warmup-min-time-s", "0", "--warmup-min-runs", "0", "--min-time-s", "60",
                              "--min-runs", "5", "--max-runs", "40", "--energy-source", "model")
    assert code == 0 and len(answer["samples_ms"]) == 40


def test_runner_failure_is_one_json_line_and_nonzero_exit(tmp_path):
    bogus = tmp_path / "broken.onnx"
    bogus.write_bytes(b"not a model")
    code, answer = run_runner("measure", "--model", str(bogus), "--backend", "onnxruntime")
    assert code != 0 and answer["ok"] is False and "cannot load" in answer["error"] and "broken.onnx" in answer["error"]
    code, answer = run_runner("measure", "--model", str(bogus), "--backend", "tensorrt")
    assert code != 0 and answer["ok"] is False and "backend" in answer["error"]
    code, answer = run_runner("measure", "--model", str(tmp_path / "missing.tflite"), "--backend", "litert")
    assert code != 0 and "missing.tflite" in answer["error"]
    code, answer = run_runner("measure", "--model", str(bogus), "--backend", "onnxruntime", "--affinity", "999")
    assert code != 0 and "affinity" in answer["error"]


def test_runner_info():
    code, answer = run_runner("info")
    assert code == 0 and answer["ok"] and answer["cpu_count"] == os.cpu_count()
    assert answer["runtimes"]["onnxruntime"].startswith("onnxruntime ")


def test_runner_imports_nothing_outside_device_and_stdlib_numpy():
    probe = ("import sys, nni_gensynth.device.__main__ as m, nni_gensynth.device.energy, nni_gensynth.device.runner;"
             "bad=[n for n in sys.modules if n.split('.')[0] in ('torch','nni','yaml','onnx','litert_torch') or "
             "(n.startswith('nni_gensynth.') and not n.startswith('nni_gensynth.device'))];print(bad)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_in_process_load_and_timing_loop(models):
    model = runner.load_model(str(models["litert"]), "litert", threads=1)
    runs, seconds = runner.warm_up(model.run, 0.02, 5)
    assert runs >= 5 and seconds >= 0.02
    samples = runner.time_runs(model.run, 0.05, 10, 100000)
    assert len(samples) >= 10 and sum(samples) >= 50 * 0.95
    with pytest.raises(ValueError):
        runner.time_runs(model.run, 0.0, 10, 5)
    with pytest.raises(ValueError, match="threads"):
        runner.load_model(str(models["litert"]), "litert", threads=0)


class _SlowingDown:
    """A fake inference whose cost changes over time, as under load that comes and goes: every
    `period` calls it switches between 1 ms and 1.3 ms of busy-waiting."""

    def __init__(self, period: int) -> None:
        self.calls, self.period = 0, period

    def __call__(self) -> None:
        slow = (self.calls // self.period) % 2 == 1
        self.calls += 1
        end = time.perf_counter() + (0.0013 if slow else 0.001)
        while time.perf_counter() < end:
            pass


def test_timing_goes_on_until_the_median_settles():
    # steady cost: block medians agree, nothing beyond min_time_s
    steady = runner.time_runs(_SlowingDown(10**9), 0.1, 10, 100000, max_time_s=1.0, target_rse=0.01)
    assert 0.1 <= sum(steady) / 1000 < 0.2
    assert stats.median_rse(steady) <= 0.01
    # a slow spell in the middle of the minimum: the block medians disagree, timing goes on
    settling = runner.time_runs(_SlowingDown(40), 0.1, 10, 100000, max_time_s=1.0, target_rse=0.01)
    without = runner.time_runs(_SlowingDown(40), 0.1, 10, 100000)
    assert stats.median_rse(without) > 0.01
    assert sum(settling) / 1000 > 0.15 and len(settling) > len(without)
    # never beyond max_time_s (plus one step), even when it never settles
    never = runner.time_runs(_SlowingDown(25), 0.1, 10, 100000, max_time_s=0.3, target_rse=1e-6)
    assert 0.3 <= sum(never) / 1000 < 0.4
    with pytest.raises(ValueError, match="target_rse"):
        runner.time_runs(_SlowingDown(10), 0.1, 10, 100, target_rse=1.5)


def test_median_rse_reads_disagreeing_blocks():
    assert stats.median_rse([1.0] * 50) == 0.0
    assert stats.median_rse([1.0] * 25 + [2.0] * 25) > 0.1
    assert stats.median_rse([1.0, 2.0, 3.0]) == 0.0  # too few samples per block to tell
    with pytest.raises(ValueError):
        stats.median_rse([1.0] * 10, blocks=1)


def test_exports_are_valid_and_cached(models):
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    onnx.checker.check_model(str(models["onnxruntime"]))
    interpreter = Interpreter(model_path=str(models["litert"]))
    interpreter.allocate_tensors()
    assert list(interpreter.get_input_details()[0]["shape"]) == list(SHAPE)
    before = {p: p.stat().st_mtime_ns for p in models["dir"].iterdir()}
    again = export_onnx(models["net"], SHAPE, directory=models["dir"])
    assert again == models["onnxruntime"] and again.stat().st_mtime_ns == before[again]  # not re-exported
    other = export_onnx(models["net"], (1, 3, 24, 24), directory=models["dir"])  # new settings: new file
    assert other != again


def test_module_hash_follows_structure_not_weights():
    from hw_support import tiny_net

    a, b = tiny_net(8), tiny_net(8)
    assert module_hash(a, SHAPE) == module_hash(b, SHAPE)  # different random weights
    assert module_hash(a, SHAPE) != module_hash(tiny_net(16), SHAPE)
    assert module_hash(a, SHAPE) != module_hash(a, (1, 3, 32, 32))


def test_stats_match_numpy():
    rng = np.random.default_rng(1)
    samples = list(rng.lognormal(0.0, 0.3, 501))
    assert stats.median(samples) == pytest.approx(np.median(samples))
    assert stats.quantile(samples, 0.9) == pytest.approx(np.percentile(samples, 90))
    assert stats.iqr(samples) == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert stats.cv(samples) == pytest.approx(np.std(samples, ddof=1) / np.mean(samples))
    spiky = [1.0] * 99 + [1000.0]
    assert stats.cv(spiky) > 5 and stats.robust_cv(spiky) == 0.0
    with pytest.raises(ValueError):
        stats.summarize([])


def _run_blocked(blocked: list, args: list, extra_path: str = "") -> dict:
    """The runner with some modules made unimportable (and an extra sys.path entry)."""
    code = (f"import sys, runpy; sys.path.insert(0, {extra_path!r}) if {bool(extra_path)} else None;"
            f"[sys.modules.__setitem__(m, None) for m in {blocked!r}];"
            f"sys.argv = ['runner'] + {args!r}; runpy.run_module('nni_gensynth.device', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runner_works_without_psutil(models):
    answer = _run_blocked(["psutil"], ["measure", "--model", str(models["onnxruntime"]), "--backend", "onnxruntime",
                                       "--warmup-min-time-s", "0", "--min-time-s", "0.05", "--min-runs", "5"])
    assert answer["ok"], answer
    assert answer["peak_mem_mb"] >= 0 and answer["energy"]["source"] == "model" and answer["energy"]["cpu_s"] > 0


def test_litert_falls_back_to_tflite_runtime(models, tmp_path):
    """A Pi with only tflite_runtime: the runner imports it and names it (here a shim package
    named tflite_runtime that re-exports the real LiteRT interpreter)."""
    shim = tmp_path / "tflite_runtime"
    shim.mkdir()
    (shim / "__init__.py").write_text("__version__ = '2.14.0'\n")
    (shim / "interpreter.py").write_text("from ai_edge_litert.interpreter import Interpreter  # noqa: F401\n")
    code = ("import sys, runpy; sys.path.insert(0, %r); import ai_edge_litert.interpreter as real;"
            "sys.modules['ai_edge_litert'] = None; sys.argv = ['runner'] + %r;"
            "runpy.run_module('nni_gensynth.device', run_name='__main__')")
    args = ["measure", "--model", str(models["litert"]), "--backend", "litert", "--warmup-min-time-s", "0",
            "--min-time-s", "0.05", "--min-runs", "5"]
    out = subprocess.run([sys.executable, "-c", code % (str(tmp_path), args)], capture_output=True, text=True,
                         timeout=120)
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["ok"], answer
    assert answer["runtime"] == "tflite_runtime 2.14.0"
    missing = _run_blocked(["ai_edge_litert", "tflite_runtime"], args)
    assert missing["ok"] is False and "pip install ai-edge-litert" in missing["error"]


def test_runner_refuses_numbers_that_are_not_finite(models):
    for flag in ("--min-time-s", "--warmup-min-time-s", "--target-rse"):
        code, answer = run_runner("measure", "--model", str(models["onnxruntime"]), "--backend", "onnxruntime",
                                  flag, "nan" if flag != "--warmup-min-time-s" else "inf")
        assert code != 0 and answer["ok"] is False and "finite" in answer["error"] and flag in answer["error"]


def test_runner_exits_when_the_host_that_started_it_is_gone(models):
    """A runner told to serve a host process that no longer exists stops instead of measuring for
    nobody (the local transport tells it its pid; see test_hw_local for kill -9 of the host)."""
    from nni_gensynth.device.protocol import PARENT_PID_ENV
    from nni_gensynth.device.system import ORPHAN_EXIT_CODE

    finished = subprocess.Popen(["true"])
    finished.wait()
    env = dict(os.environ, **{PARENT_PID_ENV: str(finished.pid)})  # a pid that has just gone
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "nni_gensynth.device", "measure", "--model", str(models["onnxruntime"]),
                          "--backend", "onnxruntime", "--warmup-min-time-s", "120"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == ORPHAN_EXIT_CODE and time.monotonic() - start < 30
