"""`gensynth export EXPERIMENT_ID [--trial ID] --format onnx|tflite --out PATH`: deployable network.

The chosen trial (default: the best feasible) is rebuilt from its parameters, with its trained
weights when the trial saved <trial dir>/model.pt, exported, and described in PATH.json
(architecture, parameters, measured metrics, whether trained weights were used).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("export", help="export an experiment's network to ONNX or .tflite",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("experiment_id", metavar="EXPERIMENT_ID", help="NNI experiment id")
    parser.add_argument("--trial", default=None, help="trial id (default: the best feasible trial)")
    parser.add_argument("--format", required=True, choices=("onnx", "tflite"))
    parser.add_argument("--out", required=True, type=Path, help="file to write (PATH.json is written beside it)")
    parser.add_argument("--experiment-dir", type=Path, default=None,
                        help="the experiment's folder, or NNI's working directory above it")
    parser.add_argument("--port", type=int, default=None, help="the running NNI manager's port")
    parser.add_argument("--builder", default=None, help="model builder (default: the trial command's, else macro_mobilenet)")
    parser.add_argument("--input-shape", default=None, help="N,C,H,W (default: from the trial command, else 1,1,16,16)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes of the network (default 10)")
    return parser


def run(args: argparse.Namespace) -> int:
    from ..results import load_experiment
    from ..results.export import export_trial, spec_for

    record = load_experiment(args.experiment_id, experiment_dir=args.experiment_dir, port=args.port)
    spec = spec_for(record, args.builder, args.input_shape, args.num_classes)
    out = export_trial(record, args.out, args.format, trial_id=args.trial, spec=spec)
    print(f"exported trial {args.trial or '(best feasible)'} of {record.experiment_id} to {out} "
          f"(details: {out.name}.json)")
    return 0
