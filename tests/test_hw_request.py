"""The typed run request: built from a profile once, turned into the device runner's command line
only by runner_argv, and read back by the runner exactly; the one input-shape parser; the one
file hash."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from nni_gensynth.device.__main__ import build_parser
from nni_gensynth.device.protocol import BACKENDS, ENERGY_SOURCES
from nni_gensynth.constraints import FieldError
from nni_gensynth.hardware.hashing import file_sha256
from nni_gensynth.hardware.profiles import EnergyConfig, RepeatPolicy, WarmupPolicy, load_profile, profile_from_dict
from nni_gensynth.hardware.request import RunRequest, energy_settings, runner_argv
from nni_gensynth.hardware.shapes import MAX_DIM, parse_input_shape

times = st.floats(min_value=0.0, max_value=3600.0, allow_nan=False)
requests = st.builds(
    RunRequest,
    model_path=st.just(Path("/host/m.tflite")),
    backend=st.sampled_from(BACKENDS),
    threads=st.integers(1, 256),
    affinity=st.one_of(st.none(), st.just("big"), st.lists(st.integers(0, 4095), min_size=1, max_size=8).map(tuple)),
    warmup=st.builds(WarmupPolicy, min_time_s=times, min_runs=st.integers(0, 200_000)),
    repeat=st.builds(RepeatPolicy, min_time_s=times, min_runs=st.integers(1, 1000), max_runs=st.integers(1000, 200_000),
                     target_rse=st.one_of(st.none(), st.floats(1e-6, 0.999)), max_time_s=st.one_of(st.none(), times)),
    energy=st.builds(EnergyConfig, source=st.sampled_from(ENERGY_SOURCES),
                     active_power_w=st.one_of(st.none(), st.floats(1e-3, 1000.0)),
                     battery_supply=st.one_of(st.none(), st.sampled_from(["battery", "BAT0", "bq27441-0"])),
                     pmic_command=st.one_of(st.none(), st.just(("vcgencmd", "pmic_read_adc")))),
    timeout_s=st.floats(1.0, 86400.0))


@settings(max_examples=200, deadline=None)
@given(request=requests, device_path=st.text(min_size=1, max_size=40).filter(lambda t: not t.startswith("-")))
def test_the_runner_reads_back_exactly_what_was_requested(request, device_path):
    args = build_parser().parse_args(runner_argv(request, device_path))
    assert (args.command, args.model, args.backend, args.threads) == ("measure", device_path, request.backend,
                                                                       request.threads)
    assert args.affinity == request.affinity_spec
    assert (args.warmup_min_time_s, args.warmup_min_runs) == (request.warmup.min_time_s, request.warmup.min_runs)
    assert (args.min_time_s, args.min_runs, args.max_runs) == (request.repeat.min_time_s, request.repeat.min_runs,
                                                               request.repeat.max_runs)
    assert args.target_rse == request.repeat.target_rse
    assert args.max_time_s == request.repeat.time_limit_s
    assert args.energy_source == request.energy.source
    assert json.loads(args.energy_config) == energy_settings(request.energy)


def test_a_request_is_built_from_the_profile_once(tmp_path):
    profile = load_profile("android-arm64")
    request = RunRequest.for_profile(profile, tmp_path / "m.tflite", input_shape=(1, 3, 16, 16))
    assert (request.backend, request.threads, request.affinity, request.affinity_spec) == ("litert", 4, "big", "big")
    assert request.warmup is profile.warmup and request.repeat is profile.repeat and request.energy is profile.energy
    assert request.timeout_s == profile.transport.timeout_s and request.input_shape == (1, 3, 16, 16)
    assert RunRequest.for_profile(profile, "m.tflite").input_shape == profile.input_shape
    hash(request)  # frozen
    pinned = profile_from_dict({"name": "p", "backend": "onnxruntime", "transport": {"kind": "local"},
                                "cpu_affinity": [2, 0]})
    assert RunRequest.for_profile(pinned, "m.onnx").affinity_spec == "2,0"
    with pytest.raises(ValueError, match="backend"):
        RunRequest(model_path=Path("m"), backend="tensorrt")
    with pytest.raises(ValueError, match="timeout_s"):
        RunRequest(model_path=Path("m"), backend="litert", timeout_s=math.inf)


@pytest.mark.parametrize("delegate", [None, "xnnpack", "none"])
def test_the_runner_reads_back_the_delegate(delegate):
    argv = runner_argv(RunRequest(Path("m"), "litert", delegate=delegate), "m")
    assert ("--delegate" in argv) == (delegate is not None)
    assert build_parser().parse_args(argv).delegate == delegate


def test_a_delegate_the_backend_cannot_apply_is_refused():
    with pytest.raises(ValueError, match="delegate"):
        RunRequest(Path("m"), "onnxruntime", delegate="xnnpack")
    with pytest.raises(ValueError, match="delegate"):
        RunRequest(Path("m"), "litert", delegate="tpu")
    assert RunRequest(Path("m"), "litert", delegate="gpu").delegate == "gpu"  # benchmark_model applies it


def test_the_settle_policy_is_sent_only_with_a_target():
    plain = runner_argv(RunRequest(Path("m"), "litert", repeat=RepeatPolicy(max_time_s=9.0)), "m")
    assert "--target-rse" not in plain and "--max-time-s" not in plain
    settled = runner_argv(RunRequest(Path("m"), "litert", repeat=RepeatPolicy(min_time_s=2.0, target_rse=0.01)), "m")
    assert settled[settled.index("--max-time-s") + 1] == "6.0"  # 3 x min_time_s by default


@pytest.mark.parametrize("value, expected", [
    ("1,3,32,32", (1, 3, 32, 32)), (" 1, 64 ", (1, 64)), ([1, 3, 8, 8], (1, 3, 8, 8)), ((2, 1, 16, 16), (2, 1, 16, 16)),
])
def test_one_input_shape_parser(value, expected):
    assert parse_input_shape(value) == expected


@pytest.mark.parametrize("value, ndim, field", [
    ("1,x", None, "--input-shape"), ("", None, "--input-shape"), ("1,3,0,32", None, "--input-shape[2]"),
    (f"1,3,{2 ** 31},32", None, "--input-shape[2]"), ("1,3,32", 4, "--input-shape"), ([1, 3.5], None, "--input-shape[1]"),
    ([1, True], None, "--input-shape[1]"), ("1," * 9 + "1", None, "--input-shape"),
    (f"64,64,{MAX_DIM},{MAX_DIM}", None, "--input-shape"), (7, None, "--input-shape"),
])
def test_input_shape_errors_name_the_option(value, ndim, field):
    with pytest.raises(FieldError) as info:
        parse_input_shape(value, ndim=ndim, name="--input-shape")
    assert info.value.field == field and isinstance(info.value, ValueError)
    assert str(info.value).startswith(field)


def test_one_file_hash(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
