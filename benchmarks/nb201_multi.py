"""NAS-Bench-201 front benchmark: the whole accuracy-latency front in one search, by hypervolume.

Objectives: CIFAR-10 validation accuracy (max) and Raspberry Pi 4 latency (min), latency <= 25 ms
still required. Each searcher runs max(--budgets) trainings per seed, driven through the NNI Tuner
API exactly as benchmarks/nb201.py drives them (harness.run_one; the device a counted table lookup).
Score: the hypervolume of the feasible networks trained so far, against the reference point
(80 % accuracy, 25 ms): the area of (accuracy, latency) pairs at least 80 % and at most 25 ms that
some trained feasible network dominates, in %·ms. Median [IQR] over seeds at each budget; the
optimum is the hypervolume of every feasible cell in the table.

    .venv/bin/python benchmarks/nb201_multi.py                 # the line-up, 20 seeds, 50/100/200
    .venv/bin/python benchmarks/nb201_multi.py --tuners gensynth-multi optuna-nsga2 --seeds 5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.nb201_lib.arguments import add_run_arguments, parse_run_arguments  # noqa: E402
from benchmarks.nb201_lib.data import LATENCY_LIMIT_MS, load_table  # noqa: E402
from benchmarks.nb201_lib.harness import RunRecord, run_all  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402
from benchmarks.nb201_lib.summary import group_runs, markdown_table, quartile_cell, quartiles  # noqa: E402
from benchmarks.nb201_lib.tuners import HV_REFERENCE, LABELS, MULTI_TUNERS, PROFILER, TUNERS  # noqa: E402
from nni_gensynth.engine.hypervolume import hypervolume, non_dominated  # noqa: E402

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuners", nargs="+", default=MULTI_TUNERS, choices=sorted(TUNERS), metavar="TUNER",
                        help=f"searchers (default: {' '.join(MULTI_TUNERS)})")
    add_run_arguments(parser, "nb201_multi", "front plot")
    return parse_run_arguments(parser, argv)


def oriented(accuracy: Sequence[float], latency_ms: Sequence[float]) -> np.ndarray:
    """Feasible (accuracy, -latency) points: both maximised, as the hypervolume takes them."""
    points = [(a, -lat) for a, lat in zip(accuracy, latency_ms) if lat <= LATENCY_LIMIT_MS]
    return np.array(points, dtype=float).reshape(len(points), 2)


REFERENCE = np.array([HV_REFERENCE[0], -HV_REFERENCE[1]])


def front_hypervolume(run: RunRecord, trainings: int) -> float:
    """Hypervolume of the feasible networks among the run's first `trainings`."""
    return hypervolume(oriented(run.accuracy[:trainings], run.latency_ms[:trainings]), REFERENCE)


def optimum(table) -> dict:
    """The table's own feasible front: its hypervolume and its points."""
    points = oriented([c.accuracy for c in table.cells.values()], [c.latency_ms for c in table.cells.values()])
    front = points[non_dominated(points)]
    front = front[np.all(front > REFERENCE, axis=1)]
    return {"hypervolume": round(hypervolume(points, REFERENCE), 4),
            "front": sorted([[round(a, 4), round(-lat, 4)] for a, lat in front.tolist()], key=lambda p: p[1])}


def summarize(runs: list[RunRecord], budgets: Sequence[int]) -> dict:
    """One searcher over its seeds: hypervolume at each budget, profiler calls, the median run's front."""
    top = max(budgets)
    per_budget = {}
    for budget in budgets:
        values = [front_hypervolume(run, budget) for run in runs]
        per_budget[str(budget)] = {"hypervolume": quartiles(values), "per_seed": [round(v, 4) for v in values],
                                   "profiler_calls_per_training": round(
                                       float(np.mean([run.profiler_calls[budget - 1] for run in runs])) / budget, 4)}
    final = [front_hypervolume(run, top) for run in runs]
    median_run = runs[int(np.argsort(final)[len(final) // 2])]
    points = oriented(median_run.accuracy, median_run.latency_ms)
    front = points[non_dominated(points)] if len(points) else points
    return {"label": LABELS.get(runs[0].tuner, runs[0].tuner), "seeds": [run.seed for run in runs],
            "budgets": per_budget,
            "median_run": {"seed": median_run.seed, "front": sorted([[round(a, 4), round(-lat, 4)]
                                                                     for a, lat in front.tolist()],
                                                                    key=lambda p: p[1])},
            "ms_per_suggestion_median": round(float(np.median(np.concatenate([r.suggest_ms for r in runs]))), 3)}


def format_markdown(results: dict, budgets: Sequence[int], best: dict) -> str:
    head = ["searcher"] + [f"hypervolume @ {b} (median [IQR])" for b in budgets] + [
        f"profiler calls / training @ {max(budgets)}", "ms / suggestion (median)"]
    rows = [[summary["label"], *(quartile_cell(summary["budgets"][str(b)]["hypervolume"], 1) for b in budgets),
             f"{summary['budgets'][str(max(budgets))]['profiler_calls_per_training']:.2f}",
             f"{summary['ms_per_suggestion_median']:.1f}"] for summary in results.values()]
    lines = markdown_table(head, rows)
    lines.append(f"\nHypervolume in %·ms against the reference point ({HV_REFERENCE[0]:g} % accuracy, "
                 f"{HV_REFERENCE[1]:g} ms); the whole table's feasible front: {best['hypervolume']:.1f}.")
    return "\n".join(lines)


def front_plot(results: dict, best: dict, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    table_front = np.array(best["front"])
    ax.step(table_front[:, 1], table_front[:, 0], where="post", color="black", linestyle="--", linewidth=1,
            label=f"table's front (HV {best['hypervolume']:.0f})")
    top = None
    for summary in results.values():
        front = np.array(summary["median_run"]["front"]).reshape(-1, 2)
        top = max(summary["budgets"], key=int)
        hv = summary["budgets"][top]["hypervolume"]["median"]
        if len(front):
            ax.step(front[:, 1], front[:, 0], where="post", marker=".", linewidth=1.3,
                    label=f"{summary['label']} (HV {hv:.0f})")
    ax.set_xlim(0, HV_REFERENCE[1])
    ax.set_ylim(HV_REFERENCE[0], table_front[:, 0].max() + 0.5)
    ax.set_xlabel("Raspberry Pi 4 latency (ms)")
    ax.set_ylabel("CIFAR-10 validation accuracy (%)")
    ax.set_title(f"{title}: the median run's front after {top} trainings")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = load_table(args.data)
    best = optimum(table)
    seeds = args.seed_list
    start = time.perf_counter()
    done: dict[str, int] = {}

    def progress(task, outcome) -> None:
        done[task[0]] = done.get(task[0], 0) + 1
        if isinstance(outcome, BaseException) or done[task[0]] == len(seeds):
            status = f"FAILED: {outcome}" if isinstance(outcome, BaseException) else "done"
            print(f"[nb201-multi] {task[0]}: {status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr,
                  flush=True)

    code = provenance()
    records, errors = run_all(args.tuners, seeds, max(args.budgets), args.data, args.jobs, progress)
    wall = time.perf_counter() - start
    grouped = group_runs(records)
    results = {name: summarize(grouped[name], args.budgets) for name in args.tuners
               if name in grouped and name not in errors}
    document = {
        "benchmark": "NAS-Bench-201 accuracy-latency front (Raspberry Pi 4), latency <= 25 ms required",
        "protocol": {"objectives": {"accuracy": "max", "latency_ms": "min"},
                     "constraints": {"latency_ms": {"max": LATENCY_LIMIT_MS}},
                     "reference_point": {"accuracy": HV_REFERENCE[0], "latency_ms": HV_REFERENCE[1]},
                     "score": "hypervolume (%·ms) of the feasible networks trained so far", "profiler": PROFILER,
                     "budgets": args.budgets, "seeds": seeds, "data": args.data,
                     "command": " ".join([".venv/bin/python", "benchmarks/nb201_multi.py",
                                          *(argv if argv is not None else sys.argv[1:])])},
        "optimum": best, "provenance": code, "wall_s": round(wall, 1), "tuners": results, "errors": errors,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    text = format_markdown(results, args.budgets, best) if results else "no results"
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.plot and results:
        front_plot(results, best, args.plot, f"NAS-Bench-201 / Pi 4, {len(seeds)} seeds")
    print(text)
    print(f"wall time {wall:.1f} s; JSON: {out}")
    for name, message in errors.items():
        print(f"ERROR {name}: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
