"""ADB transport: measures on an Android phone through an adb server (adbutils).

Two modes (``transport.mode``):

- ``benchmark_model`` (default): TFLite's own ``benchmark_model`` binary, pushed to the phone by
  the user once (``transport.benchmark_binary``). The model goes to WORKDIR/models/<sha256>.tflite;
  the run is ``taskset MASK BINARY --graph=... --num_threads=... --warmup_runs=...
  --warmup_min_secs=... --num_runs=... --min_secs=... --enable_op_profiling=false
  --report_peak_memory_footprint=true``, and its log is parsed (``parse_benchmark_output``).
  benchmark_model prints summary statistics only (count, first, curr, min, max, avg, std of the
  timed runs), so the answer holds ``samples_ms = [avg]`` with ``samples_kind = "summary"`` and
  the full statistics in ``summary_ms``; nothing is invented.
- ``device_runner``: ``python3 -m nni_gensynth.device`` on the phone (e.g. under Termux), pushed
  by content hash like the SSH transport does; its JSON answer is returned as is.

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

import argparse
import json
import math
import posixpath
import re
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import adbutils
from adbutils import AdbClient, AdbConnection, AdbError

from nni_gensynth.device.energy import DEFAULT_ACTIVE_POWER_W, battery_energy, model_energy

from .base import DeviceError
from .remote import remote_model_name, runner_answer, runner_files, runner_version, substitute_model_path, tail
from .remote import transport_settings

DEFAULT_WORKDIR = "/data/local/tmp/nni-gensynth"
THERMAL_STATUS_NAMES = ("none", "light", "moderate", "severe", "critical", "emergency", "shutdown")
_COMPLETE_MARKER = ".complete"
_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"


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


def parse_thermal_status(text: str) -> Optional[int]:
    """``Thermal Status: N`` from ``dumpsys thermalservice`` (None when absent)."""
    match = re.search(r"Thermal Status:\s*(\d+)", text)
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


def big_core_mask(max_freq_lines: str) -> Tuple[List[int], str]:
    """Big cores and their taskset hex mask from ``grep -H . .../cpuN/cpufreq/cpuinfo_max_freq``
    output: the cores with the highest maximum frequency (the rule the device runner uses)."""
    freqs: Dict[int, int] = {}
    for core, freq in re.findall(r"/cpu(\d+)/cpufreq/cpuinfo_max_freq:(\d+)", max_freq_lines):
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


def _runner_options(args: Sequence[str]) -> argparse.Namespace:
    """The device-runner options benchmark_model mode translates."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("command", nargs="?", default="measure")
    parser.add_argument("--model")
    parser.add_argument("--backend", default="litert")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--affinity", default=None)
    parser.add_argument("--warmup-min-time-s", type=float, default=1.0)
    parser.add_argument("--warmup-min-runs", type=int, default=10)
    parser.add_argument("--min-time-s", type=float, default=2.0)
    parser.add_argument("--min-runs", type=int, default=30)
    parser.add_argument("--max-runs", type=int, default=10000)
    # benchmark_model reports only an average, so the median cannot be watched while it runs:
    # the settle-until-stable policy is accepted and not applied in this mode
    parser.add_argument("--target-rse", type=float, default=None)
    parser.add_argument("--max-time-s", type=float, default=None)
    parser.add_argument("--energy-source", default="auto")
    parser.add_argument("--energy-config", default="{}")
    parser.add_argument("--sysfs-root", default="/")
    options, unknown = parser.parse_known_args(list(args))
    if unknown:
        raise ValueError(f"benchmark_model mode does not understand runner arguments {unknown}")
    if options.command != "measure":
        raise ValueError(f"benchmark_model mode only measures, got command {options.command!r}")
    if options.backend != "litert":
        raise ValueError(f"benchmark_model runs .tflite models (backend 'litert'), got --backend {options.backend!r}")
    if options.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {options.threads}")
    try:
        options.energy_config = json.loads(options.energy_config)
    except ValueError:
        raise ValueError(f"--energy-config is not valid JSON: {options.energy_config!r}") from None
    if not isinstance(options.energy_config, dict):
        raise ValueError("--energy-config must be a JSON object")
    return options


class ADBTransport:
    """Measures on an Android phone over adb (see the module docstring for the two modes).

    ``profile`` is a HardwareProfile (its ``transport``, ``cpu_affinity`` are read) or a mapping
    of transport settings: ``serial`` (None: the only device), ``adb_host`` ("127.0.0.1"),
    ``adb_port`` (5037), ``benchmark_binary``, ``mode``, ``python`` ("python3", device_runner
    mode), ``workdir`` ("/data/local/tmp/nni-gensynth"), ``timeout_s`` (600).
    Calls are serialised by a lock (one measurement at a time through one transport).
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
        self.timeout_s = float(fields.get("timeout_s") or 600.0)
        affinity = getattr(profile, "cpu_affinity", None) if not isinstance(profile, dict) else profile.get("cpu_affinity")
        self.cpu_affinity = affinity
        self._client = _Client(host=self.adb_host, port=self.adb_port)
        self._lock = threading.Lock()
        self._big: Optional[Tuple[List[int], str]] = None
        self._pushed_runner: Optional[str] = None
        self._workdir_ready = False

    # -- public API --------------------------------------------------------------------------

    def device_id(self) -> str:
        """``adb://SERIAL``. Without a configured serial, the serial of the only ready device
        (kept from then on), else ``adb://HOST:PORT/any``."""
        if self.serial is None:
            try:
                ready = [info.serial for info in self._client.list() if info.state == "device"]
            except (AdbError, OSError):
                ready = []
            if len(ready) == 1:
                self.serial = ready[0]
        return f"adb://{self.serial}" if self.serial else f"adb://{self.adb_host}:{self.adb_port}/any"

    def run_device_runner(self, model_path: Path, args: List[str]) -> Dict[str, Any]:
        """Push the model, measure it with benchmark_model or the device runner, return the
        runner-shaped answer. DeviceError(retryable=True) on a lost device or adb server,
        DeviceError(retryable=False) when the program on the phone fails."""
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"model file not found: {model_path}")
        options = _runner_options(args) if self.mode == "benchmark_model" else None
        with self._lock:
            try:
                device = self._device()
                remote_model = self._push_model(device, model_path)
                if options is not None:
                    return self._benchmark(device, remote_model, options)
                return self._device_runner(device, model_path, remote_model, args)
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

    def _shell(self, device: adbutils.AdbDevice, command: str, timeout: Optional[float] = None) -> Tuple[str, str, int]:
        result = device.shell2(command, timeout=timeout or self.timeout_s, v2=True)
        return result.stdout, result.stderr, result.returncode

    def _push(self, device: adbutils.AdbDevice, local: Path, remote: str) -> None:
        device.sync.push(local, remote, mode=0o644)

    def _ensure_workdir(self, device: adbutils.AdbDevice) -> None:
        """mkdir -p WORKDIR/models once; a refusal is a setup problem, not worth retrying (a failed
        adb push would only say "FAIL")."""
        if self._workdir_ready:
            return
        out, err, code = self._shell(device, f"mkdir -p {shlex.quote(self.workdir + '/models')}", timeout=30)
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

    def _device_runner(self, device: adbutils.AdbDevice, model_path: Path, remote_model: str,
                       args: List[str]) -> Dict[str, Any]:
        runner_dir = self._push_runner(device)
        argv = substitute_model_path(args, model_path, remote_model)
        command = (f"cd {shlex.quote(runner_dir)} && {shlex.quote(self.python)} -m nni_gensynth.device "
                   + " ".join(shlex.quote(a) for a in argv))
        stdout, stderr, code = self._shell(device, command)
        return runner_answer(
            stdout, code, self.serial,
            not_found_hint=(f"{self.python!r} not found on the phone (install Python, numpy, psutil and "
                            f"ai-edge-litert or tflite-runtime, e.g. in Termux, and set transport.python): "
                            f"{tail(stdout + stderr)}"),
            output_tail=tail(stdout + stderr))

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
                out, _, _ = self._shell(device, "grep -H . /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq",
                                        timeout=30)
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
        out, _, code = self._shell(device, "dumpsys thermalservice", timeout=30)
        if code != 0:
            return None, {}
        return parse_thermal_status(out), parse_temperatures(out)

    def _battery_sample(self, device: adbutils.AdbDevice, supply: str) -> Tuple[float, float, float, float]:
        """(time sent, time answered, current_now uA, voltage_now uV)."""
        base = f"/sys/class/power_supply/{supply}"
        sent = time.monotonic()
        out, err, code = self._shell(device, f"cat {base}/current_now {base}/voltage_now", timeout=10)
        values = out.split()
        if code != 0 or len(values) != 2:
            raise DeviceError(f"{self.serial}: cannot read {base}/current_now and voltage_now for battery energy: "
                              f"{tail(out + err) or 'no output'}", retryable=False)
        return sent, time.monotonic(), float(values[0]), float(values[1])

    def _benchmark(self, device: adbutils.AdbDevice, remote_model: str, options: argparse.Namespace) -> Dict[str, Any]:
        affinity_spec = options.affinity if options.affinity is not None else self.cpu_affinity
        if isinstance(affinity_spec, (tuple, list)):
            affinity_spec = ",".join(str(c) for c in affinity_spec)
        cores, mask = self._affinity(device, affinity_spec)
        flags = [f"--graph={remote_model}", f"--num_threads={options.threads}",
                 f"--warmup_runs={options.warmup_min_runs}", f"--warmup_min_secs={options.warmup_min_time_s:g}",
                 f"--num_runs={options.min_runs}", f"--min_secs={options.min_time_s:g}",
                 "--enable_op_profiling=false", "--report_peak_memory_footprint=true"]
        command = " ".join(([f"taskset {mask}"] if mask else []) + [shlex.quote(self.benchmark_binary)]
                           + [shlex.quote(f) for f in flags])
        config = options.energy_config
        source = options.energy_source
        supply = str(config.get("battery_supply") or "battery")
        if source == "auto":
            try:
                self._battery_sample(device, supply)
                source = "battery"
            except DeviceError:
                source = "model"
        if source not in ("battery", "model"):
            raise ValueError(f"energy source {source!r} is not available over adb in benchmark_model mode "
                             f"(use 'battery', 'model' or 'auto')")
        interval = float(config.get("sample_interval_s") or 0.1)
        idle: List[Tuple[float, float]] = []
        if source == "battery":
            idle_s = float(config.get("idle_s") if config.get("idle_s") is not None else 1.0)
            end = time.monotonic() + idle_s
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
                outcome["result"] = self._shell(device, command)
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
            power = float(config.get("active_power_w") or DEFAULT_ACTIVE_POWER_W)
            energy = model_energy(run_s * options.threads, run_s, count, power)
            energy["cpu_s_assumed"] = "threads x run time (benchmark_model reports no CPU time)"
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
            "threads": options.threads,
            "affinity": cores,
            "taskset_mask": mask,
            "warmup": {"runs": int(parsed["warmup_us"]["count"]),
                       "time_s": parsed["warmup_us"]["count"] * parsed["warmup_us"].get("avg", 0.0) / 1e6},
            "init_ms": parsed["init_us"] / 1000.0 if "init_us" in parsed else None,
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
        out, _, _ = self._shell(device, "getprop", timeout=30)
        return parse_getprop(out)
