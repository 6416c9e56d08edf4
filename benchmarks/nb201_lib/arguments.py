"""The command-line arguments every NAS-Bench-201 benchmark shares (data, seeds, budgets, jobs,
output paths), added to a script's parser and checked in one place."""
from __future__ import annotations

import argparse
from pathlib import Path

from .data import data_path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def add_run_arguments(parser: argparse.ArgumentParser, stem: str, plot_what: str) -> None:
    """--data, --seeds, --first-seed, --budgets, --jobs, and --out/--plot/--markdown under results/`stem`.*"""
    parser.add_argument("--data", help="NAS-Bench-201 CSV (default: ../shared/bench-data/nb201_cifar10_raspi4.csv)")
    parser.add_argument("--seeds", type=int, default=20, help="number of seeds, 0..N-1 (default 20)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start the seeds here: FIRST..FIRST+N-1 (default 0), e.g. for a held-out seed set")
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 200], help="trainings (default 50 100 200)")
    parser.add_argument("--jobs", type=int, default=1, help="processes over runs (default 1)")
    parser.add_argument("--out", default=str(RESULTS / f"{stem}.json"), help="JSON output path")
    parser.add_argument("--plot", default=str(RESULTS / f"{stem}.png"), help=f"{plot_what} path ('' for none)")
    parser.add_argument("--markdown", default=str(RESULTS / f"{stem}.md"), help="Markdown table path ('' for none)")


def parse_run_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, check the shared arguments (a named error on bad ones), sort the budgets, find
    the data file (FileNotFoundError names the path) and list the seeds (`seed_list`)."""
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if min(args.budgets) < 1:
        parser.error(f"--budgets must be >= 1, got {args.budgets}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    args.budgets = sorted(set(args.budgets))
    args.data = str(data_path(args.data))
    args.seed_list = list(range(args.first_seed, args.first_seed + args.seeds))
    return args
