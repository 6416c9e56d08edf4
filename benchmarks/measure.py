"""Measurement-layer benchmark: repeatability, overhead, cache-hit cost, ONNX Runtime vs LiteRT.

For three reference convnets (built inline with torch) on the host profiles it prints:

- repeatability: CV across 5 independent measurements of the median (target <= 3% for networks
  of 1 ms or more), with the profile's repeat policy (time at least min_time_s, then go on while
  the median's relative standard error is above target_rse, up to max_time_s) and, interleaved
  with it as the baseline, the same profile with a fixed min_time_s (no settling);
- overhead: wall time per measurement including export, divided by the timed inference time
  (target <= 3x), for the first measurement (exports) and the later ones (export cached);
- cache hit: wall time of ``measure()`` answered from the cache (target <= 20 ms);
- the ONNX Runtime / LiteRT median latency ratio;
- the spread of 5 separate ``gensynth profile --no-cache`` processes on one model
  ((max - min) / median; target <= 5%).

    python benchmarks/measure.py [--out results.json] [--repeats 5] [--profiles host-cpu,host-tflite]
                                 [--disturb | --while-training [--gap-s S]]

--disturb runs a load that comes and goes on every core during the repeatability runs (busy and
idle spells of 0.2-1.5 s at random), the kind of neighbour a shared machine has.

--while-training answers one question instead: what a training beside the measurements does to
them, with and without the host lease (hardware/host_lease.py). Each reference network is measured
`--repeats` times in three conditions, in one run: quiet (nothing beside it), `lease` (one demo-
sized training per core - the demo's trial command, `python -m nni_gensynth.trial --epochs 4
--image-size 16`, over and over - that yields at batch boundaries while a measurement holds the
host) and `no lease` (the same trainings with GENSYNTH_HOST_LEASE=off). The measurements are
`--gap-s` seconds apart (default 5), as a demo's are: back to back, the lease would hold the host
throughout and no training would finish; the quiet ones are spaced the same way, so the three
conditions differ by the trainings alone. They run in `--repeats` rounds, each measuring every
network once per condition in a rotating order, so a drift of the machine over the run does not
read as one condition's spread. Targets: with the lease,
the CV of the medians at most 1.5x the quiet one (the geometric mean of that ratio over the
network/runtime pairs; the per-pair checks are printed too), and the median RSE at most 3%. It also reports
what the lease costs the trainings (their mean duration with and without it).

Uses a fresh cache directory (so the first measurement really exports) unless --cache-dir is given.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_CV = 0.03
TARGET_OVERHEAD = 3.0
TARGET_CACHE_HIT_MS = 20.0
TARGET_PROCESS_SPREAD = 0.05
INPUT_SHAPE = (1, 3, 32, 32)


def reference_networks() -> Dict[str, Any]:
    """Three plain convnets of increasing cost at 32x32 (roughly 0.3, 1.5 and 6 ms on one x86 core)."""
    from torch import nn

    def convnet(widths: List[int], blocks_per_stage: int) -> nn.Module:
        layers: List[nn.Module] = []
        channels = 3
        for stage, width in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if block == 0 and stage > 0 else 1
                layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                           nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
        return nn.Sequential(*layers).eval()

    return {"small": convnet([32, 64, 128], 2), "medium": convnet([64, 128, 256], 2),
            "large": convnet([128, 256, 512], 2)}


def timed_s(m: Any) -> float:
    return sum(m.samples_ms) / 1000.0


def fixed_time_policy(profile: Any) -> Any:
    """The profile with its repeat policy cut back to a fixed min_time_s (the baseline)."""
    from dataclasses import replace

    return replace(profile, repeat=replace(profile.repeat, target_rse=None, max_time_s=None))


def bench_network(name: str, net: Any, profile: Any, repeats: int) -> Dict[str, Any]:
    from nni_gensynth.device import stats
    from nni_gensynth.hardware import measure

    start = time.perf_counter()
    first = measure(net, profile, input_shape=INPUT_SHAPE, use_cache=False)  # exports
    first_wall = time.perf_counter() - start
    baseline = fixed_time_policy(profile)
    runs, fixed = [], []
    for _ in range(repeats):  # interleaved, so both policies meet the same conditions
        start = time.perf_counter()
        m = measure(net, profile, input_shape=INPUT_SHAPE, use_cache=False)  # export cached on disk
        runs.append((m, time.perf_counter() - start))
        fixed.append(measure(net, baseline, input_shape=INPUT_SHAPE, use_cache=False).median_ms)
    hits = []
    for _ in range(5):
        start = time.perf_counter()
        hit = measure(net, profile, input_shape=INPUT_SHAPE)
        hits.append((time.perf_counter() - start) * 1000.0)
        assert hit.from_cache
    medians = [m.median_ms for m, _ in runs]
    cpu_medians = [m.cpu_median_ms for m, _ in runs if m.cpu_median_ms is not None]
    overheads = [wall / timed_s(m) for m, wall in runs]
    return {
        "network": name, "profile": profile.name, "runtime": first.spec.runtime,
        "median_ms": statistics.median(medians), "medians_ms": medians,
        "cv_of_medians": stats.cv(medians),
        "fixed_medians_ms": fixed, "cv_of_fixed_medians": stats.cv(fixed),
        "cpu_median_ms": statistics.median(cpu_medians) if cpu_medians else None,
        "cv_of_cpu_medians": stats.cv(cpu_medians) if cpu_medians else None,
        "within_run_robust_cv": statistics.median(m.robust_cv for m, _ in runs),
        "median_rse": statistics.median(m.median_rse for m, _ in runs),
        "timed_s": [round(timed_s(m), 2) for m, _ in runs],
        "first_wall_s": first_wall, "first_timed_s": timed_s(first), "first_overhead": first_wall / timed_s(first),
        "wall_s": statistics.median(w for _, w in runs), "overhead": statistics.median(overheads),
        "cache_hit_ms": statistics.median(hits),
        "energy_mj": statistics.median(m.energy_mj for m, _ in runs), "energy_source": first.energy_source,
        "peak_mem_mb": statistics.median(m.peak_mem_mb for m, _ in runs),
    }


def bench_processes(model_path: Path, profile: str, count: int, env: Dict[str, str],
                    extra_args: Sequence[str] = (), spacing_s: float = 0.0) -> Dict[str, Any]:
    """`count` separate `gensynth profile --no-cache` processes on one model (`extra_args`: more
    options, e.g. --input-shape for a parameter-dict JSON), and the spread of their medians;
    with `spacing_s`, each starts that long after the one before it started (back to back when
    one takes longer), so the set also samples how the machine drifts over minutes."""
    latencies, cpu_latencies, walls, starts = [], [], [], []
    first = time.perf_counter()
    for i in range(count):
        time.sleep(max(0.0, first + i * spacing_s - time.perf_counter()))
        start = time.perf_counter()
        starts.append(round(start - first, 1))
        out = subprocess.run([sys.executable, "-m", "nni_gensynth.cli", "profile", str(model_path), "--profile", profile,
                              "--no-cache", "--json", *extra_args], capture_output=True, text=True, env=env,
                             timeout=600)
        walls.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise RuntimeError(f"gensynth profile failed: {out.stderr.strip()[-500:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        latencies.append(result["latency_ms"])
        cpu_latencies.append(result["latency_cpu_ms"])
    return {"model": model_path.name, "profile": profile, "latencies_ms": latencies, "spread": spread(latencies),
            "cpu_latencies_ms": cpu_latencies, "cpu_spread": spread(cpu_latencies) if all(cpu_latencies) else None,
            "process_wall_s": statistics.median(walls), "started_s": starts}


DISTURBER = """
import random, time
rng = random.Random({seed})
while True:
    end = time.perf_counter() + rng.uniform(0.2, 1.5)
    while time.perf_counter() < end:
        pass
    time.sleep(rng.uniform(0.2, 1.5))
"""


def start_disturbers() -> List[subprocess.Popen]:
    """One process per core alternating busy and idle spells of random length."""
    return [subprocess.Popen([sys.executable, "-c", DISTURBER.format(seed=i)]) for i in range(os.cpu_count() or 1)]


TRAINER = """
import json, sys, time
from nni_gensynth import trial
parameters, log = sys.argv[1], sys.argv[2]
while True:
    start = time.perf_counter()
    trial.main(["--parameters", parameters, *json.loads(sys.argv[3])])
    with open(log, "a") as out:
        out.write(f"{time.perf_counter() - start:.3f}\\n")
"""
DEMO_TRIAL_ARGS = ["--epochs", "4", "--image-size", "16", "--no-progress"]  # examples/gensynth.yml's trials
DEMO_SPACE = REPO / "search_spaces" / "mobilenet_macro.json"
TARGET_LEASE_SPREAD = 1.5  # with the lease: CV of medians at most this times the quiet CV
TARGET_RSE = 0.03
MEASURE_GAP_S = 5.0  # between measurements beside trainings: a demo measures now and then, not back to back
CONDITIONS = (("quiet", None), ("lease", "on"), ("no lease", "off"))


def demo_parameters() -> Dict[str, Any]:
    """One network of the demo's search space (a fixed sample of the untaught generator)."""
    import numpy as np
    from nni_gensynth.engine import SearchSpace
    from nni_gensynth.engine.generator import Generator

    space = SearchSpace(json.loads(DEMO_SPACE.read_text()))
    return space.to_parameters(Generator(space).sample(np.random.default_rng(0)))


def start_trainers(parameters: Dict[str, Any], log: Path) -> List[subprocess.Popen]:
    """One demo-sized training loop per core (this process's environment, lease setting
    included), its durations appended to `log`."""
    command = [sys.executable, "-c", TRAINER, json.dumps(parameters), str(log), json.dumps(DEMO_TRIAL_ARGS)]
    trainers = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(os.cpu_count() or 1)]
    time.sleep(8.0)  # imports and data: let them be training before the first measurement
    return trainers


def while_training(networks: Dict[str, Any], profiles: List[Any], repeats: int,
                   gap_s: float = MEASURE_GAP_S) -> Dict[str, Any]:
    """Medians of every (network, profile) quiet, beside trainings with the lease, and without,
    in `repeats` rounds: each round measures every pair once in each condition, the conditions'
    order rotating from round to round. So a slow drift of the machine itself falls on all three
    conditions alike; measured in one block per condition, it reads as one condition's spread
    (2026-12-03: the large network's five lease medians fell steadily from 8.21 to 7.77 ms while
    nothing beside them differed). Each measurement is followed by `gap_s` seconds without one
    (in every condition): back to back, the lease would hold the host and no training would move."""
    from nni_gensynth.device import stats

    parameters = demo_parameters()
    runs: Dict[tuple, Dict[str, List[Any]]] = {}
    trainings: Dict[str, List[float]] = {condition: [] for condition, lease in CONDITIONS if lease}
    for round_ in range(repeats):
        shift = round_ % len(CONDITIONS)
        for condition, lease in CONDITIONS[shift:] + CONDITIONS[:shift]:
            print(f"round {round_ + 1}/{repeats}, {condition} ...", file=sys.stderr, flush=True)
            block, durations = measure_block(networks, profiles, lease, parameters, gap_s)
            for key, measurement in block.items():
                runs.setdefault(key, {}).setdefault(condition, []).append(measurement)
            if lease:
                trainings[condition] += durations
    rows = []
    for (name, profile), by_condition in runs.items():
        row: Dict[str, Any] = {"network": name, "profile": profile}
        for condition, measured in by_condition.items():
            medians = [m.median_ms for m in measured]
            row[condition] = {"medians_ms": medians, "median_ms": statistics.median(medians),
                              "cv_of_medians": stats.cv(medians),
                              "median_rse": statistics.median(m.median_rse for m in measured)}
        rows.append(row)
    return {"rows": rows, "training_s": trainings, "gap_s": gap_s, "rounds": repeats,
            "trainer_args": DEMO_TRIAL_ARGS, "trainer_parameters": parameters}


def measure_block(networks: Dict[str, Any], profiles: List[Any], lease: Optional[str],
                  parameters: Dict[str, Any], gap_s: float) -> Tuple[Dict[tuple, Any], List[float]]:
    """Every (network, profile) measured once in one condition - no trainings (`lease` None) or
    one training per core with the lease `on`/`off` - and the durations of the trainings that
    finished meanwhile."""
    from nni_gensynth.hardware import measure
    from nni_gensynth.hardware.host_lease import LEASE_ENV

    os.environ[LEASE_ENV] = lease or "on"  # for this process's measurements and the trainers
    log = Path(tempfile.mkstemp(prefix="gensynth-trainer-", suffix=".log")[1])
    trainers = start_trainers(parameters, log) if lease else []
    block: Dict[tuple, Any] = {}
    try:
        for name, net in networks.items():
            for profile in profiles:
                block[(name, profile.name)] = measure(net, profile, input_shape=INPUT_SHAPE, use_cache=False)
                time.sleep(gap_s)  # quiet too: the conditions differ by the trainings alone
    finally:
        for process in trainers:
            process.kill()
            process.wait()
        os.environ.pop(LEASE_ENV, None)
        durations = [float(x) for x in log.read_text().split()]
        log.unlink()
    return block, durations


def cv_ratio(row: Dict[str, Any], condition: str) -> float:
    """The CV of one row's medians in `condition` as a multiple of its quiet CV."""
    return row[condition]["cv_of_medians"] / max(row["quiet"]["cv_of_medians"], 1e-12)


def print_while_training(result: Dict[str, Any]) -> List[tuple]:
    """The side-by-side table, the trainings' cost, and the target checks."""
    names = [c for c, _ in CONDITIONS]
    header = f"{'network':8} {'profile':12} " + " ".join(f"{c + ' ms':>12} {c + ' CV':>11} {c + ' RSE':>12}"
                                                     for c in names) + f" {'lease/quiet CV':>14}"
    print(header)
    print("-" * len(header))
    checks = []
    for r in result["rows"]:
        ratio = cv_ratio(r, "lease")
        print(f"{r['network']:8} {r['profile']:12} " + " ".join(
            f"{r[c]['median_ms']:12.4f} {r[c]['cv_of_medians']:11.2%} {r[c]['median_rse']:12.2%}" for c in names)
            + f" {ratio:13.2f}x")
        checks.append((f"with the lease, CV <= {TARGET_LEASE_SPREAD}x quiet ({r['network']}, {r['profile']})",
                       ratio <= TARGET_LEASE_SPREAD))
        checks.append((f"with the lease, median RSE <= 3% ({r['network']}, {r['profile']})",
                       r["lease"]["median_rse"] <= TARGET_RSE))
    for condition in ("lease", "no lease"):
        ratios = [cv_ratio(r, condition) for r in result["rows"]]
        offsets = [r[condition]["median_ms"] / r["quiet"]["median_ms"] - 1.0 for r in result["rows"]]
        pooled = math.exp(statistics.mean(math.log(max(x, 1e-12)) for x in ratios))
        print(f"{condition}: CV / quiet CV {min(ratios):.2f}x to {max(ratios):.2f}x, geometric mean {pooled:.2f}x; "
              f"median vs quiet {min(offsets):+.1%} to {max(offsets):+.1%}")
        if condition == "lease":
            checks.append((f"with the lease, CV <= {TARGET_LEASE_SPREAD}x quiet, geometric mean over the "
                           f"{len(ratios)} pairs (the per-pair ratio of two CVs of 5 is too noisy to judge alone)",
                           pooled <= TARGET_LEASE_SPREAD))
    for condition, durations in result["training_s"].items():
        mean = statistics.mean(durations) if durations else float("nan")
        print(f"trainings beside the measurements, {condition}: {len(durations)} finished, mean {mean:.1f} s")
    return checks


def spread(values: List[float]) -> float:
    """(max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profiles", default="host-cpu,host-tflite")
    parser.add_argument("--cache-dir", default=None, help="default: a fresh temporary directory")
    parser.add_argument("--disturb", action="store_true",
                        help="run a load that comes and goes on every core during the repeatability runs")
    parser.add_argument("--while-training", action="store_true",
                        help="only: the networks measured quiet, beside demo trainings with the host lease, and without")
    parser.add_argument("--gap-s", type=float, default=MEASURE_GAP_S,
                        help=f"--while-training: seconds between measurements beside trainings (default {MEASURE_GAP_S})")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be >= 2")
    if not 0 <= args.gap_s <= 600:
        parser.error("--gap-s must be between 0 and 600")
    if args.while_training and args.disturb:
        parser.error("--while-training and --disturb are separate experiments")

    cache = args.cache_dir or tempfile.mkdtemp(prefix="gensynth-bench-")
    os.environ["GENSYNTH_CACHE_DIR"] = cache
    from nni_gensynth.hardware import load_profile
    from nni_gensynth.hardware.export import export_onnx

    start = time.perf_counter()
    import litert_torch  # noqa: F401  one-time import cost, reported apart from per-measurement overhead
    import torch.onnx  # noqa: F401
    import_s = time.perf_counter() - start

    load_before = os.getloadavg()[0]
    networks = reference_networks()
    profiles = [load_profile(p) for p in args.profiles.split(",")]
    if args.while_training:
        if any(p.transport.kind != "local" for p in profiles):
            parser.error("--while-training measures on this host: give local --profiles (host-cpu, host-tflite)")
        result = while_training(networks, profiles, args.repeats, args.gap_s)
        print(f"\n1-min load average {load_before:.1f} before the quiet runs; {os.cpu_count()} cores; "
              f"{args.repeats} rounds, one measurement per condition each, {args.gap_s:g} s apart "
              "(in every condition), the conditions' order rotating; "
              "trainings: python -m nni_gensynth.trial "
              + " ".join(DEMO_TRIAL_ARGS) + "\n")
        checks = print_while_training(result)
        print("\ntargets:")
        for label, ok in checks:
            print(f"  [{'ok' if ok else 'MISS'}] {label}")
        if args.out:
            args.out.write_text(json.dumps(dict(result, targets={label: ok for label, ok in checks},
                                                cpu_count=os.cpu_count(), load_avg_before=load_before), indent=2))
            print(f"\nwrote {args.out}")
        return 0
    rows = []
    disturbers = start_disturbers() if args.disturb else []
    try:
        for name, net in networks.items():
            for profile in profiles:
                print(f"measuring {name} on {profile.name} ...", file=sys.stderr, flush=True)
                rows.append(bench_network(name, net, profile, args.repeats))
    finally:
        for process in disturbers:
            process.kill()
            process.wait()

    onnx_profile = next((p for p in profiles if p.backend == "onnxruntime"), None)
    processes = None
    if onnx_profile is not None:
        model = export_onnx(networks["medium"], INPUT_SHAPE)
        print(f"running 5 gensynth profile --no-cache processes on {model.name} ...", file=sys.stderr, flush=True)
        processes = bench_processes(model, onnx_profile.name, 5, dict(os.environ))

    ratios = {}
    for name in networks:
        by_backend = {r["runtime"].split()[0]: r["median_ms"] for r in rows if r["network"] == name}
        lite = by_backend.get("ai_edge_litert") or by_backend.get("tflite_runtime")
        if "onnxruntime" in by_backend and lite:
            ratios[name] = by_backend["onnxruntime"] / lite

    load_after = os.getloadavg()[0]
    print(f"\nexporter import (once per process): {import_s:.2f} s; cache: {cache}")
    if args.disturb:
        print("--disturb: a load that came and went on every core during the repeatability runs")
    print(f"1-min load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores "
          f"(other programs on the machine inflate wall-time figures; CPU-time columns are immune)\n")
    header = (f"{'network':8} {'profile':12} {'median ms':>10} {'CV(5 med)':>9} {'fixed CV':>8} {'cpu ms':>8} {'CV cpu':>7} "
              f"{'rCV in-run':>10} {'RSE':>6} {'timed s':>11} "
              f"{'1st wall s':>10} {'1st ovh':>7} {'wall s':>7} {'overhead':>8} {'hit ms':>7} {'mJ/inf':>8} {'MB':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        cpu_ms = "n/a" if r["cpu_median_ms"] is None else f"{r['cpu_median_ms']:.4f}"
        cpu_cv = "n/a" if r["cv_of_cpu_medians"] is None else f"{r['cv_of_cpu_medians']:.2%}"
        print(f"{r['network']:8} {r['profile']:12} {r['median_ms']:10.4f} {r['cv_of_medians']:9.2%} "
              f"{r['cv_of_fixed_medians']:8.2%} {cpu_ms:>8} {cpu_cv:>7} "
              f"{r['within_run_robust_cv']:10.2%} {r['median_rse']:6.2%} "
              f"{min(r['timed_s']):5.1f}-{max(r['timed_s']):<5.1f} {r['first_wall_s']:10.2f} {r['first_overhead']:6.2f}x "
              f"{r['wall_s']:7.2f} {r['overhead']:7.2f}x {r['cache_hit_ms']:7.2f} {r['energy_mj']:8.4f} "
              f"{r['peak_mem_mb']:6.1f}")
    print()
    for name, ratio in ratios.items():
        print(f"ONNX Runtime / LiteRT latency ratio, {name}: {ratio:.2f}")
    if processes:
        print(f"5 separate gensynth profile --no-cache runs ({processes['model']}, {processes['profile']}): "
              + ", ".join(f"{x:.4f}" for x in processes["latencies_ms"])
              + f" ms; spread {processes['spread']:.2%}"
              + ("" if processes["cpu_spread"] is None else f" (CPU time: spread {processes['cpu_spread']:.2%})"))

    checks = []
    for r in rows:
        if r["median_ms"] >= 1.0:
            checks.append((f"CV <= 3% ({r['network']}, {r['profile']})", r["cv_of_medians"] <= TARGET_CV))
        checks.append((f"overhead <= 3x incl. export ({r['network']}, {r['profile']})",
                       r["first_overhead"] <= TARGET_OVERHEAD))
        checks.append((f"overhead <= 3x, export cached ({r['network']}, {r['profile']})",
                       r["overhead"] <= TARGET_OVERHEAD))
        checks.append((f"cache hit <= 20 ms ({r['network']}, {r['profile']})", r["cache_hit_ms"] <= TARGET_CACHE_HIT_MS))
    if processes:
        checks.append(("5 processes agree within 5%", processes["spread"] <= TARGET_PROCESS_SPREAD))
    print("\ntargets:")
    for label, ok in checks:
        print(f"  [{'ok' if ok else 'MISS'}] {label}")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "ratios": ratios, "processes": processes,
                                        "exporter_import_s": import_s, "load_avg_before": load_before,
                                        "load_avg_after": load_after, "cpu_count": os.cpu_count(),
                                        "disturb": args.disturb,
                                        "targets": {label: ok for label, ok in checks}}, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
