"""What an experiment's trial command says, when it runs `python -m nni_gensynth.trial`.

The report reads the trial's --constraints when the tuner has none (a TPE or Random baseline
on the same pipeline), and the export reads --builder, --channels and --image-size.
"""
from __future__ import annotations

import argparse
import json
import shlex
from typing import Any, Optional

TRIAL_MODULE = "nni_gensynth.trial"


def trial_args(config: dict[str, Any]) -> Optional[argparse.Namespace]:
    """The parsed options of nni_gensynth.trial in config['trialCommand'], or None for another trial."""
    try:
        words = shlex.split(str(config.get("trialCommand") or ""))
    except ValueError:
        return None
    if TRIAL_MODULE not in words:
        return None
    from ..trial import build_parser

    args, _ = build_parser().parse_known_args(words[words.index(TRIAL_MODULE) + 1:])
    return args


def trial_constraints(config: dict[str, Any]) -> dict[str, Any]:
    """The trial's --constraints ({} when absent or not JSON)."""
    args = trial_args(config)
    if args is None:
        return {}
    try:
        constraints = json.loads(args.constraints)
    except (TypeError, ValueError):
        return {}
    return constraints if isinstance(constraints, dict) else {}
