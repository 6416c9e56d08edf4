"""Local transport: the device runner in a subprocess of this Python (the host is the device)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import nni_gensynth

from .base import DeviceError
from .remote import last_json_object, tail

# The runner must import the same nni_gensynth as this process, wherever the caller's cwd is.
_PACKAGE_PARENT = str(Path(nni_gensynth.__file__).resolve().parents[1])


def parse_runner_output(stdout: str, stderr: str, returncode: int, where: str) -> Dict[str, Any]:
    """The runner's JSON answer from its output; DeviceError when it failed or said nothing."""
    answer = last_json_object(stdout)
    if answer is None:
        raise DeviceError(f"device runner on {where} exited {returncode} without a JSON answer: {tail(stderr)}",
                          retryable=returncode < 0)  # killed by a signal: worth another try
    if not answer.get("ok"):
        raise DeviceError(f"device runner on {where} failed: {answer.get('error', 'no error message')}")
    return answer


class LocalTransport:
    """Runs ``sys.executable -m nni_gensynth.device`` on this machine."""

    def __init__(self, profile: Any = None, python: Optional[str] = None, timeout_s: Optional[float] = None) -> None:
        self.python = python or sys.executable
        transport = getattr(profile, "transport", None)
        self.timeout_s = timeout_s or getattr(transport, "timeout_s", 600.0)

    def run_device_runner(self, model_path: Path, args: List[str]) -> Dict[str, Any]:
        args = [str(a) for a in args]
        if not args or args[0].startswith("-"):
            args = ["measure", "--model", str(Path(model_path).resolve())] + args
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            done = subprocess.run([self.python, "-m", "nni_gensynth.device"] + args, capture_output=True,
                                  text=True, timeout=self.timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"device runner on {self.device_id()} timed out after {self.timeout_s:.0f} s",
                              retryable=True) from None
        except OSError as exc:
            raise DeviceError(f"cannot start the device runner with {self.python}: {exc}") from None
        return parse_runner_output(done.stdout, done.stderr, done.returncode, self.device_id())

    def runtime_version(self, backend: str) -> Optional[str]:
        """The runtime the local runner will report (same Python, same packages)."""
        if self.python != sys.executable:
            return None
        from nni_gensynth.device.system import installed_runtime

        return installed_runtime(backend)

    def device_id(self) -> str:
        return f"local:{socket.gethostname()}"

    def close(self) -> None:
        """Nothing to release."""
