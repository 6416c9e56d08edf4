"""`gensynth cache [--prune-older-than DAYS]`: what the measurement and export caches hold, and pruning.

Both live in $GENSYNTH_CACHE_DIR (default ~/.cache/nni-gensynth). Pruning deletes measurements
made, and exported model files written, more than DAYS ago; exports are rebuilt when needed,
measurements are taken again.
"""
from __future__ import annotations

import argparse
from typing import Any

SECONDS_PER_DAY = 86400.0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("cache", help="show or prune the measurement and export caches",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--prune-older-than", type=float, default=None, metavar="DAYS",
                        help="delete measurements and exports older than this many days")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..hardware.cache import MeasurementCache, cache_dir, folder_size, prune_files

    root = cache_dir()
    cache = MeasurementCache()
    exports = root / "exports"
    if args.prune_older_than is not None:
        if args.prune_older_than < 0:
            raise ValueError(f"--prune-older-than must be >= 0 days, got {args.prune_older_than}")
        age = args.prune_older_than * SECONDS_PER_DAY
        measurements = cache.prune(age)
        files, freed = prune_files(exports, age)
        print(f"pruned {measurements} measurement(s) and {files} export file(s) ({freed / 1e6:.1f} MB) "
              f"older than {args.prune_older_than:g} day(s)")
    files, size = folder_size(exports)
    print(f"cache: {root}\n  measurements: {len(cache)} ({cache.path.stat().st_size / 1e6:.1f} MB)\n"
          f"  exports: {files} file(s) ({size / 1e6:.1f} MB)")
    return 0
