"""Helpers shared by the report tests: the recorded experiment fixture and its trial's metric formula."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FIXTURE_DIR = REPO / "tests" / "fixtures" / "report"
EXPERIMENT_ID = json.loads((FIXTURE_DIR / "recorded.json").read_text())["experiment_id"]
LATENCY_MAX = 1.5  # the fixture's constraint (experiment.yml)


def install_recorded_experiment(root: Path) -> Path:
    """Lay the recorded database and GenSynth state out as NNI does under `root` (the working
    directory); returns the experiment's directory."""
    exp_dir = root / EXPERIMENT_ID
    (exp_dir / "db").mkdir(parents=True)
    (exp_dir / "checkpoint" / "gensynth").mkdir(parents=True)
    shutil.copy(FIXTURE_DIR / "nni.sqlite", exp_dir / "db" / "nni.sqlite")
    shutil.copy(FIXTURE_DIR / "state.json", exp_dir / "checkpoint" / "gensynth" / "state.json")
    return exp_dir


def fixture_trial() -> ModuleType:
    """tests/fixtures/report/trial.py as a module (its metrics_for recomputes a trial's metrics)."""
    spec = importlib.util.spec_from_file_location("report_fixture_trial", FIXTURE_DIR / "trial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chromium_available() -> bool:
    from scripts.headless_chromium import find_chromium

    return find_chromium() is not None
