"""The tuner at farm scale, by simulation: W trial workers, D measurement devices, one real tuner.

The real GenSynth tuner (and measure-first regularized evolution, the strongest baseline of
benchmarks/nb201.py) driven through the NNI Tuner API by a discrete-event simulation of a farm
(benchmarks/nb201_lib/farm.py): accuracy and Raspberry Pi 4 latency from the NAS-Bench-201 table,
training and measuring durations from a stated model (the table has no training times; see
`FarmModel`). Simulated time decides who waits for whom; suggestion times are this machine's wall
time, so quote them only from a run alone on the CPU.

Tuners: `gensynth` (as shipped: each suggestion measures its candidates one after another),
`gensynth-ahead` (devices with nothing to measure screen the tuner's next candidates), `mf-re`.

Reports per (W, tuner): best feasible accuracy after 200 and 1,000 trainings (median over seeds),
device and worker utilisation, measurements per training; and the median suggestion time at
1,000 / 5,000 / 10,000 results from one long run (`--long-run`).

    .venv/bin/python benchmarks/scale.py                                  # W = 1 8 64 256, 3 seeds
    .venv/bin/python benchmarks/scale.py --workers 8 --trainings 200 --seeds 1 --long-run 0   # quick look
    .venv/bin/python benchmarks/scale.py --workers 256 --seeds 0 --long-run 10000 \
        --out benchmarks/results/scale-latency.json --markdown benchmarks/results/scale-latency.md  # timing only
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.nb201_lib.farm import FARM_TUNERS, FarmModel, FarmRun, median_ms_at, simulate  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results"
QUALITY_AT = (200, 1000)
LATENCY_AT = (1000, 5000, 10000)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 64, 256], help="W values")
    parser.add_argument("--workers-per-device", type=int, default=8,
                        help="D = max(1, W / this) devices for W workers (default 8)")
    parser.add_argument("--tuners", nargs="+", default=list(FARM_TUNERS), choices=FARM_TUNERS)
    parser.add_argument("--trainings", type=int, default=1000, help="trainings per run (default 1000)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 0..N-1 per (W, tuner) (default 3; 0: only the timed --long-run)")
    parser.add_argument("--long-run", type=int, default=10000,
                        help="trainings of the one run timed for suggestion latency (W = max(--workers), "
                             "gensynth-ahead); 0 to skip (default 10000)")
    parser.add_argument("--train-s", type=float, default=FarmModel.train_s,
                        help="simulated training seconds of a median-latency network")
    parser.add_argument("--measure-overhead-s", type=float, default=FarmModel.measure_overhead_s,
                        help="simulated seconds a measurement takes besides its timed runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "scale.md")
    args = parser.parse_args(argv)
    if min(args.workers) < 1 or args.workers_per_device < 1 or args.trainings < 1:
        parser.error("--workers, --workers-per-device and --trainings must be >= 1")
    if args.seeds < 0 or args.long_run < 0:
        parser.error("--seeds and --long-run must be >= 0")
    if args.seeds == 0 and args.long_run == 0:
        parser.error("nothing to run: --seeds 0 runs only the timed --long-run, which is 0")
    if not (args.train_s > 0 and args.measure_overhead_s >= 0):
        parser.error("--train-s must be > 0 and --measure-overhead-s >= 0")
    return args


def farm_model(workers: int, args: argparse.Namespace) -> FarmModel:
    return FarmModel(workers=workers, devices=max(1, workers // args.workers_per_device), train_s=args.train_s,
                     measure_overhead_s=args.measure_overhead_s)


def _median(values: list[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(runs: list[FarmRun]) -> dict:
    """One (W, tuner) cell over its seeds."""
    trainings = runs[0].trainings
    return {
        "workers": runs[0].workers, "devices": runs[0].devices, "tuner": runs[0].tuner,
        "seeds": [r.seed for r in runs],
        "best_feasible": {str(n): _median([r.best_feasible(n) for r in runs])
                          for n in ([n for n in QUALITY_AT if n <= trainings] or [trainings])},
        "per_seed_best": [r.best_feasible(trainings) for r in runs],
        "device_utilisation": _median([r.device_utilisation() for r in runs]),
        "device_utilisation_before_dry": _median([r.device_utilisation_before_dry() for r in runs]),
        "ran_dry_hours": _median([None if r.ran_dry_s is None else r.ran_dry_s / 3600 for r in runs]),
        "distinct_measured_at_dry": _median([r.distinct_measured_at_dry for r in runs]),
        "worker_utilisation": _median([r.worker_utilisation() for r in runs]),
        "measurements_per_training": _median([(r.measurements_in_suggestions + r.measurements_ahead) / trainings
                                              for r in runs]),
        "median_suggestion_ms": _median([statistics.median(ms for _, ms in r.suggest_ms) for r in runs]),
        "simulated_hours": _median([r.makespan_s / 3600 for r in runs]),
        "wall_s": _median([r.wall_s for r in runs]),
    }


def _cell(value: Optional[float], spec: str) -> str:
    return "none" if value is None else format(value, spec)


def _dry_cell(c: dict) -> str:
    """Screening ahead only: device utilisation until the tuner had nothing left to screen."""
    if c.get("device_utilisation_before_dry") is None:
        return "n/a"
    if c.get("ran_dry_hours") is None:
        return f"{c['device_utilisation_before_dry']:.1%} (never ran out)"
    return (f"{c['device_utilisation_before_dry']:.1%} ({c['ran_dry_hours']:.1f} h; "
            f"{_cell(c['distinct_measured_at_dry'], ',.0f')} cells)")


def markdown(cells: list[dict], latency: Optional[dict], model_text: str, command: str) -> str:
    lines = [f"`{command}`", ""]
    if cells:
        lines += [model_text, ""] + _cells_table(cells)
    if latency:
        lines += ["", f"Suggestion wall time, one run of {latency['trainings']} trainings "
                      f"({latency['tuner']}, W = {latency['workers']}, D = {latency['devices']}):", "",
                  "| results known | median ms per suggestion | median ms per screening request |", "|---|---|---|"]
        for n, row in latency["at"].items():
            lines.append(f"| {n} | {_cell(row['suggestion_ms'], '.1f')} | {_cell(row['screening_ms'], '.1f')} |")
    return "\n".join(lines) + "\n"


def _cells_table(cells: list[dict]) -> list[str]:
    budgets = sorted({int(n) for c in cells for n in c["best_feasible"]})
    lines = ["| W | D | tuner | " + " | ".join(f"best feasible @{n} (%)" for n in budgets)
             + " | device util. | device util. until nothing was left to screen (h when; cells measured by then)"
             " | worker util. | measurements / training | median suggestion ms | simulated h |",
             "|---|---|---|" + "---|" * (len(budgets) + 6)]
    for c in cells:
        lines.append(f"| {c['workers']} | {c['devices']} | {c['tuner']} | "
                     + " | ".join(_cell(c["best_feasible"].get(str(n)), ".2f") for n in budgets)
                     + f" | {_cell(c['device_utilisation'], '.1%')} | {_dry_cell(c)} | {_cell(c['worker_utilisation'], '.1%')}"
                     f" | {_cell(c['measurements_per_training'], '.2f')} | {_cell(c['median_suggestion_ms'], '.1f')}"
                     f" | {_cell(c['simulated_hours'], '.1f')} |")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    command = "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.time()
    cells, raw = [], []
    total = len(args.workers) * len(args.tuners) * args.seeds * args.trainings + args.long_run
    with tqdm(total=total, unit="training", desc="farm", file=sys.stderr) as bar:
        for workers in (args.workers if args.seeds else []):
            model = farm_model(workers, args)
            for tuner in args.tuners:
                runs = []
                for seed in range(args.seeds):
                    bar.set_postfix(W=workers, tuner=tuner, seed=seed)
                    runs.append(simulate(tuner, seed, model, args.trainings, progress=bar))
                cells.append(summarise(runs))
                raw += [{k: v for k, v in asdict(r).items() if k not in ("suggest_ms", "screen_ms")} for r in runs]
                print(json.dumps(cells[-1]), flush=True)
        latency = None
        if args.long_run:
            model = farm_model(max(args.workers), args)
            bar.set_postfix(long_run=args.long_run)
            run = simulate("gensynth-ahead", 0, model, args.long_run, progress=bar)
            latency = {"tuner": run.tuner, "workers": run.workers, "devices": run.devices, "trainings": args.long_run,
                       "at": {str(n): {"suggestion_ms": median_ms_at(run.suggest_ms, n),
                                      "screening_ms": median_ms_at(run.screen_ms, n)}
                              for n in LATENCY_AT if n <= args.long_run},
                       "device_utilisation": round(run.device_utilisation(), 4), "wall_s": round(run.wall_s, 1)}
    model = farm_model(1, args)
    model_text = (f"Model: a training takes {model.train_s:.0f} s x (latency / median latency) x lognormal(0, "
                  f"{model.train_jitter}); a measurement {model.measure_overhead_s:.0f} s + {model.timed_runs} x "
                  f"latency; D = max(1, W / {args.workers_per_device}); median over {args.seeds} seed(s).")
    text = markdown(cells, latency, model_text, command)
    document = {"provenance": provenance(), "command": command, "model": asdict(model), "cells": cells,
                "latency": latency, "runs": raw, "seconds": round(time.time() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
