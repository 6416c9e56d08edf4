"""HostProfiler: counts first, then ONNX Runtime and LiteRT measurements of a candidate."""
from __future__ import annotations

import pytest

from nni_gensynth.engine.objective import Requirements
from nni_gensynth.models import mobilenetv2
from nni_gensynth.synthesis import HostProfiler

SPACE = mobilenetv2.search_space()
TINY = {k: (v["_value"][0] if k.endswith(("width", "expansion")) else "skip" if k.endswith("block") else 3)
        for k, v in SPACE.items()}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))


def test_counts_rule_out_a_network_before_any_device_time():
    profiler = HostProfiler("mobilenetv2", (1, 3, 32, 32), limits=Requirements({"params": {"max": 1000}}))
    metrics = profiler(mobilenetv2.prototype_parameters())
    assert set(metrics) == {"params", "macs"} and metrics["params"] > 2e6


def test_measures_on_onnx_runtime_and_litert_side_by_side():
    profiler = HostProfiler("mobilenetv2", (1, 3, 32, 32), profiles=("host-cpu", "host-tflite"),
                            limits=Requirements({"params": {"max": 1e6}}))
    facts = profiler.describe(TINY)
    assert facts["backend"] == "onnxruntime" and facts["litert_backend"] == "litert"
    for prefix in ("", "litert_"):
        assert facts[f"{prefix}latency_ms"] > 0 and facts[f"{prefix}energy_mj"] > 0
        assert facts[f"{prefix}energy_source"] in ("rapl", "model")
    numeric = profiler(TINY)  # the engine's view: numbers only, from the cache now
    assert numeric["latency_ms"] == facts["latency_ms"] and "energy_source" not in numeric


def test_a_latency_that_breaks_the_limits_is_not_measured_again_on_litert():
    profiler = HostProfiler("mobilenetv2", (1, 3, 32, 32), profiles=("host-cpu", "host-tflite"),
                            limits=Requirements({"latency_ms": {"max": 1e-6}}))
    facts = profiler.describe(TINY)
    assert facts["latency_ms"] > 1e-6 and not any(k.startswith("litert_") for k in facts)


def test_several_profiles_need_one_backend_each():
    from nni_gensynth.hardware import load_profiles

    assert [p.name for p in load_profiles("host-cpu, host-tflite")] == ["host-cpu", "host-tflite"]
    with pytest.raises(ValueError, match="both run backend 'onnxruntime'"):
        load_profiles("host-cpu,host-cpu")
    with pytest.raises(ValueError, match="empty name"):
        load_profiles("host-cpu,")
    with pytest.raises(FileNotFoundError, match="no-such-device"):
        load_profiles("host-cpu,no-such-device")


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="profile"):
        HostProfiler("mobilenetv2", profiles=())
    with pytest.raises(ValueError, match="input_shape"):
        HostProfiler("mobilenetv2", (3, 32, 32))
