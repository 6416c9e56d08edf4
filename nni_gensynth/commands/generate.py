"""`gensynth generate --experiment ID -n N --out DIR`: N distinct networks from a taught generator.

The GenSynth engine is rebuilt from the experiment's search space (NNI's records) and the
tuner's learned state (<experiment dir>/checkpoint/gensynth/state.json), and asked for N
distinct networks that meet the experiment's requirements *by measurement* on `--profile`
(every candidate is built, counted and measured there; stored measurements from the
experiment are not reused). For network k it writes DIR/k/:
    model.onnx    the network with its initial (untrained) weights: the architecture to train
    arch.txt      the canonical architecture string (Architecture.encode(): the parameters as JSON)
    metrics.json  measured metrics (latency, energy and its source, memory, params, MACs), the
                  trained result when the experiment trained this very network, and the check
and DIR/summary.json. Fewer than N found -> exit status 1 with a message saying how many.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("generate", help="N distinct networks from the taught generator, measured",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, metavar="ID", help="NNI experiment id")
    parser.add_argument("-n", type=int, required=True, help="how many distinct networks")
    parser.add_argument("--out", required=True, type=Path, help="folder to write DIR/<k>/ and DIR/summary.json into")
    parser.add_argument("--experiment-dir", type=Path, default=None,
                        help="the experiment's folder, or NNI's working directory above it")
    parser.add_argument("--port", type=int, default=None, help="the running NNI manager's port")
    parser.add_argument("--profile", default="host-cpu", help="hardware profile to measure on (name or path), or several comma-separated "
                             "(host-cpu,host-tflite: the requirements are judged on the first)")
    parser.add_argument("--constraints", default=None,
                        help='JSON requirements instead of the experiment\'s, e.g. \'{"latency_ms": {"max": 0.5}}\'')
    parser.add_argument("--builder", default=None, help="model builder (default: the trial command's)")
    parser.add_argument("--input-shape", default=None, help="N,C,H,W (default: from the trial command)")
    parser.add_argument("--num-classes", type=int, default=None, help="classes of the network (default 10)")
    parser.add_argument("--max-calls", type=int, default=None,
                        help="at most this many candidates measured (default 20 per network asked)")
    return parser


def _requirements(record: Any, constraints: Optional[str]) -> Any:
    """The experiment's requirements (as its tuner resolved them), or --constraints."""
    from ..engine.objective import Requirements
    from ..evaluator import json_object

    if constraints is None:
        return record.requirements
    return Requirements(json_object(constraints, "--constraints"))


def build_engine(record: Any, requirements: Any, profiler: Any) -> Any:
    """The experiment's GenSynth engine, with everything it learned, measuring on `profiler`."""
    from ..engine import GenSynth, SearchSpace

    space_spec = record.config.get("searchSpace")
    if not isinstance(space_spec, dict) or not space_spec:
        raise ValueError(f"experiment {record.experiment_id} records no search space in its configuration")
    if record.state_path is None or not record.state_path.is_file():
        raise FileNotFoundError(f"experiment {record.experiment_id} has no GenSynth state file "
                                f"({record.state_path or 'checkpoint/gensynth/state.json'}): was its tuner GenSynth?")
    from ..engine import load_state_file

    state = load_state_file(record.state_path)
    if state is None:
        raise ValueError(f"GenSynth state file {record.state_path} is damaged (moved aside); nothing to generate from")
    args = record.class_args
    space = SearchSpace(space_spec)
    prototype = (record.tuner_state.get("prototype") if isinstance(record.tuner_state.get("prototype"), dict)
                 else args.get("prototype") if isinstance(args.get("prototype"), dict) else None)
    objective = record.objectives or record.objective  # multi-objective mode: the front, spread along it
    engine = GenSynth(space, objective, requirements, profiler=profiler, prototype=prototype,
                      population_size=int(args.get("population_size", 10)), seed=args.get("seed"))
    engine.load_state_dict(state)
    # judge 1_r on fresh measurements on this profile, not on the experiment's stored ones
    engine.forget_measurements()
    return engine


def run(args: argparse.Namespace) -> int:
    from ..evaluator import Evaluator
    from ..evaluator.spec import split_profiles
    from ..results import load_experiment
    from ..results.export import spec_for

    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.max_calls is not None and args.max_calls < 1:
        raise ValueError(f"--max-calls must be >= 1, got {args.max_calls}")
    record = load_experiment(args.experiment, experiment_dir=args.experiment_dir, port=args.port)
    requirements = _requirements(record, args.constraints)
    spec = spec_for(record, args.builder, args.input_shape, args.num_classes).replace(
        hw_profiles=split_profiles(args.profile), requirements=requirements.to_config())
    evaluator = Evaluator(spec)
    engine = build_engine(record, requirements, evaluator)
    # distinct parameter dicts may build the same network: ask for more, keep n distinct networks
    archs = engine.generate(2 * args.n, max_profiler_calls=args.max_calls)
    written = write_networks(engine, archs, evaluator, requirements, args.out, limit=args.n)
    summary = {
        "experiment_id": record.experiment_id, "profile": args.profile, "requested": args.n, "found": len(written),
        "requirements": requirements.to_config(), "objective": record.objective.metric,
        "objectives": record.objectives.describe() if record.objectives is not None else None,
        "builder": spec.builder, "input_shape": list(spec.input_shape), "num_classes": evaluator.num_classes,
        "weights": "initial (untrained): model.onnx carries the architecture; train it before deployment",
        "networks": written,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    if len(written) < args.n:
        print(f"gensynth generate: found only {len(written)} of {args.n} distinct networks that meet "
              f"{requirements!r} by measurement on {args.profile} (written to {args.out}); "
              f"raise --max-calls, relax --constraints, or teach the generator longer", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} networks meeting {requirements!r} on {args.profile} to {args.out}")
    return 0


def write_networks(engine: Any, archs: list, evaluator: Any, requirements: Any, out: Path,
                   limit: Optional[int] = None) -> list[dict]:
    """DIR/<k>/ for the first `limit` generated networks that build distinct networks and meet
    1_r by measurement; returns the summary rows."""
    import shutil
    import tempfile

    from ..hardware.export import export_onnx

    rows: list[dict] = []
    seen: set[str] = set()
    for arch in archs:
        if limit is not None and len(rows) >= limit:
            break
        params = engine.space.to_parameters(arch)
        model = evaluator.build(params)
        network = getattr(model, "network_key", None) or arch.encode()
        if network in seen:
            continue
        measured = evaluator.measure(params, model)
        trained = dict(engine.records[arch].metrics) if arch in engine.records else None
        known = dict(trained or {}, **measured)
        if requirements.is_met(known, only_known=True) is not True:
            continue
        seen.add(network)
        folder = out / str(len(rows) + 1)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gensynth-generate-") as tmp:
            shutil.move(str(export_onnx(model, list(evaluator.input_shape), directory=Path(tmp))),
                        str(folder / "model.onnx"))
        (folder / "arch.txt").write_text(arch.encode() + "\n", encoding="utf-8")
        metrics = {"measured": measured, "profile": evaluator.profiles[0].name if evaluator.profiles else None,
                   "network": network,
                   "parameters": params, "trained_result": trained, "meets_requirements": True,
                   "requirements": requirements.to_config()}
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str) + "\n", encoding="utf-8")
        rows.append({"dir": folder.name, "arch_hash": arch.hash, "network": network,
                     **{k: measured.get(k) for k in ("latency_ms", "energy_mj", "energy_source", "peak_mem_mb",
                                                     "params", "macs")},
                     "trained_accuracy": (trained or {}).get("accuracy")})
    return rows
