"""Rebuild a chosen trial's network and export it (ONNX or .tflite) with its metrics beside it.

The network is rebuilt with `nni_gensynth.models.build_model` from the parameters the trial
ran with. Trained weights are used when the trial saved them as a state_dict at
`<trial output dir>/model.pt` (`torch.save(model.state_dict(), Path(os.environ["NNI_OUTPUT_DIR"],
"model.pt"))`); they are loaded with `weights_only=True` (no pickled code runs). The export
itself is the hardware layer's (`nni_gensynth.hardware.export`).

The trial command of the experiment tells how the trial built its networks: when it runs
`nni_gensynth.trial`, its evaluation spec (builder, channels, image size, data) is read from it.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from .analysis import best_feasible, has_result, is_feasible
from .model import ExperimentRecord, TrialRecord

WEIGHTS_FILE = "model.pt"
FORMATS = ("onnx", "tflite")


def spec_for(record: Any, builder: Optional[str] = None, input_shape: Optional[str] = None,
             num_classes: Optional[int] = None) -> Any:
    """How the experiment's networks were built (its trial command's EvaluationSpec, else the
    defaults), with command-line overrides: a builder, an input shape "1,3,32,32", a class count.
    Without hardware profiles: rebuilding needs none."""
    from ..evaluator import EvaluationSpec

    spec = record.trial_spec or EvaluationSpec()
    changes: dict[str, Any] = {"hw_profiles": (), "requirements": {}}
    if builder:
        changes["builder"] = builder
    if input_shape:
        from ..hardware.shapes import parse_input_shape

        _, channels, height, width = parse_input_shape(input_shape, ndim=4, name="--input-shape")
        if height != width:
            raise ValueError(f"--input-shape must be square (N,C,H,H), got {input_shape!r}")
        changes.update(channels=channels, image_size=height)
    if num_classes is not None:
        if num_classes < 1:
            raise ValueError(f"--num-classes must be >= 1, got {num_classes}")
        changes["num_classes"] = num_classes
    return spec.replace(**changes)


def choose_trial(record: ExperimentRecord, trial_id: Optional[str] = None) -> TrialRecord:
    """The trial asked for, or the best feasible one (ValueError saying what exists otherwise)."""
    if trial_id is not None:
        trial = record.trial(trial_id)
    else:
        trial = best_feasible(record)
        if trial is None:
            done = [t.trial_id for t in record.trials if has_result(t)]
            raise ValueError(f"experiment {record.experiment_id} has no feasible trial with a result; pass --trial "
                             f"ID (trials with results: {', '.join(done) or 'none'})")
    if not trial.parameters:
        raise ValueError(f"trial {trial.trial_id} of experiment {record.experiment_id} has no recorded parameters")
    return trial


def weights_path(record: ExperimentRecord, trial: TrialRecord) -> Optional[Path]:
    """Where the trial saved its trained weights, if it did."""
    candidates = []
    if trial.trial_dir is not None:
        candidates.append(trial.trial_dir / WEIGHTS_FILE)
    if record.experiment_dir is not None:
        candidates += sorted(record.experiment_dir.glob(f"environments/*/trials/{trial.trial_id}/{WEIGHTS_FILE}"))
        candidates.append(record.experiment_dir / "trials" / trial.trial_id / WEIGHTS_FILE)
    return next((c for c in candidates if c.is_file()), None)


def rebuild(trial: TrialRecord, evaluator: Any, weights: Optional[Path]) -> Any:
    """The trial's network (built by `evaluator`), with its trained weights when `weights` is
    given, in eval mode."""
    import torch

    model = evaluator.build(trial.parameters)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # a corrupt or foreign file: say which
            raise ValueError(f"cannot load trained weights {weights}: {exc}") from None
        if not isinstance(state, dict):
            raise ValueError(f"{weights} must hold a state_dict (a dict of tensors), got {type(state).__name__}")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"trained weights {weights} do not fit the rebuilt network "
                             f"(builder {evaluator.spec.builder}, {evaluator.num_classes} classes): {exc}") from None
    return model.eval()


def export_trial(record: ExperimentRecord, out: Path, fmt: str, trial_id: Optional[str] = None,
                 spec: Any = None) -> Path:
    """Export the chosen trial's network to `out` (format "onnx" or "tflite") and write `out`.json
    with its architecture, parameters and measured metrics. Returns `out`."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.suffix and out.suffix.lower() != f".{fmt}":
        raise ValueError(f"--out {out} has suffix {out.suffix!r} but --format is {fmt!r}; use .{fmt}")
    trial = choose_trial(record, trial_id)
    from ..evaluator import Evaluator

    spec = spec if spec is not None else spec_for(record)
    evaluator = Evaluator(spec)
    weights = weights_path(record, trial)
    model = rebuild(trial, evaluator, weights)
    from ..hardware.export import export_onnx, export_tflite

    exporter = export_onnx if fmt == "onnx" else export_tflite
    out.parent.mkdir(parents=True, exist_ok=True)
    # A private directory: the hardware export cache is keyed by structure, not weights.
    with tempfile.TemporaryDirectory(prefix="gensynth-export-") as tmp:
        exported = exporter(model, list(spec.input_shape), directory=Path(tmp))
        shutil.move(str(exported), str(out))
    model_spec = getattr(model, "spec", None)
    arch = (trial.final or {}).get("arch") or (model_spec.arch_string() if hasattr(model_spec, "arch_string") else None)
    sidecar = {
        "experiment_id": record.experiment_id, "trial_id": trial.trial_id, "parameter_id": trial.parameter_id,
        "format": fmt, "file": out.name, "architecture": arch, "parameters": trial.parameters,
        "builder": spec.builder, "input_shape": list(spec.input_shape),
        "num_classes": evaluator.num_classes,
        "weights": str(weights) if weights is not None else None,
        "trained_weights": weights is not None,
        "feasible": is_feasible(record, trial), "requirements": record.constraints,
        "metrics": trial.final,
    }
    sidecar_path = out.with_name(out.name + ".json")
    sidecar_path.write_text(json.dumps(sidecar, indent=1, default=str) + "\n", encoding="utf-8")
    return out
