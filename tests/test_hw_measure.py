"""measure(): cache hits avoid the device, failures and bad answers are never cached, transient
device errors are retried, one measurement at a time per device. Runs the real local transport
and ONNX Runtime."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hw_support import AnsweringTransport, FlakyTransport, RecordingTransport, tiny_net, write_profile
from nni_gensynth.hardware import AnswerError, Measurement, load_profile, measure
from nni_gensynth.hardware.cache import MeasurementCache, measurement_key
from nni_gensynth.hardware.export import export_onnx
from nni_gensynth.hardware.measurement import MeasurementSpec
from nni_gensynth.hardware.transports import DeviceError, make_transport
from nni_gensynth.hardware.transports.local import LocalTransport

SHAPE = (1, 3, 16, 16)


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return export_onnx(tiny_net(), SHAPE, directory=tmp_path_factory.mktemp("models"))


@pytest.fixture
def profile(tmp_path):
    return load_profile(str(write_profile(tmp_path, "test-cpu")))


@pytest.fixture
def cache(tmp_path):
    return MeasurementCache(tmp_path / "m.sqlite")


def test_cache_hit_avoids_measuring(onnx_model, profile, cache):
    transport = RecordingTransport(profile)
    first = measure(onnx_model, profile, transport=transport, cache=cache)
    second = measure(onnx_model, profile, transport=transport, cache=cache)
    assert len(transport.calls) == 1
    assert not first.from_cache and second.from_cache
    assert second == first and second.metrics() == first.metrics()
    assert len(cache) == 1
    third = measure(onnx_model, profile, transport=transport, cache=cache, use_cache=False)
    assert len(transport.calls) == 2 and not third.from_cache


def test_measurement_fields_and_metrics(onnx_model, profile, cache):
    m = measure(onnx_model, profile, transport=RecordingTransport(profile), cache=cache)
    metrics = m.metrics()
    for key in ("latency_ms", "latency_p90_ms", "latency_iqr_ms", "cv", "energy_mj", "energy_source",
                "peak_mem_mb", "backend", "device"):
        assert key in metrics
    assert metrics["latency_ms"] <= metrics["latency_p90_ms"]
    assert metrics["backend"] == "onnxruntime" and metrics["energy_source"] == "model"
    assert 0 < metrics["latency_cpu_ms"] <= metrics["latency_ms"] * 1.05 + 0.005
    assert m.spec.profile == "test-cpu" and m.spec.runtime.startswith("onnxruntime ") and m.spec.threads == 1
    hash(m.spec)
    assert Measurement.from_json(m.to_json()) == m


def test_key_changes_with_runtime_version(onnx_model, profile, cache):
    transport = RecordingTransport(profile)
    measure(onnx_model, profile, transport=transport, cache=cache)
    upgraded = RecordingTransport(profile, runtime="onnxruntime 9.9.9")
    measure(onnx_model, profile, transport=upgraded, cache=cache)
    assert len(upgraded.calls) == 1  # another runtime version is not served the old figure
    assert measurement_key("a", "p", "d", "onnxruntime 1.0") != measurement_key("a", "p", "d", "onnxruntime 1.1")


def test_key_changes_with_profile_settings(onnx_model, tmp_path, cache):
    one = load_profile(str(write_profile(tmp_path, "one-thread")))
    two = load_profile(str(write_profile(tmp_path, "two-threads", threads=2)))
    transport = RecordingTransport(one)
    measure(onnx_model, one, transport=transport, cache=cache)
    measure(onnx_model, two, transport=transport, cache=cache)
    assert len(transport.calls) == 2
    assert transport.calls[1].threads == 2 and transport.calls[0].threads == 1


def test_retryable_failure_is_retried_and_result_is_correct(onnx_model, profile, cache):
    flaky = FlakyTransport(profile, failures=1, retryable=True)
    result = measure(onnx_model, profile, transport=flaky, cache=cache, retries=2)
    assert len(flaky.calls) == 2
    assert result.spec.runtime.startswith("onnxruntime") and len(result.samples_ms) >= 10
    assert flaky.calls[0] == flaky.calls[1]  # the same measurement again
    assert 0 < result.median_ms <= result.p90_ms and result.metrics()["energy_source"] == "model"
    assert len(cache) == 1


def test_failures_are_raised_and_never_cached(onnx_model, profile, cache):
    always = FlakyTransport(profile, failures=5, retryable=True)
    with pytest.raises(DeviceError, match="disconnected"):
        measure(onnx_model, profile, transport=always, cache=cache, retries=1)
    assert len(always.calls) == 2 and len(cache) == 0
    fatal = FlakyTransport(profile, failures=1, retryable=False)
    with pytest.raises(DeviceError):
        measure(onnx_model, profile, transport=fatal, cache=cache, retries=3)
    assert len(fatal.calls) == 1 and len(cache) == 0  # a non-retryable error is not retried


def test_runner_error_and_bad_answers_are_not_cached(tmp_path, profile, cache):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00not an onnx model")
    with pytest.raises(DeviceError, match="cannot load"):
        measure(broken, profile, transport=LocalTransport(profile), cache=cache)

    good = tmp_path / "good.onnx"
    good.write_bytes(Path(export_onnx(tiny_net(4), SHAPE, directory=tmp_path)).read_bytes())
    with pytest.raises(DeviceError, match="unusable"):
        measure(good, profile, transport=AnsweringTransport(profile, samples_ms=[]), cache=cache)
    with pytest.raises(DeviceError, match="backend"):
        measure(good, profile, transport=AnsweringTransport(profile, backend="litert"), cache=cache)
    assert len(cache) == 0


@pytest.mark.parametrize("changes, field", [
    ({"samples_ms": "123"}, "samples_ms"),                      # was measured as (1, 2, 3) and cached
    ({"samples_ms": [1.0, float("nan")]}, "samples_ms[1]"),
    ({"samples_ms": [1.0, 0.0]}, "samples_ms[1]"),
    ({"samples_ms": [1e300]}, "samples_ms[0]"),
    ({"energy": {"energy_mj": "abc", "source": "model"}}, "energy.energy_mj"),  # was cached, broke every read
    ({"energy": {"energy_mj": 0.0, "source": "model"}}, "energy.energy_mj"),
    ({"energy": {"energy_mj": -1.0, "source": "model"}}, "energy.energy_mj"),
    ({"energy": {"energy_mj": float("inf"), "source": "model"}}, "energy.energy_mj"),
    ({"energy": {"energy_mj": 1.0, "source": "solar"}}, "energy.source"),
    ({"peak_mem_mb": "lots"}, "peak_mem_mb"),
    ({"threads": True}, "threads"),
    ({"cpu_samples_ms": [1.0]}, "cpu_samples_ms"),
    ({"thermal": {"load_avg_start": "high"}}, "thermal.load_avg_start"),
    ({"runtime": "x" * 100_000}, "runtime"),
    ({"device": {"nested": [[[[[[[[1]]]]]]]]}}, "device.nested[0][0][0][0][0]"),
])
def test_bad_answers_name_the_field_and_are_never_cached(onnx_model, profile, cache, changes, field):
    device = AnsweringTransport(profile, **changes)
    with pytest.raises(AnswerError) as info:
        measure(onnx_model, profile, transport=device, cache=cache)
    assert info.value.field == field and f"'{field}'" in str(info.value)
    assert info.value.retryable is False and device.calls == 1  # not retried: it would answer the same
    assert len(cache) == 0
    good = measure(onnx_model, profile, transport=AnsweringTransport(profile), cache=cache)  # nothing stale in the way
    assert not good.from_cache and good.energy_mj == 0.5 and len(cache) == 1


def test_one_measurement_at_a_time_per_device(onnx_model, profile, tmp_path):
    transport = RecordingTransport(profile)
    caches = [MeasurementCache(tmp_path / f"c{i}.sqlite") for i in range(2)]  # no hits: both measure
    errors = []

    def work(c):
        try:
            measure(onnx_model, profile, transport=transport, cache=c)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (a0, a1), (b0, b1) = sorted(transport.intervals)
    assert a1 <= b0, "two measurements overlapped on one device"


def test_module_is_exported_for_the_profile_backend(tmp_path, cache):
    profile = load_profile(str(write_profile(tmp_path, "test-tflite", backend="litert")))
    transport = RecordingTransport(profile)
    net = tiny_net(6)
    first = measure(net, profile, transport=transport, cache=cache)
    assert transport.calls[0].model_path.suffix == ".tflite" and transport.calls[0].input_shape == (1, 3, 16, 16)
    assert first.spec.runtime.startswith("ai_edge_litert")
    again = measure(tiny_net(6), profile, transport=transport, cache=cache)  # same structure, new weights
    assert again.from_cache and len(transport.calls) == 1


def test_bad_inputs_are_clear(onnx_model, tmp_path, profile, cache):
    with pytest.raises(ValueError, match="profile 'test-tflite' runs backend 'litert'"):
        measure(onnx_model, load_profile(str(write_profile(tmp_path, "test-tflite", backend="litert"))), cache=cache)
    with pytest.raises(FileNotFoundError):
        measure(tmp_path / "none.onnx", profile, cache=cache)
    with pytest.raises(ValueError, match="must end in"):
        measure(Path(__file__), profile, cache=cache)
    with pytest.raises(TypeError):
        measure(42, profile, cache=cache)
    with pytest.raises(ValueError, match="retries"):
        measure(onnx_model, profile, cache=cache, retries=-1)


def test_make_transport_picks_by_kind(profile):
    assert isinstance(make_transport(profile), LocalTransport)
    assert make_transport(profile).device_id().startswith("local:")


def test_noisy_and_throttled_measurements_warn():
    spec = MeasurementSpec("a", "p", "f", "onnxruntime", "onnxruntime 1", 1, "local:x")
    energy = {"energy_mj": 1.0, "source": "model"}
    steady = Measurement(spec, tuple([1.0, 1.01, 0.99] * 20), energy, 1.0, cv_warn_threshold=0.05)
    assert steady.warnings == ()
    noisy = Measurement(spec, tuple([1.0, 2.0, 0.5, 1.5] * 20), energy, 1.0, cv_warn_threshold=0.05)
    assert any("noisy" in w for w in noisy.warnings)
    hot = Measurement(spec, tuple([1.0] * 10), energy, 1.0, thermal={"throttled": True, "throttled_raw": "0x4"})
    assert any("throttled" in w for w in hot.warnings)
    with pytest.raises(ValueError):
        Measurement(spec, (), energy, 1.0)
    with pytest.raises(ValueError):
        Measurement(spec, (1.0, float("nan")), energy, 1.0)


def test_busy_device_warns():
    spec = MeasurementSpec("a", "p", "f", "onnxruntime", "onnxruntime 1", 1, "local:x")
    energy = {"energy_mj": 1.0, "source": "model"}
    busy = Measurement(spec, (1.0,) * 10, energy, 1.0, thermal={"load_avg_start": 3.9, "cpu_count": 2})
    quiet = Measurement(spec, (1.0,) * 10, energy, 1.0, thermal={"load_avg_start": 0.2, "cpu_count": 2})
    assert any("busy" in w for w in busy.warnings) and quiet.warnings == ()


def test_summary_only_answers_keep_their_reported_spread():
    spec = MeasurementSpec("a", "android", "f", "litert", "tflite benchmark_model", 4, "adb:x")
    answer = {"ok": True, "backend": "litert", "samples_ms": [2.0], "samples_kind": "summary",
              "summary_ms": {"avg": 2.0, "std": 0.1, "cv": 0.05, "count": 50}, "peak_mem_mb": 5.0,
              "energy": {"energy_mj": 3.0, "source": "battery"}}
    m = Measurement.from_runner(answer, spec, cv_warn_threshold=0.03)
    assert m.median_ms == 2.0 and m.cv == pytest.approx(0.05)
    assert any("only an average over 50 runs" in w for w in m.warnings) and any("noisy" in w for w in m.warnings)
    assert Measurement.from_json(m.to_json()) == m
