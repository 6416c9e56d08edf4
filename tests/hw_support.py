"""Helpers for the hardware tests: tiny profiles, tiny networks, and transports that record or
fail around the real local transport."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

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


def tiny_net(channels: int = 8) -> Any:
    """A small convnet (a few hundred thousand MACs at 16x16)."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)).eval()


class RecordingTransport(LocalTransport):
    """The real local transport, counting calls and recording when each ran."""

    def __init__(self, profile: Any = None, runtime: Optional[str] = None) -> None:
        super().__init__(profile)
        self.calls: List[List[str]] = []
        self.intervals: List[tuple] = []
        self._runtime = runtime
        self._lock = threading.Lock()

    def runtime_version(self, backend: str) -> Optional[str]:
        return self._runtime if self._runtime is not None else super().runtime_version(backend)

    def run_device_runner(self, model_path: Path, args: List[str]) -> Dict[str, Any]:
        with self._lock:
            self.calls.append(list(args))
        start = time.monotonic()
        try:
            return super().run_device_runner(model_path, args)
        finally:
            with self._lock:
                self.intervals.append((start, time.monotonic()))


class FlakyTransport(RecordingTransport):
    """Fails the first ``failures`` calls with a DeviceError, then runs the real runner."""

    def __init__(self, profile: Any = None, failures: int = 1, retryable: bool = True) -> None:
        super().__init__(profile)
        self.failures = failures
        self.retryable = retryable

    def run_device_runner(self, model_path: Path, args: List[str]) -> Dict[str, Any]:
        if self.failures > 0:
            self.failures -= 1
            with self._lock:
                self.calls.append(list(args))
            raise DeviceError("device disconnected mid-measurement (simulated)", retryable=self.retryable)
        return super().run_device_runner(model_path, args)
