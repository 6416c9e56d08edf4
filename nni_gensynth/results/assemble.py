"""Raw NNI records (trial events, hyper-parameter payloads, metric rows) -> TrialRecords.

Both sources meet here, so the REST API and the database give the same trials. NNI stores a
metric as a JSON-encoded string of what the trial reported (often a JSON string again);
`decode_metric` unwraps it. A trial's parameters are looked up by the parameter id it
reported its metrics under: NNI 3.0's local training service can give a trial another
parameter set than its RUNNING event names (observed: two trials started together swap).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from ..engine.metrics import finite_float
from .model import TrialRecord


@dataclass
class RawTrial:
    """What a source knows about one trial before assembly."""

    trial_id: str
    status: str = "UNKNOWN"
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None
    log_path: Optional[str] = None
    parameter_payloads: list[Any] = field(default_factory=list)


@dataclass
class RawMetric:
    """One row of NNI's metric data."""

    trial_id: str
    parameter_id: Optional[str]
    kind: str  # "FINAL" | "PERIODICAL" | "REQUEST_PARAMETER"
    sequence: int
    data: Any
    timestamp: int = 0


def decode_metric(data: Any) -> Optional[dict[str, Any]]:
    """A reported metric as a dict: JSON strings unwrapped, a number -> {"default": x};
    None when it carries nothing usable."""
    for _ in range(3):
        if not isinstance(data, str):
            break
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if isinstance(data, dict):
        return {str(k): _finite_or_none(v) for k, v in data.items()}
    number = finite_float(data)
    if number is not None:
        return {"default": number}
    return None


def _finite_or_none(value: Any) -> Any:
    """A reported value as kept in a TrialRecord: a number that is not a finite float (NaN,
    10**400) becomes None; other values as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and finite_float(value) is None:
        return None
    return value


def decode_parameters(payload: Any) -> tuple[Optional[int], dict[str, Any]]:
    """(parameter_id, parameters) from a hyper-parameter payload ({parameter_id, parameters, ...})."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None, {}
    if not isinstance(payload, dict):
        return None, {}
    parameters = payload.get("parameters")
    return as_int(payload.get("parameter_id")), dict(parameters) if isinstance(parameters, dict) else {}


def as_int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def trial_dir_from_log_path(log_path: Optional[str]) -> Optional[Path]:
    """The trial's output folder from NNI's logPath ('/path' or 'file://host:/path')."""
    if not log_path:
        return None
    text = str(log_path)
    if text.startswith("file://"):
        text = text[len("file://"):]
        text = text.split(":", 1)[1] if ":" in text.split("/", 1)[0] else text[text.find("/"):]
    return Path(text)


def assemble(raw_trials: Iterable[RawTrial], metrics: Iterable[RawMetric]) -> list[TrialRecord]:
    """TrialRecords ordered by start time, with parameters matched through reported parameter ids."""
    raw_trials = list(raw_trials)
    by_parameter_id: dict[int, dict[str, Any]] = {}
    announced: dict[str, Optional[int]] = {}
    for raw in raw_trials:
        for payload in raw.parameter_payloads:
            pid, params = decode_parameters(payload)
            if pid is not None:
                by_parameter_id[pid] = params
                announced.setdefault(raw.trial_id, pid)
    finals: dict[str, RawMetric] = {}
    periodic: dict[str, list[RawMetric]] = {}
    reported_pid: dict[str, int] = {}
    for m in metrics:
        if m.kind == "FINAL":
            finals[m.trial_id] = m  # the last final result wins
        elif m.kind == "PERIODICAL":
            periodic.setdefault(m.trial_id, []).append(m)
        else:
            continue
        pid = as_int(m.parameter_id)
        if pid is not None:
            reported_pid[m.trial_id] = pid
    records = []
    for raw in raw_trials:
        pid = reported_pid.get(raw.trial_id, announced.get(raw.trial_id))
        params = by_parameter_id.get(pid, {}) if pid is not None else {}
        final = finals.get(raw.trial_id)
        steps = sorted(periodic.get(raw.trial_id, []), key=lambda m: (m.sequence, m.timestamp))
        records.append(TrialRecord(
            trial_id=raw.trial_id, status=raw.status, parameter_id=pid, parameters=dict(params),
            final=decode_metric(final.data) if final is not None else None,
            intermediate=[d for d in (decode_metric(m.data) for m in steps) if d is not None],
            start_ms=raw.start_ms, end_ms=raw.end_ms, trial_dir=trial_dir_from_log_path(raw.log_path)))
    records.sort(key=lambda t: (t.start_ms is None, t.start_ms or 0, t.trial_id))
    return records
