"""Helpers for the hardware tests: tiny profiles, tiny networks, requests, read-only files, and
transports that record or fail around the real local transport."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml

from nni_gensynth.hardware.profiles import EnergyConfig, RepeatPolicy, WarmupPolicy
from nni_gensynth.hardware.request import RunRequest
from nni_gensynth.hardware.transports.base import DeviceError
from nni_gensynth.hardware.transports.local import LocalTransport

FAST_TIMING = {
    "warmup": {"min_time_s": 0.05, "min_runs": 2},
    "repeat": {"min_time_s": 0.1, "min_runs": 10, "max_runs": 3000},
}


def write_profile(directory: Path, name: str, backend: str = "onnxruntime", **overrides: Any) -> Path:
    """A local profile with short timing (tests only), written to ``directory/name.yml``."""
    data: Dict[str, Any] = {"name": name, "description": "test", "backend": backend,
                            "transport": {"kind": "local"}, "threads": 1, "energy": {"source": "model"},
                            "input_shape": [1, 3, 16, 16], **FAST_TIMING}
    data.update(overrides)
    path = Path(directory) / f"{name}.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def fast_request(model: Path, backend: str = "onnxruntime", *, min_time_s: float = 0.1, min_runs: int = 10,
                 max_runs: int = 300, energy: str = "model", timeout_s: float = 60.0, **overrides: Any) -> RunRequest:
    """A short measurement of ``model`` (tests only)."""
    fields: Dict[str, Any] = dict(
        model_path=Path(model), backend=backend, threads=1, warmup=WarmupPolicy(min_time_s=0.05, min_runs=2),
        repeat=RepeatPolicy(min_time_s=min_time_s, min_runs=min_runs, max_runs=max_runs),
        energy=EnergyConfig(source=energy), timeout_s=timeout_s)
    fields.update(overrides)
    return RunRequest(**fields)


def tiny_net(channels: int = 8) -> Any:
    """A small convnet (a few hundred thousand MACs at 16x16)."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)).eval()


def chatty_python(directory: Path, megabytes: int = 32) -> Path:
    """An executable that stands in for a device's python and prints ``megabytes`` MB on stdout,
    whatever its arguments (a device that answers without end)."""
    script = Path(directory) / "chatty-python"
    script.write_text("#!/bin/sh\n"
                      f"head -c {megabytes * 1024 * 1024} /dev/zero | tr '\\000' 'x'\n"
                      "printf '\\n{\"ok\": true}\\n'\n")
    script.chmod(0o755)
    return script


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files and folders unwritable for this process, root included (chattr +i as root,
    chmod otherwise); restored afterwards."""
    as_root = os.geteuid() == 0
    if as_root and shutil.which("chattr") is None:
        import pytest

        pytest.skip("running as root without chattr: cannot make a file read-only")
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    try:
        for path in paths:
            if as_root:
                subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
            else:
                path.chmod(modes[path] & ~0o222)
        yield
    finally:
        for path in reversed(paths):
            if as_root:
                subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
            else:
                path.chmod(modes[path])


class RecordingTransport(LocalTransport):
    """The real local transport, recording each request and when it ran."""

    def __init__(self, profile: Any = None, runtime: Optional[str] = None, python: Optional[str] = None) -> None:
        super().__init__(profile, python=python)
        self.calls: List[RunRequest] = []
        self.intervals: List[tuple] = []
        self._runtime = runtime
        self._lock = threading.Lock()

    def runtime_version(self, backend: str) -> Optional[str]:
        return self._runtime if self._runtime is not None else super().runtime_version(backend)

    def run(self, request: RunRequest) -> Dict[str, Any]:
        with self._lock:
            self.calls.append(request)
        start = time.monotonic()
        try:
            return super().run(request)
        finally:
            with self._lock:
                self.intervals.append((start, time.monotonic()))


class FlakyTransport(RecordingTransport):
    """Fails the first ``failures`` calls with a DeviceError, then runs the real runner."""

    def __init__(self, profile: Any = None, failures: int = 1, retryable: bool = True) -> None:
        super().__init__(profile)
        self.failures = failures
        self.retryable = retryable

    def run(self, request: RunRequest) -> Dict[str, Any]:
        if self.failures > 0:
            self.failures -= 1
            with self._lock:
                self.calls.append(request)
            raise DeviceError("device disconnected mid-measurement (simulated)", retryable=self.retryable)
        return super().run(request)


class AnsweringTransport(LocalTransport):
    """A device that gives ``answer`` (real runner answer fields, then ``changes``) to every request."""

    def __init__(self, profile: Any = None, **changes: Any) -> None:
        super().__init__(profile)
        self.changes = changes
        self.calls = 0

    def run(self, request: RunRequest) -> Dict[str, Any]:
        self.calls += 1
        from nni_gensynth.device.system import installed_runtime

        answer: Dict[str, Any] = {"ok": True, "backend": request.backend, "threads": 1,
                                  "runtime": installed_runtime(request.backend) or "unknown",
                                  "samples_ms": [1.0, 1.1, 0.9], "peak_mem_mb": 2.0,
                                  "energy": {"energy_mj": 0.5, "source": "model"}, "thermal": {}, "device": {}}
        answer.update(self.changes)
        return answer
