"""NAS-Bench-201 as NAS: GenSynthStrategy vs NNI's strategies through a real NasExperiment.

Protocol (issue 13): NNI's NasBench201 hub space, the NB201 table as the evaluator (CIFAR-10
validation accuracy and measured Raspberry Pi 4 latency of each cell), requirement latency <= 25 ms,
every strategy run through `NasExperiment` with the sequential engine for max(--budgets) trainings;
NNI's RegularizedEvolution, Random and TPE plain and chained with HardwareFilter (measure on the
table device before training, skip what breaks the requirement). Best feasible at each budget.

    .venv/bin/python benchmarks/nb201_nas.py --jobs 2            # all strategies, 20 seeds, 50/100/200
    .venv/bin/python benchmarks/nb201_nas.py --strategies gensynth re --seeds 3 --budgets 20 50
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # so "benchmarks.nb201_lib.nas_space:lookup_sample_latency" imports everywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.nb201_lib.arguments import add_run_arguments, parse_run_arguments  # noqa: E402
from benchmarks.nb201_lib.data import load_table  # noqa: E402
from benchmarks.nb201_lib.nas_harness import run_all  # noqa: E402
from benchmarks.nb201_lib.nas_strategies import CONSTRAINTS, LABELS, PROFILER, STRATEGIES  # noqa: E402
from benchmarks.nb201_lib.plot import convergence_plot  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402
from benchmarks.nb201_lib.summary import format_markdown, format_table, group_runs, reference, summarize_tuner  # noqa: E402

SHARED_CPU_NOTE = ("ms / suggestion: wall time the search spent before each training (strategy, filter and NNI "
                   "overhead), measured on a shared 2-core CPU with other work running; compare within one run only.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES),
                        metavar="STRATEGY", help=f"subset to run (default: {' '.join(STRATEGIES)})")
    add_run_arguments(parser, "nb201_nas", "convergence plot")
    return parse_run_arguments(parser, argv)


def markdown(results: dict, budgets: list[int], ref: dict) -> str:
    """The tuner benchmark's table with strategies as rows, and the timing caveat."""
    table = format_markdown(results, budgets, ref).replace("| tuner |", "| strategy |", 1)
    return f"{table}\n\n{SHARED_CPU_NOTE}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ref = reference(load_table(args.data))
    seeds = args.seed_list
    done: dict[str, int] = {}

    def progress(task, error) -> None:
        done[task[0]] = done.get(task[0], 0) + 1
        if error is not None or done[task[0]] == len(seeds):
            status = f"FAILED: {error}" if error is not None else "done"
            print(f"[nb201_nas] {task[0]}: {status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    code = provenance()
    start = time.perf_counter()
    records, errors = run_all(args.strategies, seeds, max(args.budgets), args.data, args.jobs, progress)
    wall = time.perf_counter() - start
    grouped = group_runs(records)
    results = {}
    for name in args.strategies:
        if name in grouped and name not in errors:
            results[name] = dict(summarize_tuner(grouped[name], args.budgets), label=LABELS[name])
    document = {
        "benchmark": "NAS-Bench-201 as NAS (NasExperiment, sequential engine), CIFAR-10 validation accuracy, "
                     "Raspberry Pi 4 latency <= 25 ms",
        "protocol": {
            "data": args.data, "model_space": "nni.nas.hub.pytorch.NasBench201() (labels cell/<from>_<to>)",
            "evaluator": "benchmarks.nb201_lib.nas_space:TableEvaluator (FunctionalEvaluator on the frozen sample)",
            "experiment": 'NasExperimentConfig("sequential", "raw", "local"), max_trial_number = max budget',
            "objective": "accuracy (CIFAR-10 valid, %)", "constraints": CONSTRAINTS, "profiler": PROFILER,
            "metrics_reported": "{default: accuracy if latency_ms <= 25 else 0, accuracy, latency_ms}",
            "budgets": args.budgets, "seeds": seeds, "jobs": args.jobs,
            "ms_per_suggestion": SHARED_CPU_NOTE,
            "command": " ".join([".venv/bin/python", "benchmarks/nb201_nas.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
        },
        "reference": ref,
        "provenance": code,
        "wall_s": round(wall, 1),
        "strategies": results,
        "errors": errors,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    if args.plot and results:
        convergence_plot(results, ref, args.plot, f"NAS-Bench-201 as NAS / Pi 4 <= {ref['latency_limit_ms']:g} ms, "
                                                  f"{len(seeds)} seeds")
    if args.markdown:
        Path(args.markdown).write_text(markdown(results, args.budgets, ref) + "\n")
    print(format_table(results, args.budgets, ref))
    print(f"wall time {wall:.1f} s with --jobs {args.jobs}; JSON: {out}" + (f"; plot: {args.plot}" if args.plot else ""))
    for name, message in errors.items():
        print(f"ERROR {name}: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
