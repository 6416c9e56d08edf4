"""Hardware profiles: the shipped ones load; bad fields, and numbers that are not finite or out of
range, are named with the file when the profile is loaded."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from nni_gensynth.hardware.profiles import (
    REPO_PROFILE_DIR,
    HardwareProfile,
    ProfileError,
    TransportConfig,
    available_profiles,
    load_profile,
    profile_from_dict,
)
from nni_gensynth.hardware.request import RunRequest, runner_argv

SHIPPED = ["host-cpu", "host-tflite", "raspberry-pi-4", "raspberry-pi-5", "android-arm64"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_and_is_documented(name):
    profile = load_profile(name)
    assert isinstance(profile, HardwareProfile)
    assert profile.name == name
    text = (REPO_PROFILE_DIR / f"{name}.yml").read_text()
    assert text.startswith("#"), "each shipped profile opens with a comment header"
    assert profile.description
    hash(profile)  # frozen and hashable
    assert "--backend" in runner_argv(RunRequest.for_profile(profile, "model"), "model")


def test_shipped_profiles_say_what_the_issue_asks():
    assert load_profile("host-cpu").backend == "onnxruntime"
    assert load_profile("host-tflite").backend == "litert"
    for pi in ("raspberry-pi-4", "raspberry-pi-5"):
        p = load_profile(pi)
        assert (p.backend, p.transport.kind) == ("litert", "ssh")
    assert load_profile("raspberry-pi-5").energy.source == "pmic"
    android = load_profile("android-arm64")
    assert (android.transport.kind, android.cpu_affinity, android.energy.source) == ("adb", "big", "battery")
    assert set(SHIPPED) <= set(available_profiles())


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "dev.yml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"name": "dev", "backend": "onnxruntime", "transport": {"kind": "local"}}


@pytest.mark.parametrize("change, field", [
    ({"colour": "red"}, "colour"),
    ({"threads": "four"}, "threads"),
    ({"threads": True}, "threads"),
    ({"threads": 0}, "threads"),
    ({"backend": "tensorrt"}, "backend"),
    ({"transport": {"kind": "serial"}}, "transport.kind"),
    ({"transport": {"kind": "local", "host": "pi"}}, "transport.host"),
    ({"transport": {"kind": "ssh"}}, "transport.host"),
    ({"transport": {"kind": "ssh", "host": "pi", "port": "22"}}, "transport.port"),
    ({"transport": {"kind": "adb", "mode": "magic"}}, "transport.mode"),
    ({"cpu_affinity": "little"}, "cpu_affinity"),
    ({"cpu_affinity": [0, "1"]}, "cpu_affinity[1]"),
    ({"warmup": {"min_time": 1}}, "warmup.min_time"),
    ({"repeat": {"min_runs": 50, "max_runs": 10}}, "repeat.max_runs"),
    ({"repeat": {"target_rse": 0}}, "repeat.target_rse"),
    ({"repeat": {"target_rse": 5}}, "repeat.target_rse"),
    ({"repeat": {"min_time_s": 2.0, "max_time_s": 1.0}}, "repeat.max_time_s"),
    ({"energy": {"source": "solar"}}, "energy.source"),
    ({"energy": {"active_power_w": -1}}, "energy.active_power_w"),
    ({"input_shape": [1, 3, 0, 32]}, "input_shape[2]"),
    ({"cv_warn_threshold": "low"}, "cv_warn_threshold"),
    ({"precision": "int4"}, "precision"),
    ({"precision": None}, "precision"),
    ({"delegate": "tpu"}, "delegate"),
    ({"delegate": "xnnpack"}, "delegate"),  # ONNX Runtime has no LiteRT delegate
    ({"backend": "litert", "delegate": "gpu"}, "delegate"),  # the device runner applies xnnpack or none
    ({"backend": "litert", "delegate": "nnapi", "transport": {"kind": "adb", "mode": "device_runner"}}, "delegate"),
])
def test_bad_field_is_named_with_the_file(tmp_path, change, field):
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert f"'{field}'" in str(info.value)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("missing", ["name", "backend", "transport"])
def test_missing_required_field_is_named(tmp_path, missing):
    data = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ProfileError, match=f"field '{missing}': missing required field"):
        load_profile(str(_write(tmp_path, data)))


def test_not_a_mapping_and_bad_yaml(tmp_path):
    path = tmp_path / "list.yml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ProfileError, match="must be a mapping"):
        load_profile(str(path))
    path.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(str(path))


def test_lookup_order_env_dir_before_repo(tmp_path, monkeypatch):
    (tmp_path / "host-cpu.yml").write_text(yaml.safe_dump({**BASE, "name": "host-cpu", "threads": 3}))
    monkeypatch.setenv("GENSYNTH_HW_PROFILES", str(tmp_path))
    assert load_profile("host-cpu").threads == 3
    monkeypatch.delenv("GENSYNTH_HW_PROFILES")
    assert load_profile("host-cpu").threads == 1


def test_unknown_name_lists_available(monkeypatch):
    monkeypatch.delenv("GENSYNTH_HW_PROFILES", raising=False)
    with pytest.raises(FileNotFoundError, match="available: .*host-cpu"):
        load_profile("no-such-device")
    with pytest.raises(FileNotFoundError):
        load_profile("/nonexistent/dev.yml")
    with pytest.raises(TypeError):
        load_profile(42)


def test_defaults_transport_mapping_and_fingerprint(tmp_path):
    profile = load_profile(str(_write(tmp_path, {**BASE, "transport": {"kind": "ssh", "host": "pi.local"}})))
    assert profile.input_shape == (1, 3, 32, 32)
    assert profile.repeat.min_runs == 30 and profile.warmup.min_time_s == 1.0
    assert isinstance(profile.transport, TransportConfig)
    assert profile.transport["host"] == "pi.local" and profile.transport.get("port") == 22
    assert dict(profile.transport)["kind"] == "ssh"
    other = load_profile(str(_write(tmp_path, {**BASE, "transport": {"kind": "ssh", "host": "pi.local"},
                                               "description": "renamed only"})))
    assert other.fingerprint() == profile.fingerprint()  # description does not change a measurement
    threads = load_profile(str(_write(tmp_path, {**BASE, "transport": {"kind": "ssh", "host": "pi.local"},
                                                 "threads": 2})))
    assert threads.fingerprint() != profile.fingerprint()


def test_precision_and_delegate_settings(tmp_path):
    """precision selects which models are measured (each keeps its own cache key, so it leaves the
    fingerprint alone); a delegate changes what is measured, and its default leaves the shipped
    profiles' fingerprints (and their cached measurements) as they were."""
    plain = load_profile(str(_write(tmp_path, {**BASE, "backend": "litert"})))
    assert (plain.precision, plain.delegate) == ("fp32", None)
    explicit = load_profile(str(_write(tmp_path, {**BASE, "backend": "litert", "precision": "fp32", "delegate": None})))
    both = load_profile(str(_write(tmp_path, {**BASE, "backend": "litert", "precision": "both"})))
    assert plain.fingerprint() == explicit.fingerprint() == both.fingerprint()
    off = load_profile(str(_write(tmp_path, {**BASE, "backend": "litert", "delegate": "none"})))
    assert off.delegate == "none" and off.fingerprint() != plain.fingerprint()
    assert RunRequest.for_profile(off, "m.tflite").delegate == "none"
    phone = {**BASE, "backend": "litert", "transport": {"kind": "adb"}}
    for delegate in ("xnnpack", "none", "gpu", "nnapi"):
        assert load_profile(str(_write(tmp_path, {**phone, "delegate": delegate}))).delegate == delegate
    for name in SHIPPED:
        assert load_profile(name).precision in ("fp32", "int8", "both")


def test_runner_argv_carries_the_policy(tmp_path):
    profile = load_profile(str(_write(tmp_path, {**BASE, "cpu_affinity": [0, 1], "energy": {"source": "ina219",
                                                 "ina219_hwmon": "/sys/class/hwmon/hwmon3"}})))
    args = runner_argv(RunRequest.for_profile(profile, tmp_path / "m.onnx"), "/device/m.onnx")
    assert args[:3] == ["measure", "--model", "/device/m.onnx"]
    assert args[args.index("--affinity") + 1] == "0,1"
    assert args[args.index("--energy-source") + 1] == "ina219"
    assert '"ina219_hwmon": "/sys/class/hwmon/hwmon3"' in args[args.index("--energy-config") + 1]


# ---------------------------------------------------------------------------------------------
# Numbers: finite and in range at load (issue #11 item 6)

HOSTILE_YAML = [
    # (YAML text added to a valid profile, the field the error must name)
    ("repeat: {min_time_s: .nan}", "repeat.min_time_s"),         # measured 5 samples
    ("warmup: {min_time_s: .inf}", "warmup.min_time_s"),         # spun until the timeout, retried
    ("energy: {source: model, active_power_w: .nan}", "energy.active_power_w"),  # crashed the runner
    ("energy: {source: model, active_power_w: .inf}", "energy.active_power_w"),
    ("cv_warn_threshold: .nan", "cv_warn_threshold"),
    ("input_shape: [1, 3, 2147483648, 32]", "input_shape[2]"),
    ("input_shape: [1, 3, 4096, 4096, 64]", "input_shape"),        # 4 G elements
    ("repeat: {max_runs: 100000000}", "repeat.max_runs"),
    ("repeat: {target_rse: .nan}", "repeat.target_rse"),
    ("repeat: {max_time_s: -.inf}", "repeat.max_time_s"),
    ("energy: {idle_s: 1e999}", "energy.idle_s"),
    ("energy: {sample_interval_s: 1e-300}", "energy.sample_interval_s"),
    ("energy: {battery_supply: 'battery; reboot'}", "energy.battery_supply"),
    ("threads: 100000000000000000000000000000", "threads"),
    ("warmup: {min_time_s: 3000}", "transport.timeout_s"),       # longer than a call may take
]


@pytest.mark.parametrize("text, field", HOSTILE_YAML)
def test_hostile_numbers_are_refused_at_load(tmp_path, text, field):
    path = tmp_path / "dev.yml"
    path.write_text("name: dev\nbackend: onnxruntime\ntransport: {kind: local}\n" + text + "\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert info.value.field == field and f"'{field}'" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("timeout", [".inf", ".nan", "0", "-5", "1e9"])
def test_ssh_timeout_must_be_finite_and_sensible(tmp_path, timeout):
    path = tmp_path / "pi.yml"
    path.write_text(f"name: pi\nbackend: litert\ntransport: {{kind: ssh, host: pi, timeout_s: {timeout}}}\n")
    with pytest.raises(ProfileError, match="'transport.timeout_s'"):
        load_profile(str(path))


NUMBER_FIELDS = ["warmup.min_time_s", "warmup.min_runs", "repeat.min_time_s", "repeat.min_runs", "repeat.max_runs",
                 "repeat.target_rse", "repeat.max_time_s", "energy.active_power_w", "energy.idle_s",
                 "energy.sample_interval_s", "threads", "cv_warn_threshold", "transport.timeout_s", "input_shape",
                 "cpu_affinity", "transport.port"]
# fields whose value another field's rule may refuse (the rule names the field it checks)
LINKED = {"repeat.min_runs": {"repeat.max_runs"}, "repeat.min_time_s": {"repeat.max_time_s", "transport.timeout_s"},
          "repeat.max_time_s": {"transport.timeout_s"}, "repeat.target_rse": {"transport.timeout_s"},
          "warmup.min_time_s": {"transport.timeout_s"}, "energy.idle_s": {"transport.timeout_s"}}
HOSTILE_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.integers(min_value=-2 ** 80, max_value=2 ** 80),
    st.sampled_from([2 ** 31, 2 ** 63, 10 ** 400, -1, 0, 1, 1e-320, 1e308]), st.text(max_size=30), st.booleans(),
    st.none(), st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=3)), max_size=6),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(NUMBER_FIELDS), value=HOSTILE_VALUES)
def test_hostile_profile_values_give_a_valid_profile_or_name_the_field(field, value):
    section, _, name = field.rpartition(".")
    data = {"name": "dev", "backend": "onnxruntime", "transport": {"kind": "ssh", "host": "pi"}}
    (data.setdefault(section, {}) if section else data)[name] = value
    raw = yaml.safe_load(yaml.safe_dump(data))  # what a YAML file with these values reads as
    try:
        profile = profile_from_dict(raw, "hostile.yml")
    except ProfileError as exc:
        assert exc.field == field or exc.field.startswith(field + "[") or exc.field in LINKED.get(field, ()), exc
        assert f"'{exc.field}'" in str(exc) and "hostile.yml" in str(exc)
        return
    numbers = list(_numbers(asdict(profile)))
    assert numbers and all(math.isfinite(n) and abs(n) < 2 ** 63 for n in numbers)
    assert profile.repeat.min_runs <= profile.repeat.max_runs <= 200_000
    assert 0 < profile.transport.timeout_s <= 86400 and math.prod(profile.input_shape) <= 1 << 27
