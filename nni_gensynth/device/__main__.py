"""Command line of the device runner; prints one JSON object as the last stdout line.

    python -m nni_gensynth.device measure --model PATH --backend onnxruntime|litert --threads N
        [--affinity 0,1|big] [--delegate xnnpack|none] [--warmup-min-time-s 1.0 --warmup-min-runs 10]
        [--min-time-s 2.0 --min-runs 30 --max-runs 10000] [--max-time-s 6.0 --target-rse 0.01]
        [--energy-source auto|rapl|battery|pmic|ina219|model] [--energy-config JSON] [--sysfs-root /]
    python -m nni_gensynth.device info [--sysfs-root /]

Success: {"ok": true, "samples_ms": [...], ...}; failure: {"ok": false, "error": "..."} and exit 1.
A success always has a positive ``energy.energy_mj`` (a meter that cannot resolve one is an error),
and ``emulated``: true under an emulator (qemu-user), with the reason in ``warnings``; ``delegate``
says which delegate really took the graph ({"requested", "applied", "delegated_kernels", "nodes"}).
With --threads 1 the answer also has "cpu_samples_ms": the measuring thread's CPU time per
inference (null otherwise). With $GENSYNTH_RUNNER_PARENT_PID set (the local transport sets it),
the runner exits when that process is gone.
Every answer has ``wall_start_s`` / ``wall_end_s``: when the run started and ended on the device's
wall clock. The --lease-* options and --exit-on-stdin-eof serve a leased run (see ``lease``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

from . import emulation, energy, lease, runner, stats, system
from .protocol import BACKENDS, ENERGY_SOURCES, PARENT_PID_ENV, RUNNER_DELEGATES


class _JsonArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as the runner's JSON failure line, so callers parse one format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        _emit({"ok": False, "error": f"usage: {message}"})
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _JsonArgumentParser(prog="python -m nni_gensynth.device", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_JsonArgumentParser)
    measure = sub.add_parser("measure", help="time (and meter) one model")
    measure.add_argument("--model", required=True)
    measure.add_argument("--backend", required=True, choices=BACKENDS)
    measure.add_argument("--threads", type=int, default=1)
    measure.add_argument("--affinity", default=None, help="'big' or comma-separated core ids")
    measure.add_argument("--delegate", default=None, choices=RUNNER_DELEGATES,
                         help="LiteRT delegate (default: the runtime's own, XNNPACK)")
    measure.add_argument("--warmup-min-time-s", type=float, default=1.0)
    measure.add_argument("--warmup-min-runs", type=int, default=10)
    measure.add_argument("--min-time-s", type=float, default=2.0)
    measure.add_argument("--min-runs", type=int, default=30)
    measure.add_argument("--max-runs", type=int, default=10000)
    measure.add_argument("--target-rse", type=float, default=None,
                         help="keep timing while the median's relative standard error is above this")
    measure.add_argument("--max-time-s", type=float, default=None, help="timing limit with --target-rse")
    measure.add_argument("--energy-source", default="auto", choices=ENERGY_SOURCES)
    measure.add_argument("--energy-config", default="{}", help="JSON object of energy settings")
    measure.add_argument("--sysfs-root", default="/")
    # a leased run (nni_gensynth.device.lease): the shell that started it holds the lease as fd 9
    measure.add_argument("--lease-log", default=None, help="append this run's start/end to this file")
    measure.add_argument("--lease-holder", default="", help="who holds the lease (for the log)")
    measure.add_argument("--lease-deadline-s", type=float, default=None, help="exit after this many seconds")
    measure.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (host gone)")
    info = sub.add_parser("info", help="print device facts")
    info.add_argument("--sysfs-root", default="/")
    return parser


def measure(args: argparse.Namespace) -> Dict[str, Any]:
    """Run the whole measurement described by ``args``; return the result dict."""
    try:
        energy_config = json.loads(args.energy_config)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--energy-config is not valid JSON: {exc}") from None
    if not isinstance(energy_config, dict):
        raise ValueError("--energy-config must be a JSON object")
    for name in ("min_time_s", "warmup_min_time_s", "target_rse", "max_time_s"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    if args.min_time_s < 0 or args.warmup_min_time_s < 0 or args.warmup_min_runs < 0:
        raise ValueError("--min-time-s, --warmup-min-time-s and --warmup-min-runs must be >= 0")
    if args.target_rse is not None and not 0.0 < args.target_rse < 1.0:
        raise ValueError(f"--target-rse must be in (0, 1), got {args.target_rse}")
    if args.max_time_s is not None and args.max_time_s < args.min_time_s:
        raise ValueError(f"--max-time-s ({args.max_time_s}) must be >= --min-time-s ({args.min_time_s})")
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"--model file not found: {args.model}")

    affinity = system.apply_affinity(system.resolve_affinity(args.affinity, args.sysfs_root))
    meter = energy.EnergyMeter(args.energy_source, energy_config, args.sysfs_root)
    runner.import_backend(args.backend)  # imported before the memory baseline
    meter.idle()
    thermal = system.ThermalWatch(args.sysfs_root).start()
    memory = system.MemoryTracker().start()
    model = runner.load_model(args.model, args.backend, args.threads, delegate=args.delegate)
    warm_runs, warm_s = runner.warm_up(model.run, args.warmup_min_time_s, args.warmup_min_runs)
    meter.start()
    cpu_samples: Optional[List[float]] = [] if args.threads == 1 else None
    samples = runner.time_runs(model.run, args.min_time_s, args.min_runs, args.max_runs, cpu_samples,
                               max_time_s=args.max_time_s, target_rse=args.target_rse)
    energy_result = energy.check_positive(meter.stop(len(samples)))
    peak_mem_mb = memory.stop()
    device = system.device_info(args.sysfs_root)
    emulator = device.get("emulation")  # which emulator, and what shows it (None on real hardware)
    return {
        "ok": True,
        "samples_ms": samples,
        "summary_ms": stats.summarize(samples),
        "cpu_samples_ms": cpu_samples,
        "backend": args.backend,
        "runtime": model.runtime,
        "threads": args.threads,
        "affinity": affinity,
        "input_shapes": [list(s) for s in model.input_shapes],
        "delegate": model.delegate or None,
        "warmup": {"runs": warm_runs, "time_s": warm_s},
        "peak_mem_mb": peak_mem_mb,
        "energy": energy_result,
        "thermal": thermal.stop(),
        "device": device,
        "emulated": emulator is not None,
        "warnings": [] if emulator is None else [emulation.warning(device["machine"], emulator)],
    }


def _emit(obj: Dict[str, Any]) -> None:
    sys.stdout.write("\n" + json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def _watch_parent() -> None:
    """Exit with the host process that started this runner, when it says which one it is."""
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit():
        system.exit_with_parent(int(parent))


def _leased_run(args: argparse.Namespace, started: float) -> Optional[lease.LeasedRun]:
    """The lease bookkeeping of a leased run (log, watchdogs), None for a plain run."""
    deadline = getattr(args, "lease_deadline_s", None)
    stdin_eof = getattr(args, "exit_on_stdin_eof", False)
    if getattr(args, "lease_log", None) is None and deadline is None and not stdin_eof:
        return None
    run = lease.LeasedRun(args.lease_log, args.lease_holder, started)
    run.watch(stdin_eof, deadline)
    return run


def _wall_times(started: float, leased: Optional[lease.LeasedRun], outcome: str) -> Dict[str, float]:
    """The run's start and end on the device's wall clock (logged too when leased)."""
    ended = leased.finish(outcome) if leased is not None else time.time()
    return {"wall_start_s": started, "wall_end_s": ended}


def main(argv: Optional[List[str]] = None) -> int:
    _watch_parent()
    started = time.time()
    args = build_parser().parse_args(argv)
    leased = _leased_run(args, started)
    try:
        if args.command == "info":
            result = {"ok": True, **system.device_info(args.sysfs_root)}
        else:
            result = measure(args)
    except Exception as exc:  # every failure becomes the JSON error line
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}", **_wall_times(started, leased, "failed")})
        return 1
    _emit({**result, **_wall_times(started, leased, "ok")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
