"""`gensynth profile MODEL --profile NAME`: measure one model on one device.

MODEL is an .onnx file, a .tflite file, or a parameter-dict JSON from a search space (built with
nni_gensynth.models.build_model). Prints a readable summary, or with --json one JSON object as the
last stdout line (latency_ms = median, latency_p90_ms, cv, energy_mj, energy_source, peak_mem_mb,
backend, device, ...). Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, List, Optional


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("profile", help="measure a model's latency, energy and memory on a device",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an .onnx, a .tflite, or a parameter-dict .json")
    parser.add_argument("--profile", required=True, help="hardware profile name (hw_profiles/) or .yml path")
    parser.add_argument("--no-cache", action="store_true", help="measure even if a cached result exists")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--input-shape", default=None, help="e.g. 1,3,32,32 (default: the profile's)")
    parser.add_argument("--builder", default=None, help="model builder for a parameter-dict JSON "
                        "(registered name or module:callable; default: the models package default)")
    parser.add_argument("--num-classes", type=int, default=10, help="classes of a built model (default 10)")
    return parser


class _Progress:
    """An elapsed-time line on stderr while a measurement runs (rewritten in place on a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tty = sys.stderr.isatty()

    def _loop(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(1.0):
            if self._tty:
                sys.stderr.write(f"\r{self.label} {time.monotonic() - start:4.0f} s")
                sys.stderr.flush()

    def __enter__(self) -> "_Progress":
        sys.stderr.write(f"{self.label} ..." + ("" if self._tty else "\n"))
        sys.stderr.flush()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self._tty:
            sys.stderr.write("\n")


def _load_model(path: Path, shape: Optional[List[int]], profile: Any, builder: Optional[str], num_classes: int) -> Any:
    """A model path as is, or the module a parameter-dict JSON describes."""
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix.lower() in (".onnx", ".tflite"):
        return path
    if path.suffix.lower() != ".json":
        raise ValueError(f"MODEL must be an .onnx, a .tflite or a parameter-dict .json, got {path.name}")
    try:
        parameters = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(parameters, dict) and isinstance(parameters.get("parameters"), dict):
        parameters = parameters["parameters"]  # an NNI trial's parameter file
    if not isinstance(parameters, dict):
        raise ValueError(f"{path} must hold a JSON object of architecture parameters")
    from ..models import build_model

    in_channels = (shape or list(profile.input_shape))[1]
    kwargs = {"builder": builder} if builder else {}
    return build_model(parameters, num_classes=num_classes, in_channels=in_channels, **kwargs)


def _print_human(measurement: Any, model: str) -> None:
    m = measurement.metrics()
    thermal = measurement.thermal
    temp = thermal.get("max_temp_c")
    throttled = thermal.get("throttled")
    print(f"model        {model}  (arch {measurement.spec.arch_hash})")
    print(f"device       {m['device']}  profile {m['profile']}  {m['runtime']}, "
          f"{measurement.spec.threads} thread(s){', from the cache' if measurement.from_cache else ''}")
    print(f"latency      median {m['latency_ms']:.4g} ms   p90 {m['latency_p90_ms']:.4g} ms   "
          f"IQR {m['latency_iqr_ms']:.3g} ms   CV {m['cv']:.1%} (robust {m['robust_cv']:.1%}), n={m['samples']}")
    if m.get("latency_cpu_ms") is not None:
        print(f"cpu time     median {m['latency_cpu_ms']:.4g} ms per inference (the measuring thread's CPU time: "
              f"what the latency would be with no other programs running)")
    print(f"energy       {m['energy_mj']:.4g} mJ per inference (source: {m['energy_source']})")
    print(f"peak memory  {m['peak_mem_mb']:.1f} MB")
    print(f"thermal      max {'n/a' if temp is None else f'{temp:.1f} C'}, throttled: "
          f"{'not reported' if throttled is None else ('yes' if throttled else 'no')}")
    for warning in measurement.warnings:
        print(f"warning      {warning}")


def run(args: argparse.Namespace) -> int:
    from ..hardware import load_profile, measure
    from ..hardware.shapes import parse_input_shape

    profile = load_profile(args.profile)
    shape = list(parse_input_shape(args.input_shape, name="--input-shape")) if args.input_shape else None
    if args.num_classes < 1:
        raise ValueError(f"--num-classes must be >= 1, got {args.num_classes}")
    model = _load_model(Path(args.model), shape, profile, args.builder, args.num_classes)
    with _Progress(f"gensynth profile: measuring {Path(args.model).name} on {profile.name}"):
        measurement = measure(model, profile, input_shape=shape, use_cache=not args.no_cache)
    if args.json:
        out = dict(measurement.metrics())
        out.update(arch_hash=measurement.spec.arch_hash, cached=measurement.from_cache,
                   warnings=list(measurement.warnings), thermal=dict(measurement.thermal),
                   energy=dict(measurement.energy))
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
    else:
        _print_human(measurement, args.model)
    return 0
