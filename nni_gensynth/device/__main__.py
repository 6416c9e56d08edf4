"""Command line of the device runner; prints one JSON object as the last stdout line.

    python -m nni_gensynth.device measure --model PATH --backend onnxruntime|litert --threads N
        [--affinity 0,1|big] [--warmup-min-time-s 1.0 --warmup-min-runs 10]
        [--min-time-s 2.0 --min-runs 30 --max-runs 10000] [--max-time-s 6.0 --target-rse 0.01]
        [--energy-source auto|rapl|battery|pmic|ina219|model] [--energy-config JSON] [--sysfs-root /]
    python -m nni_gensynth.device info [--sysfs-root /]

Success: {"ok": true, "samples_ms": [...], ...}; failure: {"ok": false, "error": "..."} and exit 1.
With --threads 1 the answer also has "cpu_samples_ms": the measuring thread's CPU time per
inference (null otherwise).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

from . import energy, runner, stats, system


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
    measure.add_argument("--backend", required=True, choices=runner.BACKENDS)
    measure.add_argument("--threads", type=int, default=1)
    measure.add_argument("--affinity", default=None, help="'big' or comma-separated core ids")
    measure.add_argument("--warmup-min-time-s", type=float, default=1.0)
    measure.add_argument("--warmup-min-runs", type=int, default=10)
    measure.add_argument("--min-time-s", type=float, default=2.0)
    measure.add_argument("--min-runs", type=int, default=30)
    measure.add_argument("--max-runs", type=int, default=10000)
    measure.add_argument("--target-rse", type=float, default=None,
                         help="keep timing while the median's relative standard error is above this")
    measure.add_argument("--max-time-s", type=float, default=None, help="timing limit with --target-rse")
    measure.add_argument("--energy-source", default="auto", choices=energy.SOURCES)
    measure.add_argument("--energy-config", default="{}", help="JSON object of energy settings")
    measure.add_argument("--sysfs-root", default="/")
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
    model = runner.load_model(args.model, args.backend, args.threads)
    warm_runs, warm_s = runner.warm_up(model.run, args.warmup_min_time_s, args.warmup_min_runs)
    meter.start()
    cpu_samples: Optional[List[float]] = [] if args.threads == 1 else None
    samples = runner.time_runs(model.run, args.min_time_s, args.min_runs, args.max_runs, cpu_samples,
                               max_time_s=args.max_time_s, target_rse=args.target_rse)
    energy_result = meter.stop(len(samples))
    peak_mem_mb = memory.stop()
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
        "warmup": {"runs": warm_runs, "time_s": warm_s},
        "peak_mem_mb": peak_mem_mb,
        "energy": energy_result,
        "thermal": thermal.stop(),
        "device": system.device_info(args.sysfs_root),
    }


def _emit(obj: Dict[str, Any]) -> None:
    sys.stdout.write("\n" + json.dumps(obj, allow_nan=False) + "\n")
    sys.stdout.flush()


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            result = {"ok": True, **system.device_info(args.sysfs_root)}
        else:
            result = measure(args)
    except Exception as exc:  # every failure becomes the JSON error line
        _emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
