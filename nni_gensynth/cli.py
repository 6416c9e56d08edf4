"""The `gensynth` console script: what users do outside nnictl.

Each subcommand lives in its own module under `nni_gensynth.commands` and defines
`add_parser(subparsers)` (registers its arguments; imports nothing heavy) and
`run(args) -> int` (does the work). This module only dispatches.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# subcommand -> module; each module is imported when the parser is built, so keep their
# top-level imports light (argparse, pathlib, json) and import torch/nni inside run().
COMMANDS = {
    "profile": "nni_gensynth.commands.profile",
    "report": "nni_gensynth.commands.report",
    "export": "nni_gensynth.commands.export",
    "generate": "nni_gensynth.commands.generate",
    "cache": "nni_gensynth.commands.cache",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand whose module is present."""
    parser = argparse.ArgumentParser(prog="gensynth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        command = module.add_parser(sub)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"gensynth {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
