"""Pooled hardware profiles (transport.devices, pool), the pool's rotation and drift check with
recording transports (no devices), the device-side lease command run by a real shell, and the
report's drift flag."""
from __future__ import annotations

import copy
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from fakes.tiny_models import tiny_onnx
from hw_support import fast_request
from nni_gensynth.hardware import measure
from nni_gensynth.hardware.cache import MeasurementCache
from nni_gensynth.hardware.drift import DriftLog
from nni_gensynth.hardware.lease import DeviceBusy, LeaseSpec, leased_runner_command, raise_if_busy
from nni_gensynth.hardware.pool import DevicePool, pool_devices, pool_id
from nni_gensynth.hardware.pool_state import PoolState
from nni_gensynth.hardware.profiles import ProfileError, load_profile, profile_from_dict
from nni_gensynth.hardware.transports.base import DeviceError
from nni_gensynth.hardware.transports.remote import runner_files

POOL = {"name": "pi4-pool", "backend": "onnxruntime", "threads": 1, "input_shape": [1, 64],
        "transport": {"kind": "ssh", "user": "pi", "key_file": "~/.ssh/id_ed25519",
                      "devices": [{"host": "pi-a"}, {"host": "pi-b", "port": 2222, "user": "other"}]},
        "pool": {"name": "pi4-bookworm", "drift_tolerance": 0.1, "cross_check_every": 1},
        "warmup": {"min_time_s": 0.0, "min_runs": 1}, "repeat": {"min_time_s": 0.0, "min_runs": 5}}


def _profile(**changes: Any):
    data = copy.deepcopy(POOL)
    for key, value in changes.items():
        data[key] = value
    return profile_from_dict(data)


# ---------------------------------------------------------------------------------------------
# the format


def test_pool_devices_inherit_the_transport_fields_and_override_their_own():
    profile = _profile()
    assert profile.pooled and pool_id(profile) == "pool:pi4-bookworm"
    [a, b] = pool_devices(profile)
    assert (a.host, a.port, a.user, a.key_file) == ("pi-a", 22, "pi", "~/.ssh/id_ed25519")
    assert (b.host, b.port, b.user) == ("pi-b", 2222, "other")
    assert not a.devices and hash(profile)  # a device is a plain transport; the profile stays hashable


def test_single_device_profiles_are_unchanged():
    for name in ("host-cpu", "raspberry-pi-4", "android-arm64"):
        profile = load_profile(name)
        assert not profile.pooled and profile.transport.devices == () and profile.pool is None
        assert "devices" not in json.dumps(profile.fingerprint())


def test_the_pool_is_the_cache_identity_not_its_addresses():
    moved = copy.deepcopy(POOL)
    moved["transport"]["devices"] = [{"host": "10.0.0.9"}]
    moved["transport"]["key_file"] = "/elsewhere/key"
    assert profile_from_dict(moved).fingerprint() == _profile().fingerprint()
    assert _profile(threads=2).fingerprint() != _profile().fingerprint()  # a setting that changes a figure
    one = copy.deepcopy(POOL)
    one["transport"] = {"kind": "ssh", "host": "pi-a"}  # a pool of one: the host's own address
    assert pool_devices(profile_from_dict(one))[0].host == "pi-a" and profile_from_dict(one).pooled


@pytest.mark.parametrize("transport, pool, field", [
    ({"kind": "ssh", "host": "a", "devices": [{"host": "b"}]}, None, "transport.host"),
    ({"kind": "ssh", "devices": [{"host": "b"}, {"host": "b"}]}, None, "transport.devices[1]"),
    ({"kind": "ssh", "devices": [{"host": "b", "mode": "x"}]}, None, "transport.devices[0].mode"),
    ({"kind": "ssh", "devices": []}, None, "transport.devices"),
    ({"kind": "ssh", "devices": [{"port": 22}]}, None, "transport.devices[0].host"),
    ({"kind": "local", "devices": [{"host": "b"}]}, None, "transport.devices"),
    ({"kind": "local"}, {}, "pool"),
    ({"kind": "adb", "devices": [{"serial": "A"}]}, None, "transport.mode"),
    ({"kind": "ssh", "devices": [{"host": "b"}]}, {"drift_tolerance": 0}, "pool.drift_tolerance"),
    ({"kind": "ssh", "devices": [{"host": "b"}]}, {"name": "a b"}, "pool.name"),
    ({"kind": "ssh", "devices": [{"host": "b"}]}, {"cross_check_every": -1}, "pool.cross_check_every"),
])
def test_bad_pools_name_the_field(transport, pool, field):
    data = copy.deepcopy(POOL)
    data["transport"] = transport
    data.pop("pool")
    if pool is not None:
        data["pool"] = pool
    with pytest.raises(ProfileError) as caught:
        profile_from_dict(data)
    assert caught.value.field == field, str(caught.value)


def test_a_pool_of_phones_runs_the_device_runner():
    profile = _profile(transport={"kind": "adb", "mode": "device_runner", "devices": [{"serial": "A"}, {"serial": 42}]})
    assert [d.serial for d in pool_devices(profile)] == ["A", "42"]


def test_the_example_pool_profile_loads():
    profile = load_profile(Path(__file__).parents[1] / "hw_profiles" / "raspberry-pi-4-pool.yml")
    assert profile.pooled and len(pool_devices(profile)) >= 2 and profile.pool.drift_tolerance > 0


# ---------------------------------------------------------------------------------------------
# the rotation and the drift check, with recording transports


class FakeDevice:
    """A device answering like the runner, ``factor`` times slower than 1 ms, or busy / down."""

    def __init__(self, config: Any, log: List[str], factors: Dict[str, float], busy: Dict[str, int],
                 down: set) -> None:
        self.host = config["host"]
        self.log, self.factors, self.busy, self.down = log, factors, busy, down

    def device_id(self) -> str:
        return f"fake:{self.host}"

    def run(self, request) -> dict:
        assert request.lease is not None and request.lease.holder.endswith(f":{os.getpid()}")
        self.log.append(self.host)
        if self.host in self.down:
            raise DeviceError(f"cannot connect to {self.host}", retryable=True)
        if self.busy.get(self.host, 0) > 0:
            self.busy[self.host] -= 1
            raise DeviceBusy(self.host)
        factor = self.factors.get(self.host, 1.0)
        return {"ok": True, "samples_ms": [factor * (1 + i / 100) for i in range(10)], "backend": "onnxruntime",
                "runtime": "onnxruntime 1.0", "peak_mem_mb": 1.0, "energy": {"energy_mj": 1.0, "source": "model"}}

    def close(self) -> None:
        pass


@pytest.fixture
def fakes(tmp_path: Path):
    state: Dict[str, Any] = {"log": [], "factors": {}, "busy": {}, "down": set()}

    def make(profile, **kw):
        return DevicePool(profile, make=lambda config: FakeDevice(config, state["log"], state["factors"],
                                                                    state["busy"], state["down"]),
                          state=PoolState(pool_id(profile), tmp_path / "state"),
                          drift_log=DriftLog(tmp_path / "drift.sqlite"), sleep=lambda s: None, **kw)

    state["make"] = make
    return state


def test_busy_devices_are_passed_over_and_waited_for(fakes, tmp_path: Path):
    profile = _profile()
    pool = fakes["make"](profile)
    fakes["busy"].update({"pi-a": 3, "pi-b": 2})  # both busy for a few rounds
    answer, device = pool.run_on_any(fast_request(tiny_onnx(tmp_path / "m.onnx")))
    assert answer["ok"] and device in ("fake:pi-a", "fake:pi-b")
    assert len(fakes["log"]) >= 5 and set(fakes["log"]) == {"pi-a", "pi-b"}


def test_no_free_device_within_the_wait_is_an_error_naming_them(fakes, tmp_path: Path):
    profile = _profile(pool={"name": "p", "lease_wait_s": 0.01})
    fakes["busy"].update({"pi-a": 10 ** 9, "pi-b": 10 ** 9})
    with pytest.raises(DeviceError, match=r"no device of pool pool:p was free .*busy: fake:pi-"):
        fakes["make"](profile).run_on_any(fast_request(tiny_onnx(tmp_path / "m.onnx")))


def test_a_device_that_is_down_is_skipped_and_every_device_down_fails(fakes, tmp_path: Path):
    profile = _profile(pool={"name": "p", "probe_interval_s": 0.2})
    model = tiny_onnx(tmp_path / "m.onnx")
    fakes["down"].add("pi-a")
    fakes["busy"]["pi-b"] = 1  # whichever device this process starts with, pi-a is tried
    assert fakes["make"](profile).run_on_any(fast_request(model))[1] == "fake:pi-b"
    assert list(PoolState(pool_id(profile), tmp_path / "state").offline()) == ["fake:pi-a"]
    fakes["log"].clear()
    assert fakes["make"](profile).run_on_any(fast_request(model))[1] == "fake:pi-b"
    assert fakes["log"] == ["pi-b"]  # out of rotation until its probe is due
    fakes["down"].add("pi-b")  # both down: pi-a's probe is awaited, then the measurement fails
    with pytest.raises(DeviceError, match="2 device.s. failed during one measurement"):
        fakes["make"](profile).run_on_any(fast_request(model))


def test_runner_failures_are_the_measurements_not_the_devices(fakes, tmp_path: Path):
    profile = _profile()
    pool = fakes["make"](profile)
    pool._transports["fake:pi-a"].run = pool._transports["fake:pi-b"].run = \
        lambda request: (_ for _ in ()).throw(DeviceError("runner: cannot load the model"))
    with pytest.raises(DeviceError, match="cannot load"):
        pool.run_on_any(fast_request(tiny_onnx(tmp_path / "m.onnx")))
    assert PoolState(pool_id(profile), tmp_path / "state").offline() == {}


def test_a_device_drifting_from_its_peers_is_flagged_in_the_result(fakes, tmp_path: Path):
    profile = _profile(transport={"kind": "ssh", "devices": [{"host": "pi-a"}, {"host": "pi-b"}, {"host": "pi-c"}]})
    fakes["factors"]["pi-c"] = 1.5  # pi-c runs hot: 50% slower than its peers
    cache = MeasurementCache(tmp_path / "cache.sqlite")
    results = []
    pool = fakes["make"](profile)  # one rotation over the three devices
    for i in range(6):
        results.append(measure(tiny_onnx(tmp_path / f"m{i}.onnx", seed=i), profile, transport=pool, cache=cache))
    last = {r.measured_on: r for r in results}  # each device's latest, once all three were compared
    assert set(last) == {"fake:pi-a", "fake:pi-b", "fake:pi-c"}
    hot = last["fake:pi-c"]
    assert hot.drifted and abs(hot.drift - 0.5) < 0.05
    assert any("fake:pi-c drifts +50%" in w for w in hot.warnings)
    assert not last["fake:pi-a"].drifted and not last["fake:pi-b"].drifted  # the pool's median tells who moved
    metrics = hot.metrics()
    assert metrics["device_drifted"] is True and metrics["device"] == "fake:pi-c"
    assert metrics["device_pool"] == "pool:pi4-bookworm"
    stored = measure(tiny_onnx(tmp_path / "m5.onnx", seed=5), profile, transport=fakes["make"](profile), cache=cache)
    assert stored.from_cache and stored.measured_on == results[5].measured_on and stored.drift == results[5].drift


# ---------------------------------------------------------------------------------------------
# the device's side, run by a real shell


def _runner_dir(tmp_path: Path) -> Path:
    target = tmp_path / "runner"
    for relative, local in runner_files():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(local.read_bytes())
    return target


def test_the_leased_command_holds_the_lock_while_the_runner_runs_and_answers_busy(tmp_path: Path):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    model = tiny_onnx(tmp_path / "m.onnx")
    request = fast_request(model, lease=LeaseSpec("tester@here:1"))
    from nni_gensynth.hardware.request import runner_argv

    command = leased_runner_command(str(workdir), str(_runner_dir(tmp_path)), sys.executable,
                                    runner_argv(request, str(model)), request, watch_stdin=False)
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and answer["ok"] and answer["wall_end_s"] > answer["wall_start_s"]
    [run] = [json.loads(line) for line in (workdir / "lease.log").read_text().splitlines()]
    assert run["holder"] == "tester@here:1" and run["outcome"] == "ok"
    assert run["start"] == answer["wall_start_s"]

    with open(workdir / "lease.lock", "a") as held:  # someone else holds the lease
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        busy = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60)
    with pytest.raises(DeviceBusy):
        raise_if_busy(busy.stdout, busy.returncode, "the device")
    assert len((workdir / "lease.log").read_text().splitlines()) == 1  # the busy try ran nothing


# ---------------------------------------------------------------------------------------------
# the report


def test_the_report_flags_a_drifting_device():
    from nni_gensynth.results.analysis import summarize
    from nni_gensynth.results.html import render_index
    from nni_gensynth.results.model import ExperimentRecord, TrialRecord

    figures = {"default": 0.9, "accuracy": 0.9, "latency_ms": 12.0, "energy_source": "model",
               "device": "ssh:pi@pi-c:22", "device_pool": "pool:pi4"}
    trials = [TrialRecord("hot", "SUCCEEDED", 0, {"w": 8}, dict(figures, device_drift=0.5, device_drifted=True)),
              TrialRecord("ok", "SUCCEEDED", 1, {"w": 16}, dict(figures, device_drift=0.01, device_drifted=False))]
    record = ExperimentRecord("pool", "sqlite", None, {"tuner": {"name": "GenSynth"}}, trials)
    page = render_index(record, summarize(record))
    assert page.count(">DRIFT</span>") == 1 and "ssh:pi@pi-c:22 drifts +50% from its pool peers" in page
