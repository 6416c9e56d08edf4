"""load_experiment: one experiment id -> ExperimentRecord, from the live manager or the database.

The REST API is preferred while the experiment runs (the manager holds the freshest state);
afterwards the database is read. Generator cycles come from GenSynth's state file in either case.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from .locate import STATE_RELATIVE, ExperimentNotFoundError, locate
from .model import CycleRecord, ExperimentRecord
from .rest_source import ManagerUnreachable, load_from_rest, manager_experiment_id
from .sqlite_source import load_from_sqlite

_logger = logging.getLogger("nni_gensynth.results")


def read_state(state_path: Path) -> dict[str, Any]:
    """GenSynth's state.json as a dict ({} when the file does not exist yet or is unreadable,
    with a warning for the latter: a report still shows the trials)."""
    if not state_path.is_file():
        return {}
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        _logger.warning("GenSynth state file %s is unreadable (%s); cycles and prototype not shown", state_path, exc)
        return {}
    return state if isinstance(state, dict) else {}


def cycles_of(state: dict[str, Any]) -> list[CycleRecord]:
    """Generator cycles from a state dict (entries that do not fit are skipped)."""
    fields = set(CycleRecord.__dataclass_fields__)
    out = []
    for c in state.get("cycles") or []:
        if not isinstance(c, dict):
            continue
        try:
            out.append(CycleRecord(**{k: v for k, v in c.items() if k in fields}))
        except TypeError:
            continue
    return out


def load_experiment(experiment_id: str, experiment_dir: Optional[Path] = None, port: Optional[int] = None,
                    home: Optional[Path] = None) -> ExperimentRecord:
    """Everything NNI and GenSynth recorded about one experiment.

    `experiment_dir`: the experiment's directory or the working directory above it (default:
    NNI's registry, then ~/nni-experiments). `port`: its manager's port (default: the registry's).
    Raises ExperimentNotFoundError (a FileNotFoundError) naming every place searched.
    """
    where = locate(experiment_id, experiment_dir, port, home)
    record: Optional[ExperimentRecord] = None
    if where.port is not None:
        answering = manager_experiment_id(where.port)
        if answering == experiment_id:
            try:
                record = load_from_rest(experiment_id, where.port)
            except ManagerUnreachable as exc:  # stopped between the two calls
                _logger.info("%s; reading the database instead", exc)
        where.searched.insert(0, f"NNI manager on 127.0.0.1:{where.port} "
                                 f"({'runs ' + repr(answering) if answering else 'no answer'})")
    if record is None:
        db = where.db_path
        if db is None or not db.is_file():
            raise ExperimentNotFoundError(f"experiment {experiment_id!r} not found; looked in: "
                                          + "; ".join(where.searched))
        record = load_from_sqlite(experiment_id, db, status=where.registry_status or "STOPPED")
    if record.experiment_dir is None or not record.experiment_dir.is_dir():
        record.experiment_dir = where.experiment_dir or record.experiment_dir
    if record.experiment_dir is not None:
        record.state_path = record.experiment_dir / STATE_RELATIVE
        state = read_state(record.state_path)
        record.cycles = cycles_of(state)
        tuner_state = state.get("tuner")
        record.tuner_state = tuner_state if isinstance(tuner_state, dict) else {}
    return record
