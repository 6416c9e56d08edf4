"""Device pools over real SSH "devices" on 127.0.0.1 (tests/fixtures_pool.py): the lease held on
the device keeps every device to one measurement at a time across processes, expires with a
killed holder, and a device that drops leaves the rotation and is probed back."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes.tiny_models import tiny_onnx
from fixtures_pool import DevicePoolFixture, device_pool, overlapping
from nni_gensynth.hardware import measure
from nni_gensynth.hardware.cache import MeasurementCache
from nni_gensynth.hardware.pool import DevicePool, pool_id
from nni_gensynth.hardware.pool_state import PoolState
from nni_gensynth.hardware.profiles import profile_from_dict

FIXTURE_SCRIPT = Path(__file__).with_name("fixtures_pool.py")


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GENSYNTH_CACHE_DIR", str(tmp_path / "cache"))
    yield from device_pool(tmp_path, 2)


def _models(folder: Path, count: int, seed: int) -> list:
    rng = random.Random(seed)
    folder.mkdir(exist_ok=True)
    return [tiny_onnx(folder / f"m{seed}-{i}.onnx", width=rng.choice([128, 256, 512]), seed=seed * 100 + i)
            for i in range(count)]


def _start_measuring(profile: Path, models: list, tmp_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, str(FIXTURE_SCRIPT), str(profile), *map(str, models)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


def _wait_until(condition, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout_s, f"{what} did not happen within {timeout_s} s"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_pool_measurement_names_its_device_and_caches_by_the_pool(pool: DevicePoolFixture, tmp_path: Path):
    profile = profile_from_dict(pool.profile())
    model = _models(tmp_path / "models", 1, seed=0)[0]
    cache = MeasurementCache(tmp_path / "cache.sqlite")
    first = measure(model, profile, cache=cache)
    assert first.spec.device_id == pool_id(profile) == "pool:test-pool"
    assert first.measured_on in (pool.device_id(0), pool.device_id(1))
    metrics = first.metrics()
    assert metrics["device"] == first.measured_on and metrics["device_pool"] == "pool:test-pool"
    [run] = pool.lease_log(0) + pool.lease_log(1)
    assert run["outcome"] == "ok" and run["holder"].endswith(f":{os.getpid()}") and run["end"] > run["start"]

    # any device of the pool serves the hit; a pool with other addresses but the same name too
    moved = pool.profile()
    moved["transport"]["devices"] = list(reversed(moved["transport"]["devices"]))
    hit = measure(model, profile_from_dict(moved), cache=cache)
    assert hit.from_cache and hit.measured_on == first.measured_on
    assert len(pool.lease_log(0) + pool.lease_log(1)) == 1


def test_lease_exclusivity_under_concurrent_processes(pool: DevicePoolFixture, tmp_path: Path):
    """Property: whatever the number of measuring processes and the lengths of their measurements,
    the runs each device logged never overlap, and every measurement is made once and named."""
    rng = random.Random(14)
    profile = pool.write_profile(tmp_path / "pool.yml")
    processes, expected = [], 0
    for p in range(rng.randint(3, 5)):
        models = _models(tmp_path / "models", rng.randint(2, 4), seed=p)
        expected += len(models)
        processes.append(_start_measuring(profile, models, tmp_path))
    answers = []
    for proc in processes:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        answers += [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    runs = [pool.lease_log(0), pool.lease_log(1)]
    assert len(answers) == expected == len(runs[0]) + len(runs[1])
    for device, device_runs in enumerate(runs):
        assert not overlapping(device_runs), f"device {device} ran two measurements at once"
        assert all(run["outcome"] == "ok" for run in device_runs)
    assert runs[0] and runs[1], "the pool spread the work over both devices"
    by_device = {pool.device_id(0): 0, pool.device_id(1): 0}
    for answer in answers:
        by_device[answer["device"]] += 1
    assert [by_device[pool.device_id(i)] for i in (0, 1)] == [len(runs[0]), len(runs[1])]
    holders = {run["holder"].rsplit(":", 1)[1] for device_runs in runs for run in device_runs}
    assert holders == {str(proc.pid) for proc in processes}


def test_lease_of_a_killed_holder_is_free_again_within_the_timeout(pool: DevicePoolFixture, tmp_path: Path):
    """kill -9 the measuring process mid-run: the device notices (its stdin closes), stops the
    runner and the lease is free in seconds, not after the 60 s timeout or the 30 s run."""
    profile = pool.write_profile(tmp_path / "pool.yml", repeat={"min_time_s": 30.0, "min_runs": 10,
                                                                 "max_runs": 200_000})
    proc = _start_measuring(profile, _models(tmp_path / "models", 1, seed=7), tmp_path)
    try:
        _wait_until(lambda: not pool.lease_is_free(0) or not pool.lease_is_free(1), 30, "the lease being taken")
        held = 0 if not pool.lease_is_free(0) else 1
        [runner] = pool.servers[held].device_runners()
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        freed_after = _wait_until(lambda: pool.lease_is_free(held), 20, "the lease being released")
    finally:
        proc.kill()
        proc.wait()
    assert freed_after < 10
    _wait_until(lambda: not runner.is_running() or runner.status() == "zombie", 5, "the runner stopping")
    [run] = pool.lease_log(held)
    assert run["outcome"].startswith("the host went away")

    # and the device measures for the next holder at once
    profile_fast = profile_from_dict(pool.profile())
    result = measure(_models(tmp_path / "models", 1, seed=8)[0], profile_fast, use_cache=False)
    assert result.measured_on in (pool.device_id(0), pool.device_id(1))


def test_a_device_that_drops_leaves_the_rotation_and_is_probed_back(pool: DevicePoolFixture, tmp_path: Path):
    profile = profile_from_dict(pool.profile(pool={"probe_interval_s": 2.0}))
    models = _models(tmp_path / "models", 4, seed=3)
    state = PoolState(pool_id(profile))
    pool.servers[1].kill()  # device 1 loses power

    measured = [measure(m, profile, use_cache=False).measured_on for m in models[:3]]
    assert measured == [pool.device_id(0)] * 3
    offline = state.offline()
    assert list(offline) == [pool.device_id(1)] and "connect" in offline[pool.device_id(1)].error

    # out of rotation: the next measurements do not even try it until its probe is due
    started = time.monotonic()
    assert measure(models[3], profile, use_cache=False).measured_on == pool.device_id(0)
    assert list(state.offline()) == [pool.device_id(1)]

    pool.servers[1].start()  # back on the network
    time.sleep(max(0.0, 2.0 - (time.monotonic() - started)) + 0.2)
    back = DevicePool(profile)
    try:
        from nni_gensynth.hardware.request import RunRequest

        answer, device = back.run_on_any(RunRequest.for_profile(profile, models[0]))
    finally:
        back.close()
    assert device == pool.device_id(1) and answer["ok"] is True  # the due probe goes first, and answers
    assert state.offline() == {}


def test_a_device_dropping_mid_measurement_retries_on_another(pool: DevicePoolFixture, tmp_path: Path):
    profile = profile_from_dict(pool.profile(repeat={"min_time_s": 20.0, "min_runs": 10, "max_runs": 200_000}))
    model = _models(tmp_path / "models", 1, seed=11)[0]
    outcome: dict = {}

    import threading

    def run() -> None:
        try:
            outcome["result"] = measure(model, profile, use_cache=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    _wait_until(lambda: any(s.device_runners() for s in pool.servers), 30, "a runner starting")
    first = 0 if pool.servers[0].device_runners() else 1
    pool.servers[first].kill()
    thread.join(timeout=120)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert outcome["result"].measured_on == pool.device_id(1 - first)
    assert list(PoolState(pool_id(profile)).offline()) == [pool.device_id(first)]
