"""The device's side of a lease: the runner that holds a device's lease ends with its holder, and
logs when it ran.

The lease itself is an ``flock`` on ``WORKDIR/lease.lock``, taken by the shell that starts the
runner (``exec 9>>lease.lock && flock -n 9``) and inherited by the runner as fd 9: it is held
exactly as long as the runner process lives, and the kernel drops it when that process ends,
however it ends. This module makes sure the runner does not outlive the measurement it serves:

- ``--exit-on-stdin-eof``: the host keeps the command's stdin open while it waits for the
  answer; EOF on stdin means the host went away (killed, or its connection closed), so the
  runner exits at once and the lease is free for the next holder;
- ``--lease-deadline-s``: the runner exits after that many seconds in any case (a host that
  vanished without closing its connection, e.g. lost power).

Every leased run appends one JSON line to ``--lease-log`` (WORKDIR/lease.log): holder, pid, its
wall-clock start and end (``time.time()`` on the device) and how it ended. Those lines are the
device's own record of who used it when; runs of one device never overlap.

Standard library only: it runs on the device.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

LOCK_FILE = "lease.lock"
LOG_FILE = "lease.log"
BUSY_EXIT = 75      # EX_TEMPFAIL: the device is leased by someone else; try another one
ABANDONED_EXIT = 70  # the holder went away or the deadline passed: the run was stopped
MAX_LOG_BYTES = 1 << 20  # the log is moved to lease.log.1 past this size


def append_log(path: str, record: Dict[str, Any]) -> None:
    """Append ``record`` as one JSON line (one write of an O_APPEND file: lines of concurrent
    writers never interleave). Rotates a full log; never raises (a log must not fail a run)."""
    try:
        if os.path.getsize(path) > MAX_LOG_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except (OSError, TypeError, ValueError):
        pass


class LeasedRun:
    """One run under a lease: its log record, and the watchdogs that end it with its holder."""

    def __init__(self, log_path: Optional[str], holder: str, started: float) -> None:
        self.log_path = log_path
        self.holder = holder
        self.started = started
        self._logged = threading.Lock()
        self._done = False

    def finish(self, outcome: str, **extra: Any) -> float:
        """Log the run once (the first caller wins: the run's end or a watchdog); the end time."""
        ended = time.time()
        with self._logged:
            if self._done:
                return ended
            self._done = True
        if self.log_path:
            append_log(self.log_path, {"holder": self.holder, "pid": os.getpid(), "start": self.started,
                                       "end": ended, "outcome": outcome, **extra})
        return ended

    def watch(self, stdin_eof: bool, deadline_s: Optional[float],
              exit_now: Callable[[int], None] = os._exit) -> None:
        """Start the watchdogs (daemon threads): end the process when stdin reaches EOF (with
        ``stdin_eof``) or after ``deadline_s`` seconds."""
        def stop(reason: str) -> None:
            self.finish(reason)
            try:
                sys.stdout.write("\n" + json.dumps({"ok": False, "error": f"run stopped: {reason}"}) + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            exit_now(ABANDONED_EXIT)

        if stdin_eof:
            def read_stdin() -> None:
                try:
                    while os.read(sys.stdin.fileno(), 4096):
                        pass
                except (OSError, ValueError):
                    pass
                stop("the host went away (stdin closed)")

            threading.Thread(target=read_stdin, name="lease-stdin-watch", daemon=True).start()
        if deadline_s is not None and deadline_s > 0:
            timer = threading.Timer(deadline_s, stop, args=(f"lease deadline of {deadline_s:g} s passed",))
            timer.daemon = True
            timer.start()


__all__ = ["ABANDONED_EXIT", "BUSY_EXIT", "LOCK_FILE", "LOG_FILE", "LeasedRun", "append_log"]
