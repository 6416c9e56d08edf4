"""`gensynth cache [--prune-older-than DAYS] [--check]`: what the measurement and export caches hold,
pruning, and an integrity check.

Both live in $GENSYNTH_CACHE_DIR (default ~/.cache/nni-gensynth). Pruning deletes measurements
made, and exported model files written, more than DAYS ago; exports are rebuilt when needed,
measurements are taken again. --check reads the measurement cache only (sqlite's integrity check
and every row validated) and exits 1 when it is damaged; using the cache repairs it (a damaged
file is moved aside, a damaged row dropped).
"""
from __future__ import annotations

import argparse
from typing import Any

SECONDS_PER_DAY = 86400.0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("cache", help="show, check or prune the measurement and export caches",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--prune-older-than", type=float, default=None, metavar="DAYS",
                        help="delete measurements and exports older than this many days")
    parser.add_argument("--check", action="store_true",
                        help="check the measurement cache's integrity (exit 1 when damaged); changes nothing")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..hardware.cache import CACHE_FILE, MeasurementCache, cache_dir, check_cache, folder_size, prune_files

    root = cache_dir()
    if args.check:
        report = check_cache(root / CACHE_FILE)
        print("\n".join(report.lines()))
        return 0 if report.ok else 1
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
    cache_size = cache.path.stat().st_size if cache.path.is_file() else 0
    print(f"cache: {root}\n  measurements: {len(cache)} ({cache_size / 1e6:.1f} MB)\n"
          f"  exports: {files} file(s) ({size / 1e6:.1f} MB)")
    return 0
