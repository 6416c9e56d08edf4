"""NNI's remote training service end to end: GenSynth as tuner, trials on two worker "machines"
over SSH (real sshd, users of their own; tests/fixtures_remote.py), every candidate measured on a
pool of two SSH devices (tests/fixtures_pool.py) by the tuner and by the trials, with one device
killed mid-run. The devices' own lease logs prove no device was ever timed by two processes at
once."""
from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
import yaml

from fixtures_pool import DevicePoolFixture, device_pool, overlapping
from fixtures_remote import WorkerMachine, worker_machines
from nni_experiments import Experiment, rest, status

REPO = Path(__file__).resolve().parents[1]
TRIALS = 6
CONSTRAINTS = {"latency_ms": {"max": 5.0}}
POOL = {"probe_interval_s": 600.0, "lease_wait_s": 300.0, "cross_check_every": 0}
TIMING = {"input_shape": [1, 3, 16, 16], "repeat": {"min_time_s": 1.0, "min_runs": 10, "max_runs": 200_000}}


@pytest.fixture
def devices(tmp_path: Path):
    yield from device_pool(tmp_path, 2)


@pytest.fixture
def workers():
    yield from worker_machines(2)


def _worker_profile(devices: DevicePoolFixture, workers: list[WorkerMachine], folder: Path) -> Path:
    """One profile for every worker: the devices' keys and known_hosts in each user's ~/.ssh."""
    for worker in workers:
        for i, server in enumerate(devices.servers):
            worker.put(f".ssh/gensynth_device{i}", server.user_key.read_text(), mode=0o600)
        worker.put(".ssh/gensynth_known_hosts", devices.known_hosts.read_text())
    data = devices.profile(pool=POOL, **TIMING)
    data["transport"]["known_hosts"] = "~/.ssh/gensynth_known_hosts"
    for i, device in enumerate(data["transport"]["devices"]):
        device["key_file"] = f"~/.ssh/gensynth_device{i}"
    path = folder / "pool-workers.yml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o644)
    return path


def _trial_measuring_on(server, workers: list[WorkerMachine]) -> bool:
    """Whether a device runner on ``server`` holds the lease for a worker user's process (a trial)."""
    holders = tuple(f"{worker.name}@" for worker in workers)
    for runner in server.device_runners():
        try:
            argv = runner.cmdline()
        except psutil.Error:
            continue
        if "--lease-holder" in argv and argv[argv.index("--lease-holder") + 1].startswith(holders):
            return True
    return False


def _config(tuner_profile: Path, worker_profile: Path, workers: list[WorkerMachine], folder: Path) -> dict:
    trial = (f"python3 -m nni_gensynth.trial --epochs 1 --image-size 16 --hw-profile {worker_profile} "
             f"--skip-infeasible --no-progress --constraints '{json.dumps(CONSTRAINTS)}'")
    code = folder / "code"  # what NNI uploads to each worker: nothing is needed but the command
    code.mkdir()
    (code / "README").write_text("trials run python -m nni_gensynth.trial from the worker's Python\n")
    return {
        "experimentName": "gensynth-remote-pool",
        "searchSpaceFile": str(REPO / "search_spaces" / "mobilenet_macro.json"),
        "trialCommand": trial,
        "trialCodeDirectory": str(code),
        "trialConcurrency": 4,
        "maxTrialNumber": TRIALS,
        "maxExperimentDuration": "12m",
        "nniManagerIp": "127.0.0.1",
        "tuner": {"name": "GenSynth", "classArgs": {
            "optimize_mode": "maximize", "objective": "accuracy", "constraints": CONSTRAINTS,
            "hw_profile": str(tuner_profile), "population_size": 4, "seed": 0}},
        "trainingService": {"platform": "remote", "reuseMode": False,
                            "machineList": [worker.machine() for worker in workers]},
    }


def _failed_trials_output(jobs: list[dict], workers: list[WorkerMachine]) -> str:
    """The end of what each failed trial wrote on its worker (read before the workers are removed)."""
    found = []
    for job in jobs:
        if job["status"] == "SUCCEEDED":
            continue
        for worker in workers:
            for path in sorted(worker.home.rglob("*")):
                if path.is_file() and job["trialJobId"] in str(path) and path.stat().st_size < 10_000_000:
                    found.append(f"--- {path}\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(found)


def test_remote_trials_measure_on_a_shared_pool_and_survive_a_device_dying(
        devices: DevicePoolFixture, workers: list[WorkerMachine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "tuner-cache"))  # the tuner's (root's) cache
    tuner_profile = devices.write_profile(tmp_path / "pool-tuner.yml", pool=POOL, **TIMING)
    worker_profile = _worker_profile(devices, workers, workers[0].server.root.parent)
    config = _config(tuner_profile, worker_profile, workers, tmp_path)

    with Experiment(config, tmp_path) as exp:
        # kill device 1 while a trial on a worker is measuring on it
        deadline = time.monotonic() + 420
        while not _trial_measuring_on(devices.servers[1], workers):
            assert time.monotonic() < deadline, f"no trial measured on device 1: {exp.log('nnimanager.log')[-3000:]}"
            assert status(exp.port)["status"] == "RUNNING", (status(exp.port), exp.log("nnimanager.log")[-3000:])
            time.sleep(0.05)
        finished_at_kill = sum(j["status"] == "SUCCEEDED" for j in rest(exp.port, "trial-jobs"))
        devices.servers[1].kill()
        killed_at = time.time()
        final = exp.wait(timeout=600)
        jobs = rest(exp.port, "trial-jobs")
        metrics = [json.loads(json.loads(j["finalMetricData"][0]["data"])) for j in jobs if j.get("finalMetricData")]
        manager_log = exp.log("nnimanager.log")
        failed_output = _failed_trials_output(jobs, workers)

    assert final["status"] == "DONE", (final, manager_log[-3000:])
    assert finished_at_kill < TRIALS, "the device was killed after the last trial: not mid-run"
    assert len(jobs) == TRIALS and all(j["status"] == "SUCCEEDED" for j in jobs), \
        ([(j["trialJobId"], j["status"]) for j in jobs], failed_output)
    assert {j["envId"] for j in jobs} == {"remote-worker1", "remote-worker2"}  # trials ran on both machines
    assert "Installed nni v3.0" in manager_log

    runs = [devices.lease_log(0), devices.lease_log(1)]
    for device, device_runs in enumerate(runs):
        assert not overlapping(device_runs), f"device {device} timed two measurements at once"
    assert all(run["start"] < killed_at for run in runs[1])  # nothing ran on the dead device afterwards
    assert any(run["start"] > killed_at for run in runs[0])  # the rest, the interrupted trial's retry included
    users = {run["holder"].split("@", 1)[0] for device_runs in runs for run in device_runs}
    assert {"root", *(worker.name for worker in workers)} <= users  # the tuner and both machines' trials

    assert len(metrics) == TRIALS
    pool_devices = {devices.device_id(0), devices.device_id(1)}
    for reported in metrics:
        assert reported["device_pool"] == "pool:test-pool" and reported["device"] in pool_devices
