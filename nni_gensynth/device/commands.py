"""The device's small commands (``vcgencmd pmic_read_adc``, ``vcgencmd get_throttled``), run by one
long-lived shell instead of a new process each time.

The runner reads a Pi 5's PMIC every 0.25 s on a thread while the model runs on another. Starting a
program from a multithreaded Python process forks that process each time: costly on a small board
(the page tables of a few hundred MB are copied for every sample), and, under qemu-user, where
vfork is a real fork, the child can wait for ever on a lock another thread held at the fork (seen
on the emulated Raspberry Pi: a measurement hung in its last PMIC reading). So ``run`` writes each
command as a line to one ``/bin/sh``, started by the first command (the energy meter's or the
thermal watch's, before the measurement starts its threads), and reads its output up to a marker;
the shell forks the command, single-threaded.
Without /bin/sh (not a POSIX device) commands run as their own processes.
"""
from __future__ import annotations

import atexit
import os
import select
import shlex
import subprocess
import threading
import time
import uuid
from typing import Optional, Sequence, Tuple

SHELL = "/bin/sh"


class CommandShell:
    """One ``/bin/sh`` that runs commands on request: ``run(argv, timeout_s) -> (exit code, output)``.

    Output is stdout and stderr together. A command that overruns its timeout ends the shell (the
    next ``run`` starts another); so does a shell that exits. Calls from several threads are
    serialised.
    """

    def __init__(self, shell: str = SHELL) -> None:
        self.shell = shell
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None

    def _started(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([self.shell], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, bufsize=0)
        return self._proc

    def run(self, argv: Sequence[str], timeout_s: float = 5.0) -> Tuple[int, str]:
        """Run ``argv`` (no shell syntax: every word is quoted); its exit code and output.
        OSError when the shell cannot be started, TimeoutError past ``timeout_s``."""
        marker = uuid.uuid4().hex
        line = " ".join(shlex.quote(word) for word in argv)
        with self._lock:
            proc = self._started()
            try:
                proc.stdin.write(f"{line} </dev/null 2>&1; printf '\\n{marker} %d\\n' \"$?\"\n".encode())
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._end()
                raise OSError(f"{self.shell} ended before running {argv[0]}") from None
            return self._read_until(proc, marker, time.monotonic() + timeout_s, argv[0])

    def _read_until(self, proc: subprocess.Popen, marker: str, deadline: float, name: str) -> Tuple[int, str]:
        data = b""
        tail = f"\n{marker} ".encode()
        fd = proc.stdout.fileno()
        while True:
            found = data.find(tail)
            if found >= 0 and data.endswith(b"\n"):
                code = data[found + len(tail):].strip()
                return int(code or -1), data[:found].decode("utf-8", "replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._end()
                raise TimeoutError(f"{name} did not finish in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._end()
                    raise OSError(f"{self.shell} ended while running {name}")
                data += chunk

    def _end(self) -> None:
        if self._proc is not None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.SubprocessError):
                pass
        self._proc = None

    def close(self) -> None:
        with self._lock:
            self._end()


_SHARED = CommandShell()
atexit.register(_SHARED.close)  # the shell would end anyway when its input closes; no warning about it


def run(argv: Sequence[str], timeout_s: float = 5.0) -> Tuple[int, str]:
    """``argv``'s exit code and output (stdout + stderr), through the shared shell where there is
    one. OSError / TimeoutError / subprocess errors when it cannot run or overruns."""
    if os.path.exists(SHELL):
        return _SHARED.run(argv, timeout_s)
    out = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    return out.returncode, out.stdout
