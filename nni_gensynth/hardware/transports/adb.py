"""ADB transport: measures on an Android phone through an adb server (adbutils).

Two modes (``transport.mode``):

- ``benchmark_model`` (default): TFLite's own ``benchmark_model`` binary, pushed to the phone by
  the user once (``transport.benchmark_binary``). The model goes to WORKDIR/models/<sha256>.tflite;
  the run is ``taskset MASK BINARY --graph=... --num_threads=... --warmup_runs=...
  --warmup_min_secs=... --num_runs=... --min_secs=... --enable_op_profiling=false
  --report_peak_memory_footprint=true`` plus the profile's delegate flag (``delegate``:
  xnnpack -> ``--use_xnnpack=true``, none -> ``--use_xnnpack=false``, gpu -> ``--use_gpu=true``,
  nnapi -> ``--use_nnapi=true``), and its log is parsed (``parse_benchmark_output``), including
  which delegate took how much of the graph ("Explicitly applied GPU delegate, and the model graph
  will be partially executed by the delegate w/ 3 delegate kernels."); a delegate that took no
  node is reported as such (``delegate.applied`` None, a warning on the host), never silently.
  benchmark_model prints summary statistics only (count, first, curr, min, max, avg, std of the
  timed runs), so the answer holds ``samples_ms = [avg]`` with ``samples_kind = "summary"`` and
  the full statistics in ``summary_ms``; nothing is invented.
- ``device_runner``: ``python3 -m nni_gensynth.device`` on the phone (e.g. under Termux), pushed
  by content hash like the SSH transport does, with ``runner_argv`` of the request; its JSON
  answer is returned as is (``measure`` checks it).

Both read the request's typed fields (threads, warm-up and repeat policy, energy settings,
affinity, timeout); nothing is re-parsed from a command line. Every value that goes into a device
shell command is quoted (``shlex.quote``), and at most ``MAX_OUTPUT_BYTES`` of a command's
output are read (shell protocol v2, read packet by packet).

Energy (benchmark_model mode, ``--energy-source battery`` or ``auto``): battery current_now (uA)
and voltage_now (uV) are read over ``adb shell`` for an idle baseline before the run and during
the run; only samples inside the timed phase (the last count x avg seconds before the binary
exits) are used; energy per inference = (P_run - P_idle) x run time / runs, computed by
``nni_gensynth.device.energy.battery_energy`` (the same function the device runner uses).
``model`` is active power x threads x run time (benchmark_model reports no CPU time, so all
threads are assumed busy: an upper bound, flagged in the answer).

Thermal: ``dumpsys thermalservice`` "Thermal Status: N" (Android PowerManager THERMAL_STATUS_*:
0 none, 1 light, 2 moderate, 3 severe, 4 critical, 5 emergency, 6 shutdown) before and after.
"""
from __future__ import annotations

import math
import posixpath
import re
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import adbutils
from adbutils import AdbClient, AdbConnection, AdbError

from nni_gensynth.device.energy import DEFAULT_ACTIVE_POWER_W, DEFAULT_IDLE_S, battery_energy, model_energy

from ..answer import read_answer, tail, too_much_output
from ..lease import leased_runner_command, raise_if_busy
from ..limits import MAX_OUTPUT_BYTES, SAMPLE_TIMEOUT_S, SHORT_COMMAND_TIMEOUT_S
from ..request import RunRequest, runner_argv
from .base import DeviceError
from .remote import remote_model_name, runner_files, runner_version, transport_settings

DEFAULT_WORKDIR = "/data/local/tmp/nni-gensynth"
THERMAL_STATUS_NAMES = ("none", "light", "moderate", "severe", "critical", "emergency", "shutdown")
_COMPLETE_MARKER = ".complete"
BENCHMARK_ENERGY_SOURCES = ("auto", "battery", "model")
DEFAULT_SAMPLE_INTERVAL_S = 0.1
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
# profile delegate -> benchmark_model flag (tensorflow/lite/tools/delegates/*_delegate_provider.cc)
DELEGATE_FLAGS = {"xnnpack": "--use_xnnpack=true", "none": "--use_xnnpack=false", "gpu": "--use_gpu=true",
                  "nnapi": "--use_nnapi=true"}


# ---------------------------------------------------------------------------------------------
# Parsing (pure)


def parse_benchmark_output(text: str) -> Dict[str, Any]:
    """Parse benchmark_model's log (tensorflow/lite/tools/benchmark/benchmark_model.cc).

    The statistics lines follow tsl::Stat::OutputToStream: ``count=N first=F curr=C min=m max=M
    avg=A std=S`` (integer microseconds, avg a double), or ``count=N curr=C(all same)``; the
    first is the warm-up, the last the timed runs. Also read: "Inference timings in us: Init: ..,
    First inference: .., Warmup (avg): .., Inference (avg): .." and "Overall peak memory footprint
    (MB) via periodic monitoring: X". Returns microsecond statistics; raises ValueError when the
    timed-run statistics are missing.
    """
    stats: List[Dict[str, float]] = []
    for match in re.finditer(r"count=(\d+)((?:\s+\w+=" + _NUMBER + r")*)(\(all same\))?", text):
        fields = {"count": float(match.group(1))}
        if not math.isfinite(fields["count"]):
            raise ValueError(f"benchmark_model printed a run count that is no number: {match.group(1)[:20]}...")
        for key, value in re.findall(r"(\w+)=" + _NUMBER, match.group(2)):
            fields[key] = float(value)
        if fields["count"] > 0 and "avg" not in fields and "curr" in fields:  # all runs took the same time
            fields.update(first=fields["curr"], min=fields["curr"], max=fields["curr"], avg=fields["curr"], std=0.0)
        stats.append(fields)
    timed = [s for s in stats if s["count"] > 0]
    if len(stats) < 2 or not timed or stats[-1]["count"] == 0:
        raise ValueError("benchmark_model output has no statistics line for the timed runs "
                         f"(expected 'count=N first=.. min=.. max=.. avg=.. std=..'): {tail(text, 5)!r}")
    out: Dict[str, Any] = {"inference_us": stats[-1], "warmup_us": stats[-2]}
    timings = re.search(r"Inference timings in us: Init: " + _NUMBER + r", First inference: " + _NUMBER
                        + r", Warmup \(avg\): " + _NUMBER + r", Inference \(avg\): " + _NUMBER, text)
    if timings:
        out["init_us"], out["first_inference_us"], out["warmup_avg_us"], out["inference_avg_us"] = \
            (float(v) for v in timings.groups())
    peak = re.search(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUMBER, text)
    if peak:
        out["peak_mem_mb"] = float(peak.group(1))
    delta = re.search(r"Memory footprint delta from the start of the tool \(MB\): init=" + _NUMBER
                      + r" overall=" + _NUMBER, text)
    if delta:
        out["mem_delta_init_mb"], out["mem_delta_overall_mb"] = float(delta.group(1)), float(delta.group(2))
    return out


def parse_delegates(text: str) -> Dict[str, Any]:
    """What benchmark_model says about delegates (BenchmarkTfLiteModel::Init): for each delegate
    it applied explicitly, how many delegate kernels replaced nodes (``{"GPU": 3}``; 0 when "the
    model graph will not be executed by the delegate"; None with "completely executed", one
    kernel for the whole graph), ``full``: the names that took the whole graph, and
    ``default_xnnpack``: the runtime created its default XNNPACK delegate."""
    kernels: Dict[str, Optional[int]] = {}
    full: List[str] = []
    for name in re.findall(r"Explicitly applied (\w{1,32}) delegate, and the model graph will be completely executed",
                           text):
        kernels[name] = 1
        full.append(name)
    for name, count in re.findall(r"Explicitly applied (\w{1,32}) delegate, and the model graph will be partially "
                                  r"executed by the delegate w/ (\d{1,9}) delegate kernels", text):
        kernels[name] = int(count)
    for name in re.findall(r"Though (\w{1,32}) delegate is explicitly applied, the model graph will not be executed",
                           text):
        kernels[name] = 0
    return {"kernels": kernels, "full": full,
            "default_xnnpack": "Created TensorFlow Lite XNNPACK delegate for CPU" in text}


def benchmark_delegation(delegates: Dict[str, Any], requested: Optional[str]) -> Dict[str, Any]:
    """The answer's ``delegate`` from ``parse_delegates`` and the profile's delegate: the one that
    took nodes (None: none did), with its kernel count when benchmark_model printed one."""
    claimed = {name.lower(): count for name, count in delegates.get("kernels", {}).items()}
    answer: Dict[str, Any] = {"requested": requested or "default", "applied": None, "delegated_kernels": None}
    if requested in (None, "xnnpack") and not claimed.get("xnnpack") and delegates.get("default_xnnpack"):
        answer["applied"] = "xnnpack"  # the runtime's own default delegate: no kernel count is printed
    wanted = requested if requested not in (None, "none") else None
    if wanted is not None and wanted in claimed:
        answer["delegated_kernels"] = claimed[wanted]
        answer["applied"] = wanted if claimed[wanted] else None
    if any(name.lower() == wanted for name in delegates.get("full", [])):
        answer["full"] = True
    if answer["applied"] is None and requested != "none" and delegates.get("default_xnnpack"):
        answer["fallback"] = "xnnpack"  # what ran the nodes the delegate asked for did not take
    return answer


def parse_thermal_status(text: str) -> Optional[int]:
    """``Thermal Status: N`` from ``dumpsys thermalservice`` (None when absent)."""
    match = re.search(r"Thermal Status:\s*(\d{1,9})\b", text)
    return int(match.group(1)) if match else None


def parse_temperatures(text: str) -> Dict[str, float]:
    """``Temperature{mValue=36.2, mType=0, mName=cpu0, ...}`` entries of dumpsys thermalservice."""
    temps: Dict[str, float] = {}
    for value, name in re.findall(r"Temperature\{mValue=" + _NUMBER + r", mType=\d+, mName=([^,}]+)", text):
        number = float(value)
        if math.isfinite(number):
            temps[name.strip()] = number
    return temps


def parse_getprop(text: str) -> Dict[str, str]:
    """``[key]: [value]`` lines of ``getprop``."""
    return dict(re.findall(r"^\[([^\]]+)\]: \[(.*)\]\s*$", text, flags=re.MULTILINE))


def _finite_numbers(words: List[str]) -> List[float]:
    """``words`` as finite floats, or [] when any is not one (device output is not trusted)."""
    try:
        numbers = [float(word) for word in words]
    except ValueError:
        return []
    return numbers if all(math.isfinite(n) for n in numbers) else []


def big_core_mask(max_freq_lines: str) -> Tuple[List[int], str]:
    """Big cores and their taskset hex mask from ``grep -H . .../cpuN/cpufreq/cpuinfo_max_freq``
    output: the cores with the highest maximum frequency (the rule the device runner uses)."""
    freqs: Dict[int, int] = {}
    for core, freq in re.findall(r"/cpu(\d{1,5})/cpufreq/cpuinfo_max_freq:(\d{1,15})\b", max_freq_lines):
        freqs[int(core)] = int(freq)
    if not freqs:
        raise ValueError("no cpuinfo_max_freq readable on the device: cannot find its big cores")
    top = max(freqs.values())
    cores = sorted(c for c, f in freqs.items() if f == top)
    return cores, format(sum(1 << c for c in cores), "x")


# ---------------------------------------------------------------------------------------------
# adbutils without its "start a local adb server" fallback


class _Connection(AdbConnection):
    """An adb server connection that fails instead of spawning ``adb start-server`` (adbutils'
    fallback), so an unreachable server is an error, not a background process."""

    def _safe_connect(self) -> socket.socket:
        return self._create_socket()


class _Client(AdbClient):
    def make_connection(self, timeout: Optional[float] = None) -> AdbConnection:
        connection = _Connection(self.host, self.port)
        if timeout:
            connection.conn.settimeout(timeout)
        return connection


# ---------------------------------------------------------------------------------------------


def read_shell_v2(read: Callable[[int], bytes], deadline: float, where: str) -> Tuple[bytes, bytes, int]:
    """(stdout, stderr, exit code) from an adb shell v2 stream (packets: 1-byte id, 4-byte
    little-endian length, data; ids 1 stdout, 2 stderr, 3 exit code), ``read(n)`` returning
    exactly n bytes. A packet is refused before it is read when the output would pass
    MAX_OUTPUT_BYTES; the deadline is checked between reads."""
    out, err = bytearray(), bytearray()
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise DeviceError(f"a command on {where} did not finish in time", retryable=True)
        header = read(5)
        kind, length = header[0], int.from_bytes(header[1:5], "little")
        total += length
        if total > MAX_OUTPUT_BYTES:
            raise too_much_output(where)
        data = bytearray()
        while len(data) < length:
            data += read(min(length - len(data), 1 << 16))
            if time.monotonic() > deadline:
                raise DeviceError(f"a command on {where} did not finish in time", retryable=True)
        if kind == 1:
            out += data
        elif kind == 2:
            err += data
        elif kind == 3:
            return bytes(out), bytes(err), data[0] if data else 255


class ADBTransport:
    """Measures on an Android phone over adb (see the module docstring for the two modes).

    ``profile`` is a HardwareProfile (its ``transport`` is read) or a mapping of transport
    settings: ``serial`` (None: the only device), ``adb_host`` ("127.0.0.1"), ``adb_port``
    (5037), ``benchmark_binary``, ``mode``, ``python`` ("python3", device_runner mode),
    ``workdir`` ("/data/local/tmp/nni-gensynth"). What to measure and how long it may take come
    with each request. Calls are serialised by a lock (one measurement at a time through one
    transport).
    """

    def __init__(self, profile: Any) -> None:
        fields = transport_settings(profile, "adb")
        self.serial: Optional[str] = fields.get("serial") or None
        self.adb_host = str(fields.get("adb_host") or "127.0.0.1")
        port = fields.get("adb_port", 5037)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"transport.adb_port must be an integer in 1..65535, got {port!r}")
        self.adb_port = port
        self.mode = fields.get("mode") or "benchmark_model"
        if self.mode not in ("benchmark_model", "device_runner"):
            raise ValueError(f"transport.mode must be 'benchmark_model' or 'device_runner', got {self.mode!r}")
        self.benchmark_binary = str(fields.get("benchmark_binary") or "/data/local/tmp/benchmark_model")
        if not self.benchmark_binary.startswith("/"):
            raise ValueError(f"transport.benchmark_binary must be an absolute device path, got {self.benchmark_binary!r}")
        self.python = str(fields.get("python") or "python3")
        self.workdir = str(fields.get("workdir") or DEFAULT_WORKDIR).rstrip("/")
        if not self.workdir.startswith("/"):
            raise ValueError(f"transport.workdir must be an absolute device path, got {self.workdir!r}")
        self._client = _Client(host=self.adb_host, port=self.adb_port)
        self._lock = threading.Lock()
        self._big: Optional[Tuple[List[int], str]] = None
        self._pushed_runner: Optional[str] = None
        self._workdir_ready = False
        self._shell_v2_checked: Optional[str] = None

    # -- public API --------------------------------------------------------------------------

    def device_id(self) -> str:
        """``adb:SERIAL``. Without a configured serial, the serial of the only ready device
        (kept from then on), else ``adb:HOST:PORT/any``."""
        if self.serial is None:
            try:
                ready = [info.serial for info in self._client.list() if info.state == "device"]
            except (AdbError, OSError):
                ready = []
            if len(ready) == 1:
                self.serial = ready[0]
        return f"adb:{self.serial}" if self.serial else f"adb:{self.adb_host}:{self.adb_port}/any"  # no "//" (see ssh.py)

    def run(self, request: RunRequest) -> Dict[str, Any]:
        """Push the model, measure it with benchmark_model or the device runner, return the
        runner-shaped answer. DeviceError(retryable=True) on a lost device or adb server,
        DeviceError(retryable=False) when the program on the phone fails or says too much."""
        model_path = Path(request.model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"model file not found: {model_path}")
        if self.mode == "benchmark_model":
            _check_benchmarkable(request)
        with self._lock:
            try:
                device = self._device()
                remote_model = self._push_model(device, model_path)
                if self.mode == "benchmark_model":
                    return self._benchmark(device, remote_model, request)
                return self._device_runner(device, remote_model, request)
            except DeviceError:
                raise
            except (AdbError, OSError, EOFError, ConnectionError) as exc:
                self._pushed_runner = None
                self._workdir_ready = False
                raise DeviceError(f"lost the Android device {self.serial or '(any)'} via adb server "
                                  f"{self.adb_host}:{self.adb_port}: {type(exc).__name__}: {exc}",
                                  retryable=True) from exc

    def close(self) -> None:
        """Nothing to release: every adb request opens its own short connection."""

    def __enter__(self) -> "ADBTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- device, files, shell ------------------------------------------------------------------

    def _device(self) -> adbutils.AdbDevice:
        try:
            listed = self._client.list()
        except (AdbError, OSError) as exc:
            raise DeviceError(f"adb server at {self.adb_host}:{self.adb_port} is not reachable ({exc}); "
                              f"start it with `adb start-server` and check `adb devices`", retryable=True) from None
        ready = [info.serial for info in listed if info.state == "device"]
        if self.serial is None:
            if len(ready) != 1:
                raise DeviceError(f"transport.serial is not set and adb lists {len(ready)} ready devices "
                                  f"({', '.join(ready) or 'none'}); set transport.serial", retryable=not ready)
            return self._client.device(ready[0])
        if self.serial not in ready:
            states = {info.serial: info.state for info in listed}
            state = f"in state {states[self.serial]!r}" if self.serial in states else "not connected"
            raise DeviceError(f"Android device {self.serial} is {state} (adb lists: "
                              f"{', '.join(f'{s} {st}' for s, st in states.items()) or 'nothing'}); check the "
                              f"cable or `adb connect`, and accept the USB debugging prompt", retryable=True)
        return self._client.device(self.serial)

    def _shell(self, device: adbutils.AdbDevice, command: str,
               timeout: float = SHORT_COMMAND_TIMEOUT_S) -> Tuple[str, str, int]:
        """(stdout, stderr, exit code) of a device shell command, at most MAX_OUTPUT_BYTES read."""
        if self._shell_v2_checked != device.serial:
            if "shell_v2" not in device.get_features().split(","):
                raise DeviceError(f"{device.serial}: adbd does not speak shell protocol v2 (Android 7 or later "
                                  f"is needed)", retryable=False)
            self._shell_v2_checked = device.serial
        connection = device.open_transport(timeout=timeout)
        try:
            connection.send_command(f"shell,v2:{command}")
            connection.check_okay()
            out, err, code = read_shell_v2(connection.read_exact, time.monotonic() + timeout, device.serial)
        finally:
            connection.close()
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code

    def _push(self, device: adbutils.AdbDevice, local: Path, remote: str) -> None:
        device.sync.push(local, remote, mode=0o644)

    def _ensure_workdir(self, device: adbutils.AdbDevice) -> None:
        """mkdir -p WORKDIR/models once; a refusal is a setup problem, not worth retrying (a failed
        adb push would only say "FAIL")."""
        if self._workdir_ready:
            return
        out, err, code = self._shell(device, f"mkdir -p {shlex.quote(self.workdir + '/models')}")
        if code != 0:
            raise DeviceError(f"{self.serial}: cannot create transport.workdir {self.workdir!r}: "
                              f"{tail(out + err) or f'exit {code}'}; use a folder the adb shell user can "
                              f"write, such as {DEFAULT_WORKDIR}", retryable=False)
        self._workdir_ready = True

    def _push_model(self, device: adbutils.AdbDevice, model_path: Path) -> str:
        self._ensure_workdir(device)
        remote = posixpath.join(self.workdir, "models", remote_model_name(model_path))
        size = model_path.stat().st_size
        info = device.sync.stat(remote)
        if info.mtime is None or info.size != size:  # absent, or cut short by a dropped push
            self._push(device, model_path, remote)
            if device.sync.stat(remote).size != size:
                raise DeviceError(f"pushing {model_path.name} to {self.serial} was cut short", retryable=True)
        return remote

    # -- device_runner mode --------------------------------------------------------------------

    def _device_runner(self, device: adbutils.AdbDevice, remote_model: str, request: RunRequest) -> Dict[str, Any]:
        runner_dir = self._push_runner(device)
        argv = runner_argv(request, remote_model)
        if request.lease is not None:  # a pool's run: under the phone's lease (toybox flock), see lease.py
            command = leased_runner_command(self.workdir, runner_dir, self.python, argv, request, watch_stdin=False)
        else:
            command = (f"cd {shlex.quote(runner_dir)} && {shlex.quote(self.python)} -m nni_gensynth.device "
                       + " ".join(shlex.quote(a) for a in argv))
        stdout, stderr, code = self._shell(device, command, request.timeout_s)
        raise_if_busy(stdout, code, self.serial or device.serial)
        return read_answer(
            stdout, stderr, code, self.serial or device.serial,
            not_found_hint=(f"{self.python!r} not found on the phone (install Python, numpy, psutil and "
                            f"ai-edge-litert or tflite-runtime, e.g. in Termux, and set transport.python): "
                            f"{tail(stdout + stderr)}"))

    def _push_runner(self, device: adbutils.AdbDevice) -> str:
        files = runner_files()
        version = runner_version(files)
        target = posixpath.join(self.workdir, f"runner-{version}")
        marker = posixpath.join(target, _COMPLETE_MARKER)
        if self._pushed_runner == version or device.sync.stat(marker).mtime is not None:
            self._pushed_runner = version
            return target
        for relative, local in files:
            self._push(device, local, posixpath.join(target, relative))
        device.sync.push(version.encode("ascii"), marker, mode=0o644)  # last: marks the copy complete
        self._pushed_runner = version
        return target

    # -- benchmark_model mode ------------------------------------------------------------------

    def _affinity(self, device: adbutils.AdbDevice, spec: Optional[str]) -> Tuple[Optional[List[int]], Optional[str]]:
        """(cores, taskset mask) for "big" or "0,1,..", or (None, None)."""
        if spec is None or str(spec).strip() == "":
            return None, None
        if str(spec).strip() == "big":
            if self._big is None:
                out, _, _ = self._shell(device, "grep -H . /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq")
                try:
                    self._big = big_core_mask(out)
                except ValueError as exc:
                    raise DeviceError(f"{self.serial}: {exc}", retryable=False) from None
            return self._big
        try:
            cores = sorted({int(part) for part in str(spec).split(",") if part.strip()})
        except ValueError:
            raise ValueError(f"cpu affinity must be 'big' or comma-separated core ids, got {spec!r}") from None
        if not cores or cores[0] < 0:
            raise ValueError(f"cpu affinity must name cores >= 0, got {spec!r}")
        return cores, format(sum(1 << c for c in cores), "x")

    def _thermal(self, device: adbutils.AdbDevice) -> Tuple[Optional[int], Dict[str, float]]:
        out, _, code = self._shell(device, "dumpsys thermalservice")
        if code != 0:
            return None, {}
        return parse_thermal_status(out), parse_temperatures(out)

    def _battery_sample(self, device: adbutils.AdbDevice, supply: str) -> Tuple[float, float, float, float]:
        """(time sent, time answered, current_now uA, voltage_now uV) of the power supply
        ``supply`` (a name under /sys/class/power_supply, quoted into the command)."""
        base = posixpath.join("/sys/class/power_supply", supply)
        files = " ".join(shlex.quote(posixpath.join(base, name)) for name in ("current_now", "voltage_now"))
        sent = time.monotonic()
        out, err, code = self._shell(device, f"cat {files}", timeout=SAMPLE_TIMEOUT_S)
        values = _finite_numbers(out.split()) if code == 0 else []
        if len(values) != 2:
            raise DeviceError(f"{self.serial}: cannot read {base}/current_now and voltage_now for battery energy: "
                              f"{tail(out + err) or 'no output'}", retryable=False)
        return sent, time.monotonic(), values[0], values[1]

    def _benchmark(self, device: adbutils.AdbDevice, remote_model: str, request: RunRequest) -> Dict[str, Any]:
        cores, mask = self._affinity(device, request.affinity_spec)
        flags = [f"--graph={remote_model}", f"--num_threads={request.threads}",
                 f"--warmup_runs={request.warmup.min_runs}", f"--warmup_min_secs={request.warmup.min_time_s:g}",
                 f"--num_runs={request.repeat.min_runs}", f"--min_secs={request.repeat.min_time_s:g}",
                 "--enable_op_profiling=false", "--report_peak_memory_footprint=true"]
        if request.delegate is not None:
            flags.append(DELEGATE_FLAGS[request.delegate])
        command = " ".join(([f"taskset {mask}"] if mask else []) + [shlex.quote(self.benchmark_binary)]
                           + [shlex.quote(f) for f in flags])
        settings = request.energy
        source = settings.source
        supply = settings.battery_supply or "battery"
        if source == "auto":
            try:
                self._battery_sample(device, supply)
                source = "battery"
            except DeviceError:
                source = "model"
        interval = settings.sample_interval_s or DEFAULT_SAMPLE_INTERVAL_S
        idle: List[Tuple[float, float]] = []
        if source == "battery":
            end = time.monotonic() + (settings.idle_s if settings.idle_s is not None else DEFAULT_IDLE_S)
            while True:
                _, _, current, voltage = self._battery_sample(device, supply)
                idle.append((current, voltage))
                if time.monotonic() >= end:
                    break
                time.sleep(interval)

        status_before, _ = self._thermal(device)
        outcome: Dict[str, Any] = {}

        def run_binary() -> None:
            try:
                outcome["result"] = self._shell(device, command, request.timeout_s)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                outcome["error"] = exc
            outcome["end"] = time.monotonic()

        worker = threading.Thread(target=run_binary, name="adb-benchmark_model", daemon=True)
        started = time.monotonic()
        worker.start()
        samples: List[Tuple[float, float, float, float]] = []
        while worker.is_alive():
            worker.join(timeout=interval)
            if source == "battery" and worker.is_alive():
                try:
                    samples.append(self._battery_sample(device, supply))
                except DeviceError:
                    pass  # the run itself reports a lost device
        if "error" in outcome:
            raise outcome["error"]
        stdout, stderr, code = outcome["result"]
        if code != 0:
            hint = (f" ({self.benchmark_binary} is missing: build or download TFLite's benchmark_model for "
                    f"the phone's ABI and `adb push` it there, then `adb shell chmod +x` it)") if code == 127 else ""
            raise DeviceError(f"benchmark_model on {self.serial} failed (exit {code}){hint}: "
                              f"{tail(stdout + stderr)}", retryable=False)
        try:
            parsed = parse_benchmark_output(stdout)
        except ValueError as exc:
            raise DeviceError(f"{self.serial}: {exc}", retryable=False) from None
        status_after, temps = self._thermal(device)

        timed = parsed["inference_us"]
        count, avg_us = int(timed["count"]), float(timed["avg"])
        run_s = count * avg_us / 1e6
        try:
            if source == "battery":
                # The timed runs are the last run_s seconds before the binary exited. The exit reaches
                # the host a little after it happens, so samples answered within two round trips of
                # the end are left out: they may have been read after the load stopped.
                guard = 2.0 * max((answered - sent for sent, answered, _, _ in samples), default=0.0)
                end = outcome["end"]
                window = [(c, v) for sent, answered, c, v in samples if sent >= end - run_s and answered <= end - guard]
                energy = battery_energy(window if len(window) >= 2 else [(c, v) for _, _, c, v in samples],
                                        idle, run_s, count)
                energy["window"] = "timed runs" if len(window) >= 2 else "whole benchmark_model process"
                energy["sampled_over"] = "adb shell"
            else:
                power = settings.active_power_w or DEFAULT_ACTIVE_POWER_W
                energy = model_energy(run_s * request.threads, run_s, count, power)
                energy["cpu_s_assumed"] = "threads x run time (benchmark_model reports no CPU time)"
        except ValueError as exc:  # figures from the phone that give no energy (no runs, no time)
            raise DeviceError(f"{self.serial}: no energy from benchmark_model's figures: {exc}", retryable=False) from None
        std_us = float(timed.get("std", 0.0))
        summary = {key: timed[key] / 1000.0 for key in ("first", "curr", "min", "max", "avg", "std") if key in timed}
        summary.update(count=count, cv=(std_us / avg_us) if avg_us > 0 else 0.0)
        peak = parsed.get("peak_mem_mb", parsed.get("mem_delta_overall_mb"))
        if peak is None:
            raise DeviceError(f"{self.serial}: benchmark_model printed no memory footprint "
                              f"(is it older than --report_peak_memory_footprint?)", retryable=False)
        props = self._props(device)
        return {
            "ok": True,
            "samples_ms": [avg_us / 1000.0],
            "samples_kind": "summary",
            "summary_ms": summary,
            "backend": "litert",
            "runtime": "tflite benchmark_model",
            "threads": request.threads,
            "affinity": cores,
            "taskset_mask": mask,
            "warmup": {"runs": int(parsed["warmup_us"]["count"]),
                       "time_s": parsed["warmup_us"]["count"] * parsed["warmup_us"].get("avg", 0.0) / 1e6},
            "init_ms": parsed["init_us"] / 1000.0 if "init_us" in parsed else None,
            "delegate": benchmark_delegation(parse_delegates(stdout + "\n" + stderr), request.delegate),
            "peak_mem_mb": float(peak),
            "peak_mem_kind": "periodic monitoring" if "peak_mem_mb" in parsed else "footprint delta",
            "energy": energy,
            "thermal": {
                "android_thermal_status": status_after,
                "android_thermal_status_start": status_before,
                "android_thermal_status_name": (THERMAL_STATUS_NAMES[status_after]
                                                if status_after is not None and status_after < len(THERMAL_STATUS_NAMES)
                                                else None),
                "throttled": None if status_after is None else bool(status_after >= 1 or (status_before or 0) >= 1),
                "max_temp_c": max(temps.values()) if temps else None,
                "zones_c": temps,
            },
            "device": {
                "serial": device.serial,
                "model": props.get("ro.product.model"),
                "manufacturer": props.get("ro.product.manufacturer"),
                "android": props.get("ro.build.version.release"),
                "sdk": props.get("ro.build.version.sdk"),
                "abi": props.get("ro.product.cpu.abi"),
                "big_cores": self._big[0] if self._big else None,
            },
            "wall_s": time.monotonic() - started,
        }

    def _props(self, device: adbutils.AdbDevice) -> Dict[str, str]:
        out, _, _ = self._shell(device, "getprop")
        return parse_getprop(out)


def _check_benchmarkable(request: RunRequest) -> None:
    """ValueError when benchmark_model mode cannot do what ``request`` asks."""
    if request.backend != "litert":
        raise ValueError(f"benchmark_model runs .tflite models (backend 'litert'), got backend {request.backend!r}")
    if request.energy.source not in BENCHMARK_ENERGY_SOURCES:
        raise ValueError(f"energy source {request.energy.source!r} is not available over adb in benchmark_model "
                         f"mode (use {', '.join(repr(s) for s in BENCHMARK_ENERGY_SOURCES)})")
