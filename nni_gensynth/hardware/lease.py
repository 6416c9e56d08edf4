"""The host's side of a device lease: one measurement at a time on a device, whichever host asks.

A lease is an ``flock`` held ON THE DEVICE, on ``WORKDIR/lease.lock``, so the tuner and trials on
other machines see the same lock. A leased run's remote command is

    exec 9>>WORKDIR/lease.lock && flock -n 9 (busy: print {"busy": true}, exit 75) &&
    cd RUNNER_DIR && exec PYTHON -m nni_gensynth.device measure ... --lease-log WORKDIR/lease.log
                                   --lease-holder HOST:PID --lease-deadline-s TIMEOUT --exit-on-stdin-eof

The shell takes the lock without waiting and ``exec``s the runner, which inherits it as fd 9: the
lease lives exactly as long as the runner process, and the kernel releases it when that process
ends, however it ends. The runner ends with its holder (EOF on the stdin the host keeps open: a
killed host process, a closed connection) and after TIMEOUT seconds in any case
(``nni_gensynth.device.lease``); ``flock`` is util-linux's on Linux boards and toybox's on Android
(both take an fd). A busy device answers at once (exit 75), so a pool moves on to its next device
instead of queueing behind one.
"""
from __future__ import annotations

import getpass
import json
import os
import posixpath
import shlex
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, List

from ..device.lease import BUSY_EXIT, LOCK_FILE, LOG_FILE
from .transports.base import DeviceError

if TYPE_CHECKING:
    from .request import RunRequest

_BUSY_ANSWER = json.dumps({"ok": False, "busy": True, "error": "device busy: leased by another measurement"})
_NO_FLOCK_ANSWER = json.dumps({"ok": False, "error": "the device cannot hold a lease: flock failed or is missing "
                                                     "(install util-linux; Android's toybox has it)"})


@dataclass(frozen=True)
class LeaseSpec:
    """Take the device's lease for this run; ``holder`` names who holds it in the device's log."""

    holder: str

    @classmethod
    def here(cls) -> "LeaseSpec":
        """A lease held by this process: ``user@hostname:pid``."""
        return cls(f"{getpass.getuser()}@{socket.gethostname()}:{os.getpid()}")


class DeviceBusy(DeviceError):
    """The device is leased by another measurement: not a failure, try another device."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} is busy (leased by another measurement)", retryable=True)


def leased_shell(workdir: str, command: str) -> str:
    """``command`` (a shell command that ends by exec'ing the runner) run under the device's
    lease, or the busy answer (exit 75) when another run holds it."""
    lock = shlex.quote(posixpath.join(workdir, LOCK_FILE))
    return (f"exec 9>>{lock} && {{ flock -n 9; s=$?; if [ $s = 0 ]; then {command}; "
            f"elif [ $s = 1 ]; then printf '\\n%s\\n' {shlex.quote(_BUSY_ANSWER)}; exit {BUSY_EXIT}; "
            f"else printf '\\n%s\\n' {shlex.quote(_NO_FLOCK_ANSWER)}; exit 1; fi; }}")


def lease_options(request: "RunRequest", workdir: str, watch_stdin: bool) -> List[str]:
    """The runner options of a leased run: its log, holder, deadline and stdin watch."""
    if request.lease is None:
        return []
    options = ["--lease-log", posixpath.join(workdir, LOG_FILE), "--lease-holder", request.lease.holder,
               "--lease-deadline-s", repr(float(request.timeout_s))]
    return options + (["--exit-on-stdin-eof"] if watch_stdin else [])


def leased_runner_command(workdir: str, runner_dir: str, python: str, argv: List[str],
                          request: "RunRequest", watch_stdin: bool = True) -> str:
    """The remote shell command of a leased device-runner run (see the module docstring)."""
    words = argv + lease_options(request, workdir, watch_stdin)
    command = (f"cd {shlex.quote(runner_dir)} && exec {shlex.quote(python)} -m nni_gensynth.device "
               + " ".join(shlex.quote(word) for word in words))
    return leased_shell(workdir, command)


def raise_if_busy(stdout: str, exit_code: int, where: str) -> None:
    """DeviceBusy when a leased command found the device leased by another run."""
    if exit_code == BUSY_EXIT and '"busy": true' in stdout[-512:]:
        raise DeviceBusy(where)


__all__ = ["BUSY_EXIT", "DeviceBusy", "LeaseSpec", "lease_options", "leased_runner_command", "leased_shell",
           "raise_if_busy"]
