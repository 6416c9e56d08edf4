"""ADB transport against the fake ADB server (tests/fakes/fake_adb_server.py), which speaks the real
adb host protocol and runs the device side here: the fake benchmark_model really runs the model
with LiteRT, device_runner mode runs the real device runner."""
from __future__ import annotations

import math
from dataclasses import replace
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from fakes.fake_adb_server import FakeADBServer, FakeDevice
from fakes.tiny_models import tiny_tflite
from hw_support import chatty_python
from nni_gensynth.hardware.limits import MAX_OUTPUT_BYTES
from nni_gensynth.hardware.profiles import EnergyConfig, RepeatPolicy, WarmupPolicy
from nni_gensynth.hardware.request import RunRequest
from nni_gensynth.hardware.transports.adb import (
    ADBTransport,
    benchmark_delegation,
    big_core_mask,
    parse_benchmark_output,
    parse_delegates,
    parse_getprop,
    parse_temperatures,
    parse_thermal_status,
    read_shell_v2,
)
from nni_gensynth.hardware.transports.base import DeviceError

SERIAL = "FAKE0001"


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_tflite(tmp_path_factory.mktemp("models") / "mlp.tflite", width=1024)


@pytest.fixture
def phone(tmp_path: Path) -> FakeDevice:
    device = FakeDevice(SERIAL, tmp_path / "phone")
    device.install_benchmark_binary()
    return device


@pytest.fixture
def server(phone: FakeDevice):
    with FakeADBServer([phone]) as fake:
        yield fake


def transport_for(server: FakeADBServer, **extra) -> ADBTransport:
    settings = {"kind": "adb", "serial": SERIAL, "adb_host": "127.0.0.1", "adb_port": server.port}
    settings.update(extra)
    return ADBTransport(settings)


def request_for(model: Path, *, energy: str = "battery", min_time: float = 0.4, idle_s: float = 0.3,
                backend: str = "litert", affinity=None, **energy_settings) -> RunRequest:
    return RunRequest(model_path=model, backend=backend, threads=2, affinity=affinity,
                      warmup=WarmupPolicy(min_time_s=0.05, min_runs=3),
                      repeat=RepeatPolicy(min_time_s=min_time, min_runs=20, max_runs=5000),
                      energy=EnergyConfig(source=energy, idle_s=idle_s, sample_interval_s=0.05, **energy_settings),
                      timeout_s=60.0)


def printed_stats(phone: FakeDevice) -> dict:
    """The timed-run statistics line the fake benchmark_model printed (read independently)."""
    [(command, out, _, code)] = [o for o in phone.outputs if "benchmark_model" in o[0]]
    assert code == 0
    lines = [line for line in out.decode().splitlines() if line.startswith("INFO: count=")]
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+.\deE]+)", lines[-1])}


# ---------------------------------------------------------------------------------------------
# benchmark_model mode


def test_benchmark_model_mode_parses_the_real_output_and_pins_big_cores(server, phone, tflite_model):
    transport = transport_for(server)
    result = transport.run(request_for(tflite_model, affinity="big"))
    printed = printed_stats(phone)

    assert result["ok"] is True and result["samples_kind"] == "summary"
    summary = result["summary_ms"]
    assert summary["count"] == printed["count"] >= 20
    for key in ("min", "max", "first", "curr", "std"):
        assert summary[key] == pytest.approx(printed[key] / 1000.0)
    assert summary["avg"] == pytest.approx(printed["avg"] / 1000.0, rel=1e-5)  # avg printed with 6 digits
    assert result["samples_ms"] == [summary["avg"]]
    assert summary["min"] <= summary["avg"] <= summary["max"]
    assert result["peak_mem_mb"] > 10  # the fake's RSS with LiteRT loaded
    assert result["backend"] == "litert" and result["threads"] == 2

    # big cores: the fixture has 4 little (1.8 GHz) and 4 big (2.8 GHz) cores
    assert result["affinity"] == [4, 5, 6, 7] and phone.taskset_masks == ["f0"]
    [command] = [c for c in phone.shell_log if "benchmark_model" in c]
    assert command.startswith("taskset f0 /data/local/tmp/benchmark_model --graph=/data/local/tmp/nni-gensynth/models/")
    for flag in ("--num_threads=2", "--warmup_runs=3", "--num_runs=20", "--min_secs=0.4",
                 "--enable_op_profiling=false", "--report_peak_memory_footprint=true"):
        assert flag in command.split()
    assert result["thermal"]["android_thermal_status"] == 0 and result["thermal"]["throttled"] is False
    assert result["device"]["model"] == "Fake Pixel" and result["device"]["abi"] == "arm64-v8a"


@pytest.mark.parametrize("delegate, accelerators, flag, applied, kernels", [
    (None, {}, None, "xnnpack", None),              # LiteRT applies XNNPACK itself; no kernel count printed
    ("xnnpack", {}, "--use_xnnpack=true", "xnnpack", "counted"),
    ("none", {}, "--use_xnnpack=false", None, None),
    ("nnapi", {"nnapi": 3}, "--use_nnapi=true", "nnapi", 3),
    ("gpu", {"gpu": 0}, "--use_gpu=true", None, 0),   # created, took no node
    ("gpu", {}, "--use_gpu=true", None, None),        # cannot be created on this phone
])
def test_benchmark_model_delegate_flags_and_what_took_the_graph(server, phone, tflite_model, delegate, accelerators,
                                                                 flag, applied, kernels):
    phone.accelerators = accelerators
    result = transport_for(server).run(replace(request_for(tflite_model, energy="model"), delegate=delegate))
    [command] = [c for c in phone.shell_log if "benchmark_model" in c]
    assert [f for f in command.split() if f.startswith("--use_")] == ([flag] if flag else [])
    out = [o for o in phone.outputs if "benchmark_model" in o[0]][-1]
    log = (out[1] + out[2]).decode()
    assert result["delegate"]["requested"] == (delegate or "default") and result["delegate"]["applied"] == applied
    if kernels == "counted":  # the fake counted XNNPACK's kernels in the real interpreter and printed them
        assert "Explicitly applied XNNPACK delegate" in log and result["delegate"]["delegated_kernels"] >= 1
    else:
        assert result["delegate"]["delegated_kernels"] == kernels
    if delegate == "none":
        assert "XNNPACK" not in log  # the runtime's implicit delegate is off too


def test_a_delegate_that_took_nothing_is_a_warning_after_measuring(server, phone, tflite_model, tmp_path,
                                                                    monkeypatch):
    from nni_gensynth.hardware.measure import measure
    from nni_gensynth.hardware.profiles import profile_from_dict

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    phone.accelerators = {"gpu": 0}
    profile = profile_from_dict({
        "name": "fake-android-gpu", "backend": "litert", "threads": 2, "delegate": "gpu",
        "transport": {"kind": "adb", "serial": SERIAL, "adb_port": server.port},
        "warmup": {"min_time_s": 0.05, "min_runs": 3}, "repeat": {"min_time_s": 0.2, "min_runs": 10},
        "energy": {"source": "model"}})
    result = measure(tflite_model, profile)
    assert result.delegate_claimed_nothing and result.metrics()["delegate"] == "none"
    assert any("the gpu delegate claimed no node" in w for w in result.warnings)
    assert result.delegate["fallback"] == "xnnpack"  # what ran instead, as the log says


def test_battery_energy_subtracts_the_idle_baseline(server, phone, tflite_model):
    result = transport_for(server).run(request_for(tflite_model, min_time=0.6, affinity="big"))
    energy = result["energy"]
    idle_w = abs(phone.idle_ua) * phone.voltage_uv / 1e12  # 0.975 W
    load_w = abs(phone.load_ua) * phone.voltage_uv / 1e12  # 3.51 W
    assert energy["source"] == "battery" and energy["window"] == "timed runs"
    assert energy["idle_power_w"] == pytest.approx(idle_w)
    assert energy["power_w"] == pytest.approx(load_w)
    assert energy["idle_samples"] >= 3 and energy["samples"] >= 2
    avg_s = printed_stats(phone)["avg"] / 1e6
    # (P_run - P_idle) x time / runs, in mJ
    assert energy["energy_mj"] == pytest.approx((load_w - idle_w) * avg_s * 1000.0, rel=1e-4)
    assert energy["gross_energy_mj"] > energy["energy_mj"] > 0


def test_thermal_status_is_reported(server, phone, tflite_model):
    phone.thermal_status = 3
    result = transport_for(server).run(request_for(tflite_model, energy="model"))
    thermal = result["thermal"]
    assert thermal["android_thermal_status"] == 3 and thermal["android_thermal_status_name"] == "severe"
    assert thermal["throttled"] is True and thermal["max_temp_c"] == pytest.approx(36.2)
    assert result["energy"]["source"] == "model"
    assert phone.taskset_masks == [] and result["affinity"] is None


def test_disconnect_mid_run_is_retryable_and_the_next_run_works(server, phone, tflite_model):
    transport = transport_for(server)
    server.drop_during("benchmark_model", after_s=0.3)
    with pytest.raises(DeviceError) as info:
        transport.run(request_for(tflite_model, energy="model", min_time=5.0))
    assert info.value.retryable is True
    assert SERIAL in str(info.value) and f"127.0.0.1:{server.port}" in str(info.value)
    result = transport.run(request_for(tflite_model, energy="model"))
    assert result["ok"] is True


def test_measure_retries_a_dropped_run_and_caches_one_good_result(server, phone, tflite_model, tmp_path,
                                                                  monkeypatch):
    from nni_gensynth.hardware.cache import MeasurementCache
    from nni_gensynth.hardware.measure import measure
    from nni_gensynth.hardware.profiles import profile_from_dict

    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    profile = profile_from_dict({
        "name": "fake-android", "backend": "litert", "threads": 2, "cpu_affinity": "big",
        "transport": {"kind": "adb", "serial": SERIAL, "adb_port": server.port},
        "warmup": {"min_time_s": 0.05, "min_runs": 3}, "repeat": {"min_time_s": 0.3, "min_runs": 20},
        "energy": {"source": "battery", "idle_s": 0.2, "sample_interval_s": 0.05}})
    cache = MeasurementCache(tmp_path / "cache.sqlite")
    server.drop_during("benchmark_model", after_s=0.1)
    result = measure(tflite_model, profile, cache=cache, retries=2)
    assert len([c for c in phone.shell_log if "benchmark_model" in c]) == 2  # dropped once, then measured
    assert len(cache) == 1 and not result.from_cache
    assert result.energy_source == "battery" and result.energy_mj > 0
    assert result.median_ms == pytest.approx(printed_stats_last(phone)["avg"] / 1000.0, rel=1e-5)
    again = measure(tflite_model, profile, cache=cache)
    assert again.from_cache and len([c for c in phone.shell_log if "benchmark_model" in c]) == 2


def printed_stats_last(phone: FakeDevice) -> dict:
    out = [o for o in phone.outputs if "benchmark_model" in o[0]][-1][1].decode()
    line = [line for line in out.splitlines() if line.startswith("INFO: count=")][-1]
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+.\deE]+)", line)}


def test_missing_benchmark_binary_says_how_to_install_it(server, phone, tflite_model):
    phone.local(phone.benchmark_binary).unlink()
    with pytest.raises(DeviceError) as info:
        transport_for(server).run(request_for(tflite_model, energy="model"))
    assert info.value.retryable is False
    assert "exit 127" in str(info.value) and "adb push" in str(info.value)


def test_model_is_pushed_once_by_content_hash(server, phone, tflite_model):
    transport = transport_for(server)
    transport.run(request_for(tflite_model, energy="model", min_time=0.05))
    models = list(phone.local("/data/local/tmp/nni-gensynth/models").iterdir())
    assert len(models) == 1 and models[0].read_bytes() == tflite_model.read_bytes()
    sends = sum(1 for r in server.requests if r == "sync:")
    transport.run(request_for(tflite_model, energy="model", min_time=0.05))
    assert sum(1 for r in server.requests if r == "sync:") == sends + 1  # one STAT, no second SEND

    models[0].write_bytes(tflite_model.read_bytes()[:100])  # a push cut short: wrong size
    transport.run(request_for(tflite_model, energy="model", min_time=0.05))
    assert models[0].read_bytes() == tflite_model.read_bytes()


# ---------------------------------------------------------------------------------------------
# device_runner mode


def test_device_runner_mode_runs_the_real_runner_on_the_phone(server, phone, tflite_model):
    transport = transport_for(server, mode="device_runner")
    result = transport.run(request_for(tflite_model, energy="model", min_time=0.1))
    assert result["ok"] is True and result["backend"] == "litert"
    assert len(result["samples_ms"]) >= 20 and all(s > 0 for s in result["samples_ms"])
    assert result["runtime"].lower().startswith(("litert", "ai-edge-litert", "ai_edge_litert", "tflite"))
    runner_dirs = list(phone.local("/data/local/tmp/nni-gensynth").glob("runner-*"))
    assert len(runner_dirs) == 1 and (runner_dirs[0] / ".complete").is_file()
    [command] = [c for c in phone.shell_log if "nni_gensynth.device" in c]
    assert command.startswith(f"cd /data/local/tmp/nni-gensynth/{runner_dirs[0].name} && python3 -m nni_gensynth.device measure")

    with pytest.raises(DeviceError) as info:
        transport.run(request_for(tflite_model, energy="model", affinity=(4095,)))  # no such core
    assert info.value.retryable is False and "--affinity cores [4095] do not exist" in str(info.value)


def test_device_runner_mode_without_python_on_the_phone(server, phone, tflite_model):
    transport = transport_for(server, mode="device_runner", python="/data/data/com.termux/files/usr/bin/python")
    with pytest.raises(DeviceError, match="not found on the phone") as info:
        transport.run(request_for(tflite_model, energy="model"))
    assert info.value.retryable is False


# ---------------------------------------------------------------------------------------------
# no device, no server, bad settings


def test_unknown_serial_and_unplugged_phone_are_retryable(server, phone, tflite_model):
    with pytest.raises(DeviceError, match=f"OTHER is not connected.*{SERIAL} device") as info:
        transport_for(server, serial="OTHER").run(request_for(tflite_model))
    assert info.value.retryable is True
    server.unplug(SERIAL)
    with pytest.raises(DeviceError, match="nothing") as info:
        transport_for(server).run(request_for(tflite_model))
    assert info.value.retryable is True


def test_no_adb_server_is_an_error_and_spawns_nothing(tflite_model):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    before = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "adb"}
    with pytest.raises(DeviceError, match=f"127.0.0.1:{port} is not reachable") as info:
        ADBTransport({"kind": "adb", "serial": SERIAL, "adb_port": port}).run(request_for(tflite_model))
    assert info.value.retryable is True
    after = {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "adb"}
    assert after <= before  # adbutils' "adb start-server" fallback is not used


def test_bad_settings_and_arguments_name_what_is_wrong(tmp_path, tflite_model):
    with pytest.raises(ValueError, match="transport.mode"):
        ADBTransport({"kind": "adb", "mode": "apk"})
    with pytest.raises(ValueError, match="transport.adb_port"):
        ADBTransport({"kind": "adb", "adb_port": 0})
    with pytest.raises(ValueError, match="transport.benchmark_binary"):
        ADBTransport({"kind": "adb", "benchmark_binary": "benchmark_model"})
    transport = ADBTransport({"kind": "adb", "serial": SERIAL, "adb_port": 1})
    with pytest.raises(FileNotFoundError, match="nope.tflite"):
        transport.run(request_for(tmp_path / "nope.tflite"))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ValueError, match="backend 'litert'"):
        transport.run(request_for(onnx, backend="onnxruntime"))
    with pytest.raises(ValueError, match="energy source 'rapl' is not available over adb"):
        transport.run(request_for(tflite_model, energy="rapl"))


# ---------------------------------------------------------------------------------------------
# parsers, on text in benchmark_model's real format


REAL_FORMAT = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/mobilenet.tflite]
INFO: Loaded model /data/local/tmp/mobilenet.tflite
INFO: The input model file size (MB): 4.27635
INFO: Initialized session in 3.518ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=31 first=46511 curr=15134 min=14833 max=46511 avg=16271.5 std=5570

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=66 first=15079 curr=15056 min=14822 max=1.23457e+06 avg=15232.4 std=300

INFO: Inference timings in us: Init: 3518, First inference: 46511, Warmup (avg): 16271.5, Inference (avg): 15232.4
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=6.30859 overall=13.1172
INFO: Overall peak memory footprint (MB) via periodic monitoring: 17.6562
"""


def test_parse_benchmark_output_real_format():
    parsed = parse_benchmark_output(REAL_FORMAT)
    assert parsed["warmup_us"] == {"count": 31, "first": 46511, "curr": 15134, "min": 14833, "max": 46511,
                                   "avg": 16271.5, "std": 5570}
    assert parsed["inference_us"]["count"] == 66 and parsed["inference_us"]["max"] == 1.23457e06
    assert parsed["inference_us"]["avg"] == 15232.4
    assert (parsed["init_us"], parsed["first_inference_us"], parsed["inference_avg_us"]) == (3518, 46511, 15232.4)
    assert parsed["peak_mem_mb"] == 17.6562 and parsed["mem_delta_overall_mb"] == 13.1172


def test_parse_delegates_real_lines():
    """Lines as BenchmarkTfLiteModel::Init and the delegate providers print them."""
    text = ("INFO: Use gpu: [1]\nINFO: Use xnnpack: [1]\n"
            "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
            "INFO: GPU delegate created.\nINFO: XNNPACK delegate created.\n"
            "INFO: Though GPU delegate is explicitly applied, the model graph will not be executed by the delegate.\n"
            "INFO: Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the "
            "delegate w/ 22 delegate kernels.\n")
    parsed = parse_delegates(text)
    assert parsed["kernels"] == {"GPU": 0, "XNNPACK": 22} and parsed["default_xnnpack"]
    assert benchmark_delegation(parsed, "xnnpack") == {"requested": "xnnpack", "applied": "xnnpack",
                                                       "delegated_kernels": 22}
    assert benchmark_delegation(parsed, "gpu")["applied"] is None
    full = parse_delegates("INFO: Explicitly applied NNAPI delegate, and the model graph will be completely "
                           "executed by the delegate.\n")
    assert benchmark_delegation(full, "nnapi") == {"requested": "nnapi", "applied": "nnapi", "delegated_kernels": 1,
                                                   "full": True}
    unsupported = benchmark_delegation(parse_delegates("INFO: GPU acceleration is unsupported on this platform.\n"),
                                       "gpu")
    assert unsupported == {"requested": "gpu", "applied": None, "delegated_kernels": None}
    assert parse_delegates("") == {"kernels": {}, "full": [], "default_xnnpack": False}


def test_parse_benchmark_output_all_same_and_missing():
    same = parse_benchmark_output("INFO: count=1 curr=900\n\nINFO: count=5 curr=812(all same)\n")
    assert same["inference_us"] == {"count": 5, "curr": 812, "first": 812, "min": 812, "max": 812,
                                    "avg": 812, "std": 0.0}
    with pytest.raises(ValueError, match="no statistics line"):
        parse_benchmark_output("ERROR: Could not open '/data/local/tmp/x.tflite'.\n")


def test_small_parsers():
    assert parse_thermal_status("IsStatusOverride: false\nThermal Status: 2\n") == 2
    assert parse_thermal_status("nothing") is None
    assert parse_temperatures("Temperature{mValue=41.5, mType=0, mName=CPU3, mStatus=1}") == {"CPU3": 41.5}
    assert parse_getprop("[ro.product.model]: [Pixel 8]\n[ro.x]: []\n") == {"ro.product.model": "Pixel 8", "ro.x": ""}
    tri = "\n".join(f"/sys/devices/system/cpu/cpu{i}/cpufreq/cpuinfo_max_freq:{f}"
                    for i, f in enumerate([1800000] * 4 + [2400000] * 3 + [3000000]))
    assert big_core_mask(tri) == ([7], "80")
    with pytest.raises(ValueError, match="big cores"):
        big_core_mask("")


# ---------------------------------------------------------------------------------------------
# the fake speaks the protocol the real adb client speaks


def test_real_adb_client_talks_to_the_fake(server, phone, tmp_path):
    try:
        from adbutils import adb_path

        adb = adb_path()  # the adb on PATH (Debian's adb), else the one adbutils ships
    except Exception as exc:  # noqa: BLE001 - adbutils raises its own error types
        pytest.skip(f"no adb client binary: {exc}")
    version = subprocess.run([adb, "version"], capture_output=True, text=True, timeout=10).stdout
    if "1.0.41" not in version:
        pytest.skip(f"adb client is not 1.0.41 (the fake's server version): {version.splitlines()[:1]}")
    base = [adb, "-H", "127.0.0.1", "-P", str(server.port)]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)

    assert re.search(rf"^{SERIAL}\s+device", run("devices").stdout, flags=re.MULTILINE)
    assert run("-s", SERIAL, "shell", "getprop", "ro.product.model").stdout.strip() == "Fake Pixel"
    assert run("-s", SERIAL, "shell", "cat /nope").returncode == 1  # shell v2 carries the exit code
    local = tmp_path / "blob.bin"
    local.write_bytes(bytes(range(256)) * 1000)
    assert run("-s", SERIAL, "push", str(local), "/data/local/tmp/blob.bin").returncode == 0
    assert phone.local("/data/local/tmp/blob.bin").read_bytes() == local.read_bytes()
    assert run("-s", SERIAL, "pull", "/data/local/tmp/blob.bin", str(tmp_path / "back.bin")).returncode == 0
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()


def test_without_a_serial_the_only_device_is_used_and_named(server, phone, tflite_model):
    transport = ADBTransport({"kind": "adb", "adb_port": server.port})
    assert transport.device_id() == f"adb:{SERIAL}"
    assert transport.run(request_for(tflite_model, energy="model", min_time=0.05))["ok"]
    second = FakeDevice("FAKE0002", phone.root.parent / "phone2")
    server.plug(second)
    with pytest.raises(DeviceError, match="set transport.serial"):
        ADBTransport({"kind": "adb", "adb_port": server.port}).run(request_for(tflite_model))
    assert ADBTransport({"kind": "adb", "adb_port": server.port}).device_id() == f"adb:127.0.0.1:{server.port}/any"


def test_unwritable_workdir_is_not_retried(server, phone, tflite_model):
    # (On a phone, e.g. /system is read-only for the adb shell user; here a file is in the way.)
    phone.local("/data/local/blocked").write_text("a file, not a folder")
    transport = transport_for(server, workdir="/data/local/blocked/nni-gensynth")
    with pytest.raises(DeviceError, match="cannot create transport.workdir .*Not a directory") as info:
        transport.run(request_for(tflite_model, energy="model"))
    assert info.value.retryable is False


# ---------------------------------------------------------------------------------------------
# what goes to the phone is quoted; what comes back is bounded


HOSTILE_SUPPLY = "x; mkdir /data/local/tmp/pwned; echo"


def test_a_hostile_battery_supply_is_quoted_not_run(server, phone, tflite_model):
    transport = transport_for(server)
    with pytest.raises(DeviceError, match="cannot read") as info:
        transport.run(request_for(tflite_model, battery_supply=HOSTILE_SUPPLY))
    assert info.value.retryable is False
    assert not phone.local("/data/local/tmp/pwned").exists()
    [command] = [c for c in phone.shell_log if "power_supply" in c]
    assert command == ("cat '/sys/class/power_supply/x; mkdir /data/local/tmp/pwned; echo/current_now' "
                       "'/sys/class/power_supply/x; mkdir /data/local/tmp/pwned; echo/voltage_now'")
    # "auto" tries the battery, finds none by that name, and falls back to the model estimate
    result = transport.run(request_for(tflite_model, energy="auto", battery_supply=HOSTILE_SUPPLY))
    assert result["energy"]["source"] == "model" and not phone.local("/data/local/tmp/pwned").exists()


def test_device_output_past_the_limit_is_not_read(server, phone, tflite_model, tmp_path):
    phone.python_executable = str(chatty_python(tmp_path, megabytes=32))
    transport = transport_for(server, mode="device_runner")
    with pytest.raises(DeviceError, match=f"more than {MAX_OUTPUT_BYTES // (1 << 20)} MB") as info:
        transport.run(request_for(tflite_model, energy="model"))
    assert info.value.retryable is False
    (tmp_path / "small").mkdir()
    phone.python_executable = str(chatty_python(tmp_path / "small", megabytes=1))
    assert transport.run(request_for(tflite_model, energy="model")) == {"ok": True}


# ---------------------------------------------------------------------------------------------
# the parsers of what a phone prints, under hostile text


FRAGMENTS = st.sampled_from([
    "INFO: count=", "count=5 ", "first=", "avg=", "std=", "curr=", "(all same)", "min=", "max=", "nan", "inf", "-1",
    "1e999", "9" * 5000, "0", "12.5", "\n", " ", "Thermal Status: ", "Temperature{mValue=", ", mType=1, mName=",
    "}", "/sys/devices/system/cpu/cpu", "/cpufreq/cpuinfo_max_freq:", "[ro.x]: [", "]", "Overall peak memory "
    "footprint (MB) via periodic monitoring: ", "Inference timings in us: Init: ", ", First inference: ",
    ", Warmup (avg): ", ", Inference (avg): ", "Explicitly applied GPU delegate, and the model graph will be ",
    "partially executed by the delegate w/ ", " delegate kernels", "completely executed",
    "Though NNAPI delegate is explicitly applied, the model graph will not be executed"])
PHONE_TEXT = st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=PHONE_TEXT)
def test_phone_output_parsers_parse_or_say_why(text):
    for parse in (parse_benchmark_output, big_core_mask):
        try:
            parse(text)
        except ValueError:
            pass
    status = parse_thermal_status(text)
    assert status is None or 0 <= status < 10 ** 9
    assert all(math.isfinite(t) for t in parse_temperatures(text).values())
    assert isinstance(parse_getprop(text), dict)
    delegates = parse_delegates(text)
    assert all(count is None or 0 <= count < 10 ** 9 for count in delegates["kernels"].values())
    assert set(benchmark_delegation(delegates, "gpu")) >= {"requested", "applied", "delegated_kernels"}


@settings(max_examples=300, deadline=None)
@given(packets=st.lists(st.tuples(st.integers(0, 255), st.integers(0, 2 ** 32 - 1), st.binary(max_size=16)),
                        max_size=8))
def test_shell_v2_streams_are_read_within_the_limit(packets):
    stream = b"".join(bytes([kind]) + length.to_bytes(4, "little") + data for kind, length, data in packets)
    position = [0]

    def read(n: int) -> bytes:
        if position[0] + n > len(stream):
            raise EOFError("closed")
        position[0] += n
        return stream[position[0] - n:position[0]]

    try:
        out, err, code = read_shell_v2(read, time.monotonic() + 60, "FAKE")
    except EOFError:
        return  # the connection ended: the transport reports a lost device
    except DeviceError as exc:
        assert "more than" in str(exc) and not exc.retryable
        return
    assert len(out) + len(err) <= MAX_OUTPUT_BYTES and 0 <= code <= 255
