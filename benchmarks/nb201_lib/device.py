"""The 'device': Raspberry Pi 4 latency looked up in the NAS-Bench-201 table, every call counted.

`lookup_latency` is the profiler handed to tuners as
`profiler="benchmarks.nb201_lib.device:lookup_latency"` and called as `fn(parameters) -> {"latency_ms": ms}`.

Counting must be exact even if a tuner profiles from other threads or child processes, so within
`counting()` every call appends one byte to a per-run file (O_APPEND writes are atomic) and the
count is the file's size. Outside `counting()` calls go to a process-local counter.
"""
from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping

from .data import load_table

COUNTER_ENV = "NB201_PROFILER_COUNTER"

_local_lock = threading.Lock()
_local_calls = 0


def lookup_latency(parameters: Mapping[str, object]) -> dict[str, float]:
    """Measured Pi 4 latency of the cell `parameters` ({e10: op, ..., e32: op}), in ms."""
    cell = load_table().lookup(parameters)  # validates before counting: a bad call measures nothing
    _count_one()
    return {"latency_ms": cell.latency_ms}


def _count_one() -> None:
    global _local_calls
    path = os.environ.get(COUNTER_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
        finally:
            os.close(fd)
    else:
        with _local_lock:
            _local_calls += 1


class CallCounter:
    """Profiler calls recorded in one file since it was created or last reset."""

    def __init__(self, path: str):
        self.path = path

    def reset(self) -> None:
        open(self.path, "wb").close()

    def count(self) -> int:
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0


@contextmanager
def counting(directory: str | None = None) -> Iterator[CallCounter]:
    """Count every `lookup_latency` call made (by this process or its children) inside the block."""
    fd, path = tempfile.mkstemp(prefix="nb201-profiler-calls-", dir=directory)
    os.close(fd)
    previous = os.environ.get(COUNTER_ENV)
    os.environ[COUNTER_ENV] = path
    try:
        yield CallCounter(path)
    finally:
        if previous is None:
            os.environ.pop(COUNTER_ENV, None)
        else:
            os.environ[COUNTER_ENV] = previous
        os.unlink(path)


def local_calls() -> int:
    """Calls made in this process outside `counting()`."""
    return _local_calls
