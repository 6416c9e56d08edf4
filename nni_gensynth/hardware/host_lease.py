"""The host is a device too: trials yield their cores while a local measurement runs.

With a local profile (`host-cpu`, `host-tflite`) a candidate is timed on the same cores where
trials are training, and the training threads turn the latency into noise. A local measurement
holds the host lease (an exclusive flock on `<cache>/locks/host.lock`); a training loop calls
`yield_to_measurement()` between batches, which returns at once while no measurement runs and
otherwise waits until it ends, so the candidate is timed on idle cores. Work that cannot pause
between batches (a trial's imports and set-up) runs inside `cores_in_use()`: a measurement waits
until it ends. The cost is the measurement's few seconds of training time per measurement, in
every running trial, and a proposal delayed by a trial's start-up.

`GENSYNTH_HOST_LEASE=off` turns it off (both sides): for a host where no trial trains beside the
measurements, or to see what the lease buys (`benchmarks/measure.py --while-training`).
"""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import IO, Iterator, Optional

from .cache import cache_dir, writable_dir

LEASE_FILE = "host.lock"
LEASE_ENV = "GENSYNTH_HOST_LEASE"  # "off": measure and train without the lease
_local = threading.local()


def lease_enabled() -> bool:
    return os.environ.get(LEASE_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def lease_path() -> Path:
    """The host lease's lock file (shared by every process of this user and cache folder)."""
    return writable_dir(cache_dir() / "locks") / LEASE_FILE


@contextmanager
def _holding(mode: int) -> Iterator[None]:
    """The lease file held with flock `mode` until the block ends (closing the file releases it)."""
    with open(lease_path(), "a+") as handle:
        fcntl.flock(handle.fileno(), mode)
        yield


@contextmanager
def host_lease() -> Iterator[None]:
    """Hold the host exclusively for a local measurement (waits for trials' batches to end)."""
    with _holding(fcntl.LOCK_EX) if lease_enabled() else nullcontext():
        yield


@contextmanager
def cores_in_use() -> Iterator[None]:
    """Work that cannot pause between batches (a trial's imports and set-up): it first waits for a
    measurement that holds the host, then keeps new ones waiting until it ends (a shared flock,
    so several such stretches may run at once, but no measurement among them). A lease that
    cannot be read never stops the work. Must not enclose a measurement by this process: the
    measurement would wait for it."""
    with ExitStack() as held:
        if lease_enabled():
            try:
                held.enter_context(_holding(fcntl.LOCK_SH))
            except OSError:
                pass  # an unreadable lease: the work goes on unprotected
        yield


def _handle() -> Optional[IO]:
    """This thread's open lock file (kept open: a check is two flock calls, microseconds)."""
    handle = getattr(_local, "handle", None)
    path = lease_path()
    if handle is None or getattr(_local, "path", None) != path or handle.closed:
        try:
            handle = open(path, "a+")
        except OSError:
            return None
        _local.handle, _local.path = handle, path
    return handle


def yield_to_measurement() -> bool:
    """Wait while a local measurement holds the host; True when it had to wait. Never raises:
    a lease that cannot be read must not stop a training."""
    if not lease_enabled():
        return False
    handle = _handle()
    if handle is None:
        return False
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)  # a measurement runs: wait for its end
            waited = True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return waited
    except OSError:
        return False


__all__ = ["LEASE_ENV", "cores_in_use", "host_lease", "lease_enabled", "lease_path", "yield_to_measurement"]
