"""Local transport: the device runner in a subprocess of this Python (the host is the device).

The runner runs in its own session (process group), is told this process's pid so that it dies
with it (``device.system.exit_with_parent``: a ``kill -9`` of ``gensynth profile`` leaves no
runner loading the CPU), and is killed with its group on a timeout, on too much output or when
the caller is interrupted. At most ``MAX_OUTPUT_BYTES`` of its output are read.
"""
from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import nni_gensynth
from nni_gensynth.device.protocol import PARENT_PID_ENV

from ..answer import read_answer, too_much_output
from ..limits import MAX_OUTPUT_BYTES
from ..request import RunRequest, runner_argv
from .base import DeviceError

# The runner must import the same nni_gensynth as this process, wherever the caller's cwd is.
_PACKAGE_PARENT = str(Path(nni_gensynth.__file__).resolve().parents[1])
_CHUNK = 1 << 16


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the runner's process group (it leads its own session), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    proc.wait()


def _communicate(proc: subprocess.Popen, timeout_s: float, where: str) -> Tuple[bytes, bytes, int]:
    """(stdout, stderr, exit code) of ``proc``, reading at most MAX_OUTPUT_BYTES of both together
    within ``timeout_s``; the runner's group is killed on any way out but a normal exit."""
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    total = 0
    deadline = time.monotonic() + timeout_s
    try:
        with selectors.DefaultSelector() as selector:
            for stream in buffers:
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeviceError(f"device runner on {where} timed out after {timeout_s:g} s", retryable=True)
                for key, _ in selector.select(min(remaining, 1.0)):
                    data = os.read(key.fd, _CHUNK)
                    if not data:
                        selector.unregister(key.fileobj)
                        continue
                    total += len(data)
                    if total > MAX_OUTPUT_BYTES:
                        raise too_much_output(where)
                    buffers[key.fileobj] += data
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            raise DeviceError(f"device runner on {where} timed out after {timeout_s:g} s", retryable=True) from None
    finally:
        _kill_group(proc)
        for stream in buffers:
            stream.close()
    return bytes(buffers[proc.stdout]), bytes(buffers[proc.stderr]), code


class LocalTransport:
    """Runs ``python -m nni_gensynth.device`` on this machine (``python``: this interpreter)."""

    def __init__(self, profile: Any = None, python: Optional[str] = None) -> None:
        self.python = python or sys.executable

    def run(self, request: RunRequest) -> Dict[str, Any]:
        argv = [self.python, "-m", "nni_gensynth.device"] + runner_argv(request, str(request.model_path.resolve()))
        env = dict(os.environ)
        env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env[PARENT_PID_ENV] = str(os.getpid())
        where = self.device_id()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, start_new_session=True)
        except OSError as exc:
            raise DeviceError(f"cannot start the device runner with {self.python}: {exc}") from None
        stdout, stderr, code = _communicate(proc, request.timeout_s, where)
        return read_answer(stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"), code, where)

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
