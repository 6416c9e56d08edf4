"""`gensynth report EXPERIMENT_ID --out DIR`: summary.json, pareto.png, cycles.png and index.html.

Reads the experiment from its NNI manager's REST API while it runs, else from its database
(<experiment dir>/db/nni.sqlite); generator cycles come from GenSynth's state file.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("report", help="write an experiment's report (plots, summary, HTML table)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("experiment_id", metavar="EXPERIMENT_ID", help="NNI experiment id")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the report into")
    parser.add_argument("--experiment-dir", type=Path, default=None,
                        help="the experiment's folder, or NNI's working directory above it "
                             "(default: NNI's registry, then ~/nni-experiments)")
    parser.add_argument("--port", type=int, default=None, help="the running NNI manager's port (default: the registry's)")
    parser.add_argument("--top", type=int, default=5, help="best feasible networks listed in summary.json")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..results import load_experiment, write_report_for
    from ..results.analysis import has_result

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    record = load_experiment(args.experiment_id, experiment_dir=args.experiment_dir, port=args.port)
    index = write_report_for(record, args.out, top=args.top)
    finished = sum(1 for t in record.trials if has_result(t))
    print(f"report of {record.experiment_id} ({len(record.trials)} trials, {finished} with results, "
          f"{len(record.cycles)} cycles; read from {record.source}): {index}")
    return 0
