"""A pool of identical devices: each measurement runs on one free device, under its lease.

A pooled profile (``transport.devices``, or a ``pool`` section) names several devices of one kind.
``DevicePool.run`` takes the lease of one free device (``lease.py``: an flock held on the device
itself, so processes on other hosts share it) and measures there:

- devices are tried in rotation, from a different device in each process, without waiting on a
  busy one: a busy device answers at once and the next is tried;
- when every device is busy the pool waits, polling with a jittered backoff capped at
  ``MAX_BACKOFF_S`` (no waiter waits on one device while another frees up), up to
  ``pool.lease_wait_s``;
- a device that drops (refused connection, lost mid-run, refused host key) is taken out of
  rotation for every process of this host (``pool_state.py``) and the measurement goes on on
  another device; after ``pool.probe_interval_s`` the device is tried again first (a probe) and
  rejoins the rotation when it answers;
- a measurement fails when every device failed in it, or after ``retries + 1`` failures.

The pool is itself a transport (``device_id()`` is the pool's id, the cache's identity), so
``measure`` treats it as one device; ``settle`` then says which device measured, records its
median for the drift check (``drift.py``) and, for one fresh measurement in
``pool.cross_check_every``, measures the same network on another device to compare them.
"""
from __future__ import annotations

import itertools
import os
import random
import sys
import time
import warnings
from dataclasses import replace
from typing import Any, Callable, Collection, Dict, List, Optional, Tuple

from ..device import stats
from .answer import validate_answer
from .drift import DriftLog
from .lease import DeviceBusy, LeaseSpec
from .measurement import Measurement
from .pool_state import OfflineMark, PoolState
from .profiles import HardwareProfile, PoolConfig, TransportConfig
from .request import RunRequest
from .transports import DeviceError, Transport, make_device_transport

FIRST_BACKOFF_S = 0.05
_POOLS_MADE = itertools.count()
MAX_BACKOFF_S = 1.0


def pool_id(profile: HardwareProfile) -> str:
    """The pool's identity, the device kind its measurements are cached under: ``pool:NAME`` (no
    "//", like the transports' ids: NNI 3.0 cannot carry it in a result)."""
    name = profile.pool.name if profile.pool is not None and profile.pool.name else profile.name
    return f"pool:{name}"


def pool_devices(profile: HardwareProfile) -> Tuple[TransportConfig, ...]:
    """The devices of a pooled profile (a pool of one when only the transport's own address is set)."""
    return profile.transport.devices or (profile.transport,)


def _takes_device_out(exc: DeviceError) -> bool:
    """A failure of the device rather than of the measurement: a dropped or refused connection,
    or a host key that does not match (that device needs its owner; the others can measure)."""
    if exc.retryable:
        return True
    ssh = sys.modules.get("nni_gensynth.hardware.transports.ssh")
    return ssh is not None and isinstance(exc, ssh.HostKeyError)


class DevicePool:
    """The devices of ``profile`` (pooled), one transport each, and the rotation over them.

    ``retries``: device failures one measurement survives; ``make`` builds a device's transport
    from its settings; ``state`` holds the offline marks (default: this host's, in the cache
    folder); ``drift_log`` the medians per device (default: the cache folder's); ``sleep`` waits.
    """

    def __init__(self, profile: HardwareProfile, *, retries: int = 2,
                 make: Callable[[TransportConfig], Transport] = make_device_transport,
                 state: Optional[PoolState] = None, drift_log: Optional[DriftLog] = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.profile = profile
        self.retries = retries
        self.last_device: Optional[str] = None
        self._drift_log = drift_log
        self.settings: PoolConfig = profile.pool or PoolConfig()
        self.id = pool_id(profile)
        self.state = state if state is not None else PoolState(self.id)
        self._sleep = sleep
        self._transports: Dict[str, Transport] = {}
        for config in pool_devices(profile):
            transport = make(config)
            self._transports[transport.device_id()] = transport
        self.devices: Tuple[str, ...] = tuple(self._transports)
        # processes start their rotation on different devices, and each pool of a process on the next one
        self._next = (os.getpid() + next(_POOLS_MADE)) % len(self.devices)

    def device_id(self) -> str:
        """The pool's id (``pool:NAME``): the identity its measurements are cached under."""
        return self.id

    def run(self, request: RunRequest) -> Any:
        """The answer to ``request`` from one free device (``last_device`` says which)."""
        answer, self.last_device = self.run_on_any(request)
        return answer

    def run_on_any(self, request: RunRequest, exclude: Collection[str] = ()) -> Tuple[Any, str]:
        """The answer to ``request`` from one free device (not in ``exclude``), and that device's
        id. DeviceError when no device could measure it (see the module docstring)."""
        retries = self.retries
        leased = replace(request, lease=LeaseSpec.here())
        deadline = time.monotonic() + self.settings.lease_wait_s
        failed: Dict[str, DeviceError] = {}
        backoff = FIRST_BACKOFF_S
        while True:
            offline = self.state.offline()
            busy: List[str] = []
            for device in self._candidates(offline, set(exclude) | set(failed)):
                try:
                    answer = self._transports[device].run(leased)
                except DeviceBusy:
                    busy.append(device)
                    continue
                except DeviceError as exc:
                    if not _takes_device_out(exc):
                        raise
                    self.state.mark_offline(device, str(exc), self.settings.probe_interval_s)
                    failed[device] = exc
                    if len(failed) > retries or not set(self.devices) - set(exclude) - set(failed):
                        raise DeviceError(f"pool {self.id}: {len(failed)} device(s) failed during one measurement "
                                          f"({'; '.join(f'{d}: {e}' for d, e in failed.items())})",
                                          retryable=False) from exc
                    continue
                if device in offline:
                    self.state.mark_online(device)
                self._next = (self.devices.index(device) + 1) % len(self.devices)
                return answer, device
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(self._none_free(busy, self.state.offline(), exclude), retryable=False)
            if busy:
                pause, backoff = backoff * random.uniform(0.5, 1.5), min(backoff * 2, MAX_BACKOFF_S)
            else:  # every device offline (or excluded): wait for the next probe
                probes = [mark.probe_at for mark in self.state.offline().values()]
                pause = min(probes) - time.time() if probes else MAX_BACKOFF_S
            self._sleep(min(max(pause, FIRST_BACKOFF_S), left))

    def settle(self, result: Measurement, request: RunRequest, key: str) -> Measurement:
        """``result`` (just measured by ``run``) with the device that measured it and that device's
        drift from its peers, after recording its median under ``key`` (the measurement's cache
        key) and, when due, cross-checking the same network on another device."""
        device = self.last_device or ""
        log = self._drift_log if self._drift_log is not None else DriftLog()
        log.record(self.id, key, device, result.median_ms)
        every = self.settings.cross_check_every
        if every and len(self.devices) > 1 and int(key[:8], 16) % every == 0:
            try:
                answer, other = self.run_on_any(request, exclude={device})
                log.record(self.id, key, other, stats.median(validate_answer(answer, other).samples_ms))
            except DeviceError as exc:  # the comparison waits for another network
                warnings.warn(f"pool {self.id}: cross-check of {device} skipped: {exc}", RuntimeWarning, stacklevel=2)
        drift = log.drift(self.id, device)
        return replace(result, measured_on=device, drift=None if drift is None else drift.value,
                       drift_tolerance=self.settings.drift_tolerance)

    def _candidates(self, offline: Dict[str, OfflineMark], skip: Collection[str]) -> List[str]:
        """This round's order: offline devices due for a probe first, then the rotation (online
        devices from where this process left off)."""
        now = time.time()
        rotation = self.devices[self._next:] + self.devices[:self._next]
        due = [d for d in rotation if d in offline and offline[d].probe_at <= now and d not in skip]
        online = [d for d in rotation if d not in offline and d not in skip]
        return due + online

    def _none_free(self, busy: List[str], offline: Dict[str, OfflineMark], exclude: Collection[str]) -> str:
        parts = []
        if busy:
            parts.append(f"busy: {', '.join(busy)}")
        if offline:
            parts.append("offline: " + "; ".join(f"{d} ({mark.error[:120]})" for d, mark in offline.items()))
        if exclude:
            parts.append(f"excluded: {', '.join(exclude)}")
        return (f"no device of pool {self.id} was free within pool.lease_wait_s={self.settings.lease_wait_s:g} s "
                f"({'; '.join(parts) or 'no devices'})")

    def close(self) -> None:
        """Close every device's connection."""
        for transport in self._transports.values():
            transport.close()


__all__ = ["DevicePool", "pool_devices", "pool_id"]
