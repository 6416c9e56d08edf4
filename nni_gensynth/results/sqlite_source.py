"""Read a finished (or running) experiment from NNI's database, `<experiment dir>/db/nni.sqlite`.

Tables (NNI 3.0): ExperimentProfile(params JSON, id, execDuration, startTime, endTime, logDir,
nextSequenceId, revision), TrialJobEvent(timestamp, trialJobId, event, data, logPath,
sequenceId, message, environmentId), MetricData(timestamp, trialJobId, parameterId, type,
sequence, data). The database is opened read-only, so a running manager is not disturbed.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .assemble import RawMetric, RawTrial, assemble
from .model import ExperimentRecord

# Trial events that are states (the last one is the trial's status); "ADD_CUSTOMIZED" etc. are not.
TRIAL_STATES = {"WAITING", "RUNNING", "SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED",
                "EARLY_STOPPED", "UNKNOWN"}
FINISHED_STATES = {"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}


def _connect(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise FileNotFoundError(f"NNI database not found: {db_path}")
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)


def read_profile(conn: sqlite3.Connection, experiment_id: str, db_path: Path) -> dict[str, Any]:
    """The latest revision of the experiment profile (ValueError when the id is not in this db)."""
    row = conn.execute("SELECT params, execDuration, startTime, endTime, logDir FROM ExperimentProfile "
                       "WHERE id = ? ORDER BY revision DESC LIMIT 1", (experiment_id,)).fetchone()
    if row is None:
        ids = [r[0] for r in conn.execute("SELECT DISTINCT id FROM ExperimentProfile")]
        raise ValueError(f"{db_path} holds experiment(s) {ids}, not {experiment_id!r}")
    params, exec_duration, start, end, log_dir = row
    return {"params": json.loads(params), "execDuration": exec_duration, "startTime": start,
            "endTime": end, "logDir": log_dir}


def read_trials(conn: sqlite3.Connection) -> list[RawTrial]:
    """Trials from their events: status = last state event, start/end times, parameter payloads."""
    trials: dict[str, RawTrial] = {}
    rows = conn.execute("SELECT timestamp, trialJobId, event, data, logPath FROM TrialJobEvent "
                        "ORDER BY timestamp, rowid")
    for timestamp, trial_id, event, data, log_path in rows:
        raw = trials.setdefault(trial_id, RawTrial(trial_id))
        if event in TRIAL_STATES:
            raw.status = event
        if event in ("WAITING", "RUNNING") and raw.start_ms is None:
            raw.start_ms = timestamp
        if event in FINISHED_STATES:
            raw.end_ms = timestamp
        if data:
            raw.parameter_payloads.append(data)
        if log_path:
            raw.log_path = log_path
    return list(trials.values())


def read_metrics(conn: sqlite3.Connection) -> list[RawMetric]:
    rows = conn.execute("SELECT timestamp, trialJobId, parameterId, type, sequence, data FROM MetricData "
                        "ORDER BY timestamp, rowid")
    return [RawMetric(trial_id, parameter_id, kind, int(sequence or 0), data, int(timestamp or 0))
            for timestamp, trial_id, parameter_id, kind, sequence, data in rows]


def load_from_sqlite(experiment_id: str, db_path: Path, status: str = "STOPPED") -> ExperimentRecord:
    """The experiment as its database records it."""
    db_path = Path(db_path)
    conn = _connect(db_path)
    try:
        profile = read_profile(conn, experiment_id, db_path)
        trials = assemble(read_trials(conn), read_metrics(conn))
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{db_path} is not a readable NNI database: {exc}") from None
    finally:
        conn.close()
    return ExperimentRecord(experiment_id=experiment_id, source="sqlite", experiment_dir=db_path.parent.parent,
                            config=profile["params"], trials=trials, status=status)
