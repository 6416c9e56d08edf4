"""The Raspberry Pi path on an emulated 64-bit Raspberry Pi OS device: a Debian bookworm arm64 root
under qemu-user (tests/fixtures_emulated_pi.py), its aarch64 sshd on 127.0.0.1, the venvs that
docs/devices.md step 2 sets up (ai-edge-litert; tflite-runtime with numpy < 2) and the vcgencmd
stand-in of the Pi 5's PMIC. Emulation is about 400x slower than the board: these tests check the
plumbing (OS, aarch64 wheels, SSH, formats, errors), never a timing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from fixtures_emulated_pi import EmulatedPi, emulated_pi  # noqa: F401 - pytest fixture
from nni_experiments import Experiment, rest
from nni_gensynth.hardware import measure
from nni_gensynth.hardware.cache import MeasurementCache
from nni_gensynth.hardware.transports.base import DeviceError
from nni_gensynth.results.assemble import decode_metric

SHAPE = (1, 3, 16, 16)
LITERT, TFLITE_RUNTIME = "emulated-pi-5", "emulated-pi-5-tflite-runtime"


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hw_support import tiny_net
    from nni_gensynth.hardware.export import export_tflite

    return export_tflite(tiny_net(), SHAPE, directory=tmp_path_factory.mktemp("emulated-pi-models"))


def gensynth_profile(model: Path, profile: Path, cache: Path) -> dict:
    """`gensynth profile MODEL --profile PROFILE --json --no-cache`, its JSON line."""
    out = subprocess.run([sys.executable, "-m", "nni_gensynth.cli", "profile", str(model), "--profile", str(profile),
                          "--json", "--no-cache"], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, GENSYNTH_CACHE_DIR=str(cache)))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(label: str, measured, capsys: pytest.CaptureFixture) -> None:
    """One line in the test run's output: what the emulated Pi measured."""
    device = measured.device
    with capsys.disabled():
        print(f"\n[emulated pi] {label}: machine={device.get('machine')} emulated={measured.emulated} "
              f"({device.get('emulation', {}).get('emulator')}) runtime={measured.spec.runtime} "
              f"latency_ms={measured.median_ms:.3g} energy_source={measured.energy_source} "
              f"energy_mj={measured.energy_mj:.4g} python={device.get('python')} hostname={device.get('hostname')}")


def test_the_emulated_pi_takes_key_logins_of_pi_on_loopback_only(emulated_pi: EmulatedPi):
    import emulated_pi_chroot

    effective = subprocess.run(emulated_pi_chroot.in_root(emulated_pi.folder / "root", [
        "/usr/sbin/sshd", "-T", "-o", f"Port={emulated_pi.port}"], env=emulated_pi_chroot.root_env()),
        capture_output=True, text=True, timeout=120).stdout.splitlines()
    assert [line for line in effective if line.startswith("listenaddress")] == [
        f"listenaddress 127.0.0.1:{emulated_pi.port}"]
    for setting in ("passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no",
                    "pubkeyauthentication yes", "allowusers pi"):
        assert setting in effective
    listening = [line for line in emulated_pi.log.read_text().splitlines() if "Server listening" in line]
    assert listening and all(f"on 127.0.0.1 port {emulated_pi.port}" in line for line in listening)


@pytest.mark.parametrize("profile_name, runtime", [(LITERT, "ai_edge_litert"), (TFLITE_RUNTIME, "tflite_runtime")])
def test_gensynth_profile_measures_on_the_emulated_pi(emulated_pi: EmulatedPi, tflite_model: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture, profile_name: str, runtime: str):
    profile = emulated_pi.profiles[profile_name]
    result = gensynth_profile(tflite_model, profile, tmp_path / "cache")
    assert result["runtime"].split()[0] == runtime
    assert result["energy_source"] == "pmic" and result["energy_mj"] > 0
    assert result["energy"]["idle_power_w"] > 0 and result["energy"]["power_w"] > result["energy"]["idle_power_w"]
    assert result["emulated"] is True
    assert any("emulated device (aarch64 under qemu-aarch64-static)" in w for w in result["warnings"])
    assert result["thermal"]["throttled"] is False and result["thermal"]["throttled_raw"] == "0x0"
    assert result["device"] == f"ssh:pi@127.0.0.1:{emulated_pi.port}"

    # the same measurement, from the cache the command filled: the device's own facts
    cache = MeasurementCache(tmp_path / "cache" / "measurements.sqlite")
    measured = measure(tflite_model, profile, cache=cache)
    assert measured.from_cache
    device = measured.device
    assert device["machine"] == "aarch64" and device["emulated"] is True
    assert "the kernel is x86_64" in device["emulation"]["evidence"]
    assert device["python"].startswith("3.11") and device["hostname"] == "emulated-pi5"
    assert device["runtimes"]["litert"].split()[0] == runtime
    show(profile_name, measured, capsys)


def long_profile(emulated_pi: EmulatedPi, directory: Path) -> Path:
    """The emulated Pi's profile with a 60 s timing phase: a measurement to interrupt."""
    data = yaml.safe_load(emulated_pi.profiles[LITERT].read_text())
    data.update(name="emulated-pi-5-long", repeat={"min_time_s": 60.0, "min_runs": 5, "max_runs": 200_000})
    path = directory / "emulated-pi-5-long.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_pi_that_reboots_mid_measurement_is_a_retryable_error_and_nothing_is_cached(
        emulated_pi: EmulatedPi, tflite_model: Path, tmp_path: Path):
    profile = long_profile(emulated_pi, tmp_path)
    cache = MeasurementCache(tmp_path / "measurements.sqlite")
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = measure(tflite_model, profile, cache=cache, use_cache=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 180
    while not emulated_pi.device_runners():
        assert thread.is_alive() and time.monotonic() < deadline, f"no runner started on the emulated Pi: {outcome}"
        time.sleep(0.2)
    time.sleep(3.0)  # the runner is loading the model or timing it
    try:
        emulated_pi.kill()  # the Pi loses power: sshd, the session and the runner are gone
        thread.join(timeout=180)
        assert not thread.is_alive()
        error = outcome.get("error")
        assert isinstance(error, DeviceError) and error.retryable, outcome
        assert "127.0.0.1" in str(error)
        assert not emulated_pi.device_runners()
        assert len(cache) == 0
    finally:
        emulated_pi.start()  # it boots again
    again = measure(tflite_model, emulated_pi.profiles[LITERT], cache=cache, use_cache=False)
    assert again.emulated and again.energy_mj > 0


def experiment_config(emulated_pi: EmulatedPi, workdir: Path, budget_ms: float) -> dict:
    """A small GenSynth experiment on digits whose tuner screens every candidate on the emulated Pi
    before training; tiny networks (emulation is slow) and one training epoch."""
    profile = str(emulated_pi.profiles[LITERT])
    space = {"stem_width": {"_type": "choice", "_value": [8, 16]},
             "stage1_depth": {"_type": "randint", "_value": [1, 2]},
             "stage1_width": {"_type": "choice", "_value": [8, 16]},
             "stage1_kernel": {"_type": "choice", "_value": [3]},
             "stage1_expansion": {"_type": "choice", "_value": [1, 3]},
             "stage2_depth": {"_type": "randint", "_value": [1, 2]},
             "stage2_width": {"_type": "choice", "_value": [16, 24]},
             "stage2_kernel": {"_type": "choice", "_value": [3]},
             "stage2_expansion": {"_type": "choice", "_value": [1, 3]},
             "stage3_depth": {"_type": "randint", "_value": [1, 2]},
             "stage3_width": {"_type": "choice", "_value": [24]},
             "stage3_kernel": {"_type": "choice", "_value": [3]},
             "stage3_expansion": {"_type": "choice", "_value": [1]},
             "stage4_depth": {"_type": "randint", "_value": [0, 1]},
             "stage4_width": {"_type": "choice", "_value": [32]},
             "stage4_kernel": {"_type": "choice", "_value": [3]},
             "stage4_expansion": {"_type": "choice", "_value": [1]},
             "lr": {"_type": "loguniform", "_value": [0.003, 0.03]}}
    (workdir / "space.json").write_text(json.dumps(space))
    constraints = {"latency_ms": {"max": budget_ms}}
    return {
        "experimentName": "gensynth-emulated-pi-e2e",
        "searchSpaceFile": str(workdir / "space.json"),
        "trialCommand": (f"{sys.executable} -m nni_gensynth.trial --epochs 1 --image-size 8 --hw-profile {profile} "
                         f"--skip-infeasible --constraints '{json.dumps(constraints)}'"),
        "trialCodeDirectory": str(Path(__file__).resolve().parents[1]),
        "trialConcurrency": 1,
        "maxTrialNumber": 3,
        "maxExperimentDuration": "15m",
        "tuner": {"name": "GenSynth", "classArgs": {"optimize_mode": "maximize", "objective": "accuracy",
                                                    "constraints": constraints, "hw_profile": profile,
                                                    "population_size": 2, "max_profiler_calls": 2, "seed": 0}},
        "trainingService": {"platform": "local"},
    }


def test_nni_experiment_screens_candidates_on_the_emulated_pi(emulated_pi: EmulatedPi, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))  # the tuner's and the trials' cache
    with Experiment(experiment_config(emulated_pi, tmp_path, budget_ms=5000.0), tmp_path) as exp:
        final = exp.wait(timeout=1200)
        assert final["status"] == "DONE", (final, exp.log("dispatcher.log")[-3000:])
        jobs = rest(exp.port, "trial-jobs")
        state = json.loads((exp.directory / "checkpoint" / "gensynth" / "state.json").read_text())
    assert len(jobs) == 3 and all(j["status"] == "SUCCEEDED" for j in jobs), jobs
    assert state["profiler_calls"] >= 3  # every proposal was measured on the emulated Pi before training
    for measured in state["measurements"]:
        assert measured["metrics"]["latency_ms"] > 0 and measured["metrics"]["energy_mj"] > 0
    for metrics in (decode_metric(j["finalMetricData"][0]["data"]) for j in jobs):
        assert metrics["emulated"] is True and metrics["energy_source"] == "pmic" and metrics["energy_mj"] > 0
        assert metrics["device"] == f"ssh:pi@127.0.0.1:{emulated_pi.port}"
