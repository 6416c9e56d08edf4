"""Facts about and control over the machine the runner runs on: CPU affinity, resident memory,
temperature and throttling, and a small periodic sampler thread used for memory and power.

Every sysfs reader takes ``sysfs_root`` (default "/") so tests can point it at a fixture tree.
"""
from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import commands, emulation
from .protocol import BACKENDS

try:  # optional on the device
    import psutil
except ImportError:  # pragma: no cover - exercised on minimal devices only
    psutil = None

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None


def sysfs_path(sysfs_root: str, *parts: str) -> str:
    """``parts`` joined under ``sysfs_root`` (absolute parts are re-rooted)."""
    return os.path.join(sysfs_root, *[p.lstrip("/") for p in parts])


def read_text(path: str) -> Optional[str]:
    """The stripped text of a small file, or None when it cannot be read."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_int(path: str) -> Optional[int]:
    """The integer in a sysfs file, or None when absent/unreadable/not an integer."""
    text = read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Lifetime

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
ORPHAN_EXIT_CODE = 3


def _kill_me_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """End this process when ``parent_pid`` is gone: nobody would read the answer, and a runner
    left running would load the device under the next measurement.

    When ``parent_pid`` is this process's parent, Linux kills it with the parent (prctl
    PR_SET_PDEATHSIG) and other systems poll ``os.getppid()``; otherwise (a wrapper in between,
    or the parent already gone) a daemon thread polls whether ``parent_pid`` still exists.
    """
    if os.getppid() == parent_pid and _kill_me_with_parent():
        if os.getppid() == parent_pid:  # not orphaned between the check and the prctl
            return
        os._exit(ORPHAN_EXIT_CODE)
    direct = os.getppid() == parent_pid

    def watch() -> None:
        while (os.getppid() == parent_pid) if direct else _pid_alive(parent_pid):
            time.sleep(poll_s)
        os._exit(ORPHAN_EXIT_CODE)

    threading.Thread(target=watch, name="gensynth-parent-watch", daemon=True).start()


# ---------------------------------------------------------------------------------------------
# CPU affinity


def big_cores(sysfs_root: str = "/") -> List[int]:
    """The cores with the highest ``cpuinfo_max_freq`` (the "big" cores of a big.LITTLE SoC);
    all cores when the frequencies are unknown or equal."""
    freqs: Dict[int, int] = {}
    for path in glob.glob(sysfs_path(sysfs_root, "sys/devices/system/cpu/cpu[0-9]*")):
        match = re.search(r"cpu(\d+)$", path)
        freq = read_int(os.path.join(path, "cpufreq", "cpuinfo_max_freq"))
        if match and freq is not None:
            freqs[int(match.group(1))] = freq
    if not freqs:
        return list(range(os.cpu_count() or 1))
    top = max(freqs.values())
    return sorted(core for core, freq in freqs.items() if freq == top)


def resolve_affinity(spec: Optional[str], sysfs_root: str = "/") -> Optional[List[int]]:
    """Parse an affinity spec: None/"" (leave as is), "big", or comma-separated core ids."""
    if spec is None or spec.strip() == "":
        return None
    if spec.strip() == "big":
        return big_cores(sysfs_root)
    try:
        cores = sorted({int(part) for part in spec.split(",") if part.strip() != ""})
    except ValueError:
        raise ValueError(f"--affinity must be 'big' or comma-separated core ids, got {spec!r}") from None
    available = os.cpu_count() or 1
    bad = [c for c in cores if c < 0 or c >= available]
    if bad or not cores:
        raise ValueError(f"--affinity cores {bad or spec!r} do not exist (this device has {available} cores)")
    return cores


def apply_affinity(cores: Optional[Sequence[int]]) -> List[int]:
    """Pin this process (and the threads it creates afterwards) to ``cores``; return the
    affinity in force afterwards."""
    if cores:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cores))
        elif psutil is not None:  # pragma: no cover - non-Linux
            psutil.Process().cpu_affinity(list(cores))
        else:  # pragma: no cover
            raise RuntimeError("cannot set CPU affinity: no os.sched_setaffinity and no psutil")
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    if psutil is not None:  # pragma: no cover
        return sorted(psutil.Process().cpu_affinity())
    return list(range(os.cpu_count() or 1))  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Periodic sampling and memory


class PeriodicSampler:
    """Calls ``read()`` every ``interval_s`` on a daemon thread and keeps (time, value) pairs.

    Used for resident memory and for instantaneous power readings during a timed run.
    """

    def __init__(self, read: Callable[[], Any], interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"sampling interval must be > 0, got {interval_s}")
        self._read = read
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.samples: List[Tuple[float, Any]] = []
        self.error: Optional[BaseException] = None

    def _loop(self) -> None:
        while True:
            try:
                self.samples.append((time.perf_counter(), self._read()))
            except Exception as exc:  # reported by stop()
                self.error = exc
                return
            if self._stop.wait(self._interval):
                return

    def start(self) -> "PeriodicSampler":
        self._thread = threading.Thread(target=self._loop, name="gensynth-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> List[Tuple[float, Any]]:
        """Stop, take one last reading, and return every (time, value) pair."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.error is None:
            try:
                self.samples.append((time.perf_counter(), self._read()))
            except Exception as exc:
                self.error = exc
        if self.error is not None:
            raise RuntimeError(f"sampling failed: {self.error}") from self.error
        return self.samples


def rss_bytes() -> int:
    """Resident-set size of this process in bytes (psutil, else /proc/self/statm)."""
    if psutil is not None:
        return int(psutil.Process().memory_info().rss)
    statm = read_text("/proc/self/statm")
    if statm is None:  # pragma: no cover
        raise RuntimeError("cannot read resident memory: no psutil and no /proc/self/statm")
    return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _max_rss_bytes() -> Optional[int]:
    """The kernel's high-water mark of this process's RSS (Linux reports KiB)."""
    if resource is None:  # pragma: no cover
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class MemoryTracker:
    """Peak resident-set growth between ``start()`` and ``stop()``, in MiB.

    RSS is sampled every ``interval_s``; the kernel's RSS high-water mark also counts when it rose
    during the window, so a short spike between two samples is not missed.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self._sampler = PeriodicSampler(rss_bytes, interval_s)
        self.baseline_bytes = 0
        self._maxrss_before: Optional[int] = None

    def start(self) -> "MemoryTracker":
        self.baseline_bytes = rss_bytes()
        self._maxrss_before = _max_rss_bytes()
        self._sampler.start()
        return self

    def stop(self) -> float:
        peak = max(value for _, value in self._sampler.stop())
        maxrss_after = _max_rss_bytes()
        if maxrss_after is not None and self._maxrss_before is not None and maxrss_after > self._maxrss_before:
            peak = max(peak, maxrss_after)
        return max(peak - self.baseline_bytes, 0) / (1024.0 * 1024.0)


# ---------------------------------------------------------------------------------------------
# Temperature and throttling

# `vcgencmd get_throttled` bits (Raspberry Pi documentation, "vcgencmd"): 0 under-voltage now,
# 1 ARM frequency capped now, 2 throttled now, 3 soft temperature limit now; bits 16-19 the same
# conditions "has occurred since boot".
THROTTLED_NOW_MASK = 0xF
THROTTLED_OCCURRED_MASK = 0xF0000


def thermal_zones(sysfs_root: str = "/") -> Dict[str, float]:
    """Temperature in deg C of every readable Linux thermal zone, keyed "zoneN:type"."""
    zones: Dict[str, float] = {}
    for path in sorted(glob.glob(sysfs_path(sysfs_root, "sys/class/thermal/thermal_zone*"))):
        millideg = read_int(os.path.join(path, "temp"))
        if millideg is None:
            continue
        kind = read_text(os.path.join(path, "type")) or "unknown"
        zones[f"{os.path.basename(path)}:{kind}"] = millideg / 1000.0
    return zones


def parse_throttled(text: str) -> int:
    """The bit field in ``vcgencmd get_throttled`` output ("throttled=0x50000")."""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not match:
        raise ValueError(f"unexpected vcgencmd get_throttled output: {text!r}")
    return int(match.group(1), 0)


def read_throttled() -> Optional[int]:
    """The ``vcgencmd get_throttled`` bit field, or None where vcgencmd is absent or fails."""
    if shutil.which("vcgencmd") is None:
        return None
    try:
        code, output = commands.run(["vcgencmd", "get_throttled"], timeout_s=5)
        return parse_throttled(output) if code == 0 else None
    except (OSError, TimeoutError, subprocess.SubprocessError, ValueError):
        return None


def load_average() -> Optional[float]:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        return None


class ThermalWatch:
    """Temperatures, throttling and system load at the start and the end of a measurement."""

    def __init__(self, sysfs_root: str = "/") -> None:
        self.sysfs_root = sysfs_root
        self._start_zones: Dict[str, float] = {}
        self._start_bits: Optional[int] = None
        self._start_load: Optional[float] = None

    def start(self) -> "ThermalWatch":
        self._start_zones = thermal_zones(self.sysfs_root)
        self._start_bits = read_throttled()
        self._start_load = load_average()
        return self

    def stop(self) -> Dict[str, Any]:
        end_zones = thermal_zones(self.sysfs_root)
        end_bits = read_throttled()
        temps = list(self._start_zones.values()) + list(end_zones.values())
        throttled: Optional[bool] = None
        if end_bits is not None:
            newly = end_bits & ~(self._start_bits or 0)
            throttled = bool(end_bits & THROTTLED_NOW_MASK) or bool(newly & THROTTLED_OCCURRED_MASK)
        return {
            "max_temp_c": max(temps) if temps else None,
            "start_temp_c": max(self._start_zones.values()) if self._start_zones else None,
            "end_temp_c": max(end_zones.values()) if end_zones else None,
            "zones_c": end_zones,
            "throttled": throttled,
            "throttled_raw": None if end_bits is None else hex(end_bits),
            "load_avg_start": self._start_load,
            "cpu_count": os.cpu_count(),
        }


# ---------------------------------------------------------------------------------------------
# Device facts

# backend -> (module, distribution) in the order the runner tries them
RUNTIME_MODULES = {"onnxruntime": [("onnxruntime", "onnxruntime")],
                   "litert": [("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime")]}


def runtime_name(module: str, fallback_version: Optional[str] = None) -> str:
    """"module version" for an interpreter module, the version from its package metadata
    (else ``fallback_version``, e.g. the module's __version__)."""
    from importlib import metadata

    distribution = dict(m for pairs in RUNTIME_MODULES.values() for m in pairs).get(module, module)
    try:
        return f"{module} {metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return f"{module} {fallback_version or 'unknown'}"


def installed_runtime(backend: str) -> Optional[str]:
    """"module version" of the interpreter ``backend`` would use, from package metadata (no
    import), or None when none is installed with metadata."""
    from importlib import metadata

    for module, distribution in RUNTIME_MODULES.get(backend, []):
        try:
            return f"{module} {metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_model(sysfs_root: str = "/") -> Optional[str]:
    """The CPU's model name from /proc/cpuinfo ("model name", or "Model"/"Hardware" on some ARM
    kernels); None when it is not there. Results from different CPUs are not comparable: the
    same network times differently, and trains to different weights."""
    text = read_text(sysfs_path(sysfs_root, "proc/cpuinfo")) or ""
    for field in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == field and value.strip():
                return value.strip()
    return None


def device_info(sysfs_root: str = "/") -> Dict[str, Any]:
    """What the device is: hostname, machine, cpu_count, python, OS, board model, memory, and
    whether it is emulated (``emulated``; ``emulation``: which emulator, and what shows it)."""
    info: Dict[str, Any] = {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.system(),
        "release": platform.release(),
        "cpu": cpu_model(sysfs_root) or platform.processor() or None,
    }
    model = read_text(sysfs_path(sysfs_root, "proc/device-tree/model"))
    if model:
        info["model"] = model.rstrip("\x00")
    if psutil is not None:
        info["memory_mb"] = round(psutil.virtual_memory().total / (1024.0 * 1024.0), 1)
    info["runtimes"] = {b: installed_runtime(b) for b in BACKENDS}
    emulated = emulation.detect(sysfs_root, info["machine"])
    info["emulated"] = emulated is not None
    if emulated is not None:
        info["emulation"] = emulated
    big = big_cores(sysfs_root)
    if len(big) < (os.cpu_count() or 1):
        info["big_cores"] = big
    return info
