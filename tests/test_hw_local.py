"""The local transport's process hygiene and limits, with real processes: a runner dies with the
`gensynth profile` that started it (issue #11 item 11), is killed with its process group on a
timeout, and at most MAX_OUTPUT_BYTES of its output are read (issue #11 item 5)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import psutil
import pytest

from fakes.tiny_models import tiny_onnx
from hw_support import chatty_python, fast_request, write_profile
from nni_gensynth.hardware.limits import MAX_OUTPUT_BYTES
from nni_gensynth.hardware.profiles import WarmupPolicy
from nni_gensynth.hardware.transports.base import DeviceError
from nni_gensynth.hardware.transports.local import LocalTransport

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("models") / "mlp.onnx", width=256)


def runners(root: psutil.Process) -> List[psutil.Process]:
    """Live device runners started by ``root`` (or by anything it started)."""
    found = []
    for proc in root.children(recursive=True):
        try:
            if "nni_gensynth.device" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_9_of_gensynth_profile_leaves_no_runner(tmp_path: Path, model: Path):
    profile = write_profile(tmp_path, "long-cpu", warmup={"min_time_s": 120, "min_runs": 1})  # measures for minutes
    env = dict(os.environ, GENSYNTH_CACHE_DIR=str(tmp_path / "cache"))
    cli = subprocess.Popen([sys.executable, "-m", "nni_gensynth.cli", "profile", str(model), "--profile", str(profile),
                            "--no-cache"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not runners(psutil.Process(cli.pid)):
            assert cli.poll() is None and time.monotonic() < deadline, "the device runner never started"
            time.sleep(0.05)
        [runner] = runners(psutil.Process(cli.pid))
        time.sleep(1.0)  # the runner is past its start-up, measuring
        cli.kill()
        cli.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not gone(runner):
            assert time.monotonic() < deadline, f"runner {runner.pid} still runs after its parent was killed"
            time.sleep(0.05)
    finally:
        if cli.poll() is None:
            cli.kill()
        for leftover in runners(psutil.Process()):
            leftover.kill()


def test_a_timed_out_runner_is_killed_with_its_group(model: Path):
    request = fast_request(model, timeout_s=2.0, warmup=WarmupPolicy(min_time_s=120.0, min_runs=1))
    start = time.monotonic()
    with pytest.raises(DeviceError, match="timed out after 2 s") as info:
        LocalTransport().run(request)
    assert info.value.retryable is True and time.monotonic() - start < 20
    assert runners(psutil.Process()) == []


def test_output_past_the_limit_is_not_read(tmp_path: Path, model: Path):
    """A 'python' that prints 32 MB: the old transport read it all (and then used the JSON line
    at its end); now reading stops at MAX_OUTPUT_BYTES and the process is stopped."""
    transport = LocalTransport(python=str(chatty_python(tmp_path, megabytes=32)))
    with pytest.raises(DeviceError, match=f"more than {MAX_OUTPUT_BYTES // (1 << 20)} MB") as info:
        transport.run(fast_request(model))
    assert info.value.retryable is False
    assert not [p for p in psutil.Process().children(recursive=True) if "chatty" in " ".join(p.cmdline())]


def test_output_under_the_limit_is_read(tmp_path: Path, model: Path):
    transport = LocalTransport(python=str(chatty_python(tmp_path, megabytes=1)))
    assert transport.run(fast_request(model)) == {"ok": True}  # the answer line after 1 MB of noise
