"""NAS-Bench-201 search benchmark: GenSynth vs NNI's and Optuna's tuners on real Pi 4 latencies.

Protocol (issue 4): CIFAR-10 validation accuracy of NAS-Bench-201 cells, requirement Raspberry Pi 4
latency <= 25 ms, every tuner driven through the NNI Tuner API one training at a time, the device a
counted table lookup (benchmarks.nb201_lib.device:lookup_latency). One run of max(--budgets)
trainings per tuner and seed gives every smaller budget as best-so-far.

    .venv/bin/python benchmarks/nb201.py                       # all tuners, 20 seeds, 50/100/200
    .venv/bin/python benchmarks/nb201.py --tuners mf-random nni-tpe --seeds 5 --budgets 20 50
    .venv/bin/python benchmarks/nb201.py --tuners gensynth-additive-kernel gensynth \
        --paired gensynth-additive-kernel gensynth --seeds 200 --first-seed 200   # a variant, seed by seed
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # so "benchmarks.nb201_lib.device:lookup_latency" imports everywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.nb201_lib.arguments import add_run_arguments, parse_run_arguments  # noqa: E402
from benchmarks.nb201_lib.data import load_table, search_space  # noqa: E402
from benchmarks.nb201_lib.harness import run_all  # noqa: E402
from benchmarks.nb201_lib.plot import convergence_plot  # noqa: E402
from benchmarks.provenance import provenance  # noqa: E402
from benchmarks.nb201_lib.summary import (format_markdown, format_paired, format_table, group_runs,  # noqa: E402
                                          paired_comparison, reference, summarize_tuner)
from benchmarks.nb201_lib.tuners import DEFAULT_TUNERS, DIAGNOSTIC, PROFILER, TUNERS  # noqa: E402



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuners", nargs="+", default=DEFAULT_TUNERS, choices=sorted(TUNERS), metavar="TUNER",
                        help=f"subset to run (default: {' '.join(DEFAULT_TUNERS)}; also: {' '.join(DIAGNOSTIC)})")
    parser.add_argument("--paired", nargs=2, metavar=("FIRST", "SECOND"),
                        help="also test FIRST against SECOND seed by seed (both must be in --tuners)")
    add_run_arguments(parser, "nb201", "convergence plot")
    args = parse_run_arguments(parser, argv)
    if args.paired and not set(args.paired) <= set(args.tuners):
        parser.error(f"--paired {' '.join(args.paired)}: both must be among --tuners")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = load_table(args.data)
    ref = reference(table)
    seeds = args.seed_list
    done: dict[str, int] = {}

    def progress(task, outcome) -> None:
        done[task[0]] = done.get(task[0], 0) + 1
        if isinstance(outcome, BaseException) or done[task[0]] == len(seeds):
            status = f"FAILED: {outcome}" if isinstance(outcome, BaseException) else "done"
            print(f"[nb201] {task[0]}: {status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    code = provenance()  # before the runs: the engine is imported (and frozen) from this tree state
    start = time.perf_counter()
    records, errors = run_all(args.tuners, seeds, max(args.budgets), args.data, args.jobs, progress)
    wall = time.perf_counter() - start
    grouped = group_runs(records)
    results = {name: summarize_tuner(grouped[name], args.budgets)
               for name in args.tuners if name in grouped and name not in errors}
    document = {
        "benchmark": "NAS-Bench-201 CIFAR-10 validation accuracy, Raspberry Pi 4 latency <= 25 ms",
        "protocol": {
            "data": args.data, "search_space": search_space(), "objective": "accuracy (CIFAR-10 valid, %)",
            "constraints": {"latency_ms": {"max": ref["latency_limit_ms"]}}, "profiler": PROFILER,
            "metrics_reported": "{default: accuracy if latency_ms <= 25 else 0, accuracy, latency_ms}",
            "driving": "NNI dispatcher order, trialConcurrency 1: generate_multiple_parameters([id]) -> "
                       "receive_trial_result -> trial_end(id, True)",
            "budgets": args.budgets, "seeds": seeds, "jobs": args.jobs,
            "threads": "BLAS/OpenMP limited to 1 thread per run when --jobs > 1",
            "command": " ".join([".venv/bin/python", "benchmarks/nb201.py", *(argv if argv is not None else sys.argv[1:])]),
        },
        "reference": ref,
        "provenance": code,
        "wall_s": round(wall, 1),
        "tuners": results,
        "errors": errors,
    }
    if args.paired and all(name in results for name in args.paired):
        document["paired"] = paired_comparison(results, *args.paired, ref["optimum"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    if args.plot and results:
        convergence_plot(results, ref, args.plot,
                         f"NAS-Bench-201 / Pi 4 <= {ref['latency_limit_ms']:g} ms, {len(seeds)} seeds")
    if args.markdown:
        paired = "\n\n" + format_paired(document["paired"]) if "paired" in document else ""
        Path(args.markdown).write_text(format_markdown(results, args.budgets, ref) + paired + "\n")
    print(format_table(results, args.budgets, ref))
    if "paired" in document:
        print(format_paired(document["paired"]))
    print(f"wall time {wall:.1f} s with --jobs {args.jobs}; JSON: {out}" + (f"; plot: {args.plot}" if args.plot else ""))
    for name, message in errors.items():
        print(f"ERROR {name}: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
