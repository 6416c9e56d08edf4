"""Hardware profiles: the shipped ones load; bad fields are named with the file."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nni_gensynth.hardware.profiles import (
    REPO_PROFILE_DIR,
    HardwareProfile,
    ProfileError,
    TransportConfig,
    available_profiles,
    load_profile,
)

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
    assert "--backend" in profile.runner_args()


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
    with pytest.raises(ProfileError, match=f"missing required field '{missing}'"):
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


def test_runner_args_carry_the_policy(tmp_path):
    profile = load_profile(str(_write(tmp_path, {**BASE, "cpu_affinity": [0, 1], "energy": {"source": "ina219",
                                                 "ina219_hwmon": "/sys/class/hwmon/hwmon3"}})))
    args = profile.runner_args()
    assert args[args.index("--affinity") + 1] == "0,1"
    assert args[args.index("--energy-source") + 1] == "ina219"
    assert '"ina219_hwmon": "/sys/class/hwmon/hwmon3"' in args[args.index("--energy-config") + 1]
