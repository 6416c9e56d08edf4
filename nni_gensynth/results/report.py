"""write_report: one experiment -> summary.json, pareto.png, cycles.png and index.html in a folder."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

from .analysis import summarize
from .html import IMAGES, render_index
from .load import load_experiment
from .model import ExperimentRecord
from .plots import cycles_figure, front_figure, pareto_figure, save_png

REPORT_FILES = ("summary.json", "pareto.png", "cycles.png", "index.html")


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None so summary.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report_for(record: ExperimentRecord, out_dir: Path, top: int = 5) -> Path:
    """Write the report of an already loaded experiment; returns the path of index.html."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; the report is a folder (summary.json, *.png, index.html)")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(record, top=top)
    multi = record.objectives is not None  # multi-objective mode: the front, cycle by cycle, too
    summary["files"] = {name: name for name in REPORT_FILES + (("front.png",) if multi else ())}
    _write_text(out_dir / "summary.json", json.dumps(_json_safe(summary), indent=1, allow_nan=False) + "\n")
    save_png(pareto_figure(record), out_dir / "pareto.png")
    save_png(cycles_figure(record), out_dir / "cycles.png")
    images = list(IMAGES)
    if multi:
        save_png(front_figure(record), out_dir / "front.png")
        images.append(("front.png", "Feasible front after each generator cycle, with its hypervolume"))
    index = out_dir / "index.html"
    _write_text(index, render_index(record, summary, images))
    return index


def write_report(experiment_id: str, out_dir: Path, experiment_dir: Optional[Path] = None,
                 port: Optional[int] = None, top: int = 5) -> Path:
    """Read experiment `experiment_id` (running manager or database) and write its report into
    `out_dir`: summary.json, pareto.png, cycles.png and index.html. Returns index.html's path.

    `experiment_dir`: the experiment's directory or NNI's working directory above it (default:
    NNI's registry, then ~/nni-experiments). `port`: the manager's port while it runs (default:
    the registry's). Raises ExperimentNotFoundError (a FileNotFoundError) for an unknown id.
    """
    record = load_experiment(experiment_id, experiment_dir=experiment_dir, port=port)
    return write_report_for(record, Path(out_dir), top=top)
