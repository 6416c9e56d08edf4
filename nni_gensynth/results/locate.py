"""Where an NNI experiment lives: its directory (database, GenSynth state) and its manager's port.

NNI keeps a registry of experiments in ~/nni-experiments/.experiment (JSON: id -> port,
status, logDir = the experiment working directory). An experiment's directory is
`<logDir>/<id>` (default ~/nni-experiments/<id>), holding `db/nni.sqlite` and, with the
GenSynth tuner, `checkpoint/gensynth/state.json`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..engine.state import CHECKPOINT_STATE

DB_RELATIVE = Path("db", "nni.sqlite")
STATE_RELATIVE = Path("checkpoint") / CHECKPOINT_STATE  # the tuner's state file in an experiment
_VALID_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")  # as nni.experiment.management checks it


class ExperimentNotFoundError(FileNotFoundError):
    """No running manager and no database for an experiment id; the message says where we looked."""


def nni_home() -> Path:
    """NNI's home folder (~/nni-experiments), which holds the experiment registry."""
    return Path(os.path.expanduser("~"), "nni-experiments")


def registry_entry(experiment_id: str, home: Optional[Path] = None) -> dict[str, Any]:
    """The experiment's entry in NNI's registry ({} when absent or unreadable)."""
    path = (home or nni_home()) / ".experiment"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entry = entries.get(experiment_id) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) else {}


def check_experiment_id(experiment_id: str) -> str:
    """`experiment_id` if it is a well-formed NNI id, else ValueError naming it."""
    if not isinstance(experiment_id, str) or not _VALID_ID.match(experiment_id):
        raise ValueError(f"{experiment_id!r} is not an NNI experiment id (1-32 letters, digits, '_' or '-')")
    return experiment_id


@dataclass
class Location:
    """Candidate places of one experiment, and the places searched (for error messages)."""

    experiment_id: str
    experiment_dir: Optional[Path]
    port: Optional[int]
    searched: list[str] = field(default_factory=list)
    registry_status: Optional[str] = None

    @property
    def db_path(self) -> Optional[Path]:
        return self.experiment_dir / DB_RELATIVE if self.experiment_dir is not None else None


def locate(experiment_id: str, experiment_dir: Optional[Path] = None, port: Optional[int] = None,
           home: Optional[Path] = None) -> Location:
    """Find the experiment's directory (the one holding db/nni.sqlite) and its manager's port.

    `experiment_dir` may be the experiment's own directory or the working directory above it.
    Without it, NNI's registry's logDir is tried, then ~/nni-experiments/<id>. Without `port`,
    the registry's port is used (it may be stale; the caller checks whether it answers).
    """
    check_experiment_id(experiment_id)
    entry = registry_entry(experiment_id, home)
    candidates: list[Path] = []
    if experiment_dir is not None:
        base = Path(experiment_dir).expanduser()
        candidates += [base, base / experiment_id]
    else:
        if entry.get("logDir"):
            candidates.append(Path(entry["logDir"]).expanduser() / experiment_id)
        candidates.append((home or nni_home()) / experiment_id)
    searched = [str(c / DB_RELATIVE) for c in candidates]
    found = next((c for c in candidates if (c / DB_RELATIVE).is_file()), None)
    if found is None and experiment_dir is None and entry.get("logDir"):
        found = Path(entry["logDir"]).expanduser() / experiment_id  # a starting experiment: no db yet
        found = found if found.is_dir() else None
    if port is None and isinstance(entry.get("port"), int):
        port = entry["port"]
    if not entry:
        searched.append(f"{(home or nni_home()) / '.experiment'} (no entry for {experiment_id})")
    return Location(experiment_id, found, port, searched, entry.get("status"))
