"""The host is a device too: trials yield their cores while a local measurement runs.

With a local profile (`host-cpu`, `host-tflite`) a candidate is timed on the same cores where
trials are training, and the training threads turn the latency into noise. Two flocks in
`<cache>/locks/`, shared by every process of this user, keep them apart:

- `host.gate`: a measurement holds it exclusively from the moment it wants the host until it ends;
  work that is about to use the cores passes through it first (a shared lock, taken and dropped),
  so no batch starts while a measurement waits or runs;
- `host.busy`: work that uses the cores holds it shared while it runs (a training batch, a trial's
  imports and set-up), and a measurement takes it exclusively after the gate, so it starts only
  once the batches already running have ended. Without this second lock a measurement's first
  samples would share the cores with the batch in flight (a MobileNetV2 batch lasts longer than
  a profile's warm-up).

A training loop runs inside `batches_on_host()` and calls its `next_batch()` before each batch;
set-up that cannot pause runs inside `cores_in_use()`. The cost is the measurement's few seconds
of training time per measurement, in every running trial, plus the end of a batch in flight
before each measurement starts.

`GENSYNTH_HOST_LEASE=off` turns it off (both sides): for a host where no trial trains beside the
measurements, or to see what the lease buys (`benchmarks/measure.py --while-training`).
"""
from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from .cache import cache_dir, writable_dir

GATE_FILE = "host.gate"
BUSY_FILE = "host.busy"
LEASE_ENV = "GENSYNTH_HOST_LEASE"  # "off": measure and train without the lease
_local = threading.local()  # this thread's open batch holds (released when it measures)


def lease_enabled() -> bool:
    return os.environ.get(LEASE_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def lease_path(name: str = GATE_FILE) -> Path:
    """One of the host lease's lock files (shared by every process of this user and cache folder)."""
    return writable_dir(cache_dir() / "locks") / name


def _open(name: str) -> Optional[IO]:
    try:
        return open(lease_path(name), "a+")
    except OSError:
        return None


@contextmanager
def host_lease() -> Iterator[None]:
    """Hold the host exclusively for a local measurement: no new batch starts from the moment it
    asks, and it begins once the batches in flight have ended. Batches this thread itself holds
    are let go first (else it would wait for itself)."""
    if not lease_enabled():
        yield
        return
    _release_this_threads_holds()
    with open(lease_path(GATE_FILE), "a+") as gate, open(lease_path(BUSY_FILE), "a+") as busy:
        fcntl.flock(gate.fileno(), fcntl.LOCK_EX)
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX)
        yield  # closing the files releases both


class _BatchHold:
    """The shared side of `host.busy`, held by a training loop during each batch."""

    def __init__(self) -> None:
        self._gate = _open(GATE_FILE)
        self._busy = _open(BUSY_FILE)
        self._held = False

    def next_batch(self) -> bool:
        """End the previous batch's hold, wait while a measurement wants or holds the host, and
        hold the cores for the next batch; True when it had to wait. Never raises: a lease that
        cannot be read must not stop a training."""
        _release_this_threads_holds()  # an enclosing loop's too: held while waiting at the gate, it would keep the measurement waiting
        if self._gate is None or self._busy is None:
            return False
        try:
            waited = not _try_shared(self._gate)
            if waited:
                fcntl.flock(self._gate.fileno(), fcntl.LOCK_SH)  # a measurement: wait for its end
            fcntl.flock(self._gate.fileno(), fcntl.LOCK_UN)
            if not _try_shared(self._busy):  # one took the host after the gate: wait for it
                fcntl.flock(self._busy.fileno(), fcntl.LOCK_SH)
                waited = True
            self._held = True
            return waited
        except OSError:
            return False

    def release(self) -> None:
        if self._held and self._busy is not None:
            self._held = False
            try:
                fcntl.flock(self._busy.fileno(), fcntl.LOCK_UN)
            except OSError:
                pass

    def close(self) -> None:
        self.release()
        for handle in (self._gate, self._busy):
            if handle is not None:
                handle.close()


def _holds() -> list[_BatchHold]:
    """This thread's open batch holds (a measurement or a nested loop lets them go first)."""
    holds = getattr(_local, "holds", None)
    if holds is None:
        holds = _local.holds = []
    return holds


def _release_this_threads_holds() -> None:
    """Let go of every batch hold of this thread (before it measures or waits at the gate)."""
    for hold in _holds():
        hold.release()


def _try_shared(handle: IO) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def batches_on_host() -> Iterator[Callable[[], bool]]:
    """A loop of batches that yields the host to local measurements: call the returned
    `next_batch()` before each batch (True when it waited for a measurement). The cores count as
    in use from one call to the next and until the loop's block ends."""
    if not lease_enabled():
        yield lambda: False
        return
    hold = _BatchHold()
    _holds().append(hold)
    try:
        yield hold.next_batch
    finally:
        _holds().remove(hold)
        hold.close()


@contextmanager
def cores_in_use() -> Iterator[None]:
    """Work that cannot pause between batches (a trial's imports and set-up): it first waits for a
    measurement that wants or holds the host, then keeps new ones waiting until it ends (several
    such stretches may run at once, but no measurement among them). A lease that cannot be read
    never stops the work. A measurement by this same thread inside it lets it go first (the rest
    of the block then runs unprotected); one by another thread of this process waits for its end."""
    with batches_on_host() as next_batch:
        next_batch()
        yield


__all__ = ["LEASE_ENV", "batches_on_host", "cores_in_use", "host_lease", "lease_enabled", "lease_path"]
