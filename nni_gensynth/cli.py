"""The `gensynth` console script: what users do outside nnictl.

Each subcommand lives in its own module under `nni_gensynth.commands` and defines
`add_parser(subparsers)` (registers its arguments; imports nothing heavy) and
`run(args) -> int` (does the work). This module only dispatches.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
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
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    except KeyboardInterrupt:
        print(f"gensynth {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error is one line (and a traceback with --debug)
        if args.debug:
            traceback.print_exc()
        user_error = isinstance(exc, (ValueError, OSError, RuntimeError, LookupError))
        kind = "" if user_error else f"internal error, {type(exc).__name__}: "
        hint = "" if user_error or args.debug else " (run with --debug for the traceback)"
        print(f"gensynth {args.command}: error: {kind}{_one_line(exc)}{hint}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (OSErrors name the file)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 1000 else text[:997] + "..."


if __name__ == "__main__":
    sys.exit(main())
