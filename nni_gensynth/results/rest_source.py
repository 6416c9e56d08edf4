"""Read a running experiment from its NNI manager's REST API (http://127.0.0.1:PORT/api/v1/nni/).

Endpoints used: `experiment` (profile: id, params = the config, logDir), `check-status`,
`trial-jobs` (status, hyperParameters, logPath, times) and `metric-data` (every final and
intermediate result). Standard library only, short timeouts: a dead port is detected fast.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from .assemble import RawMetric, RawTrial, assemble
from .model import ExperimentRecord

API_PREFIX = "/api/v1/nni"


class ManagerUnreachable(ConnectionError):
    """No NNI manager answered on the port (or another experiment did)."""


def get_json(port: int, endpoint: str, host: str = "127.0.0.1", timeout_s: float = 5.0) -> Any:
    """GET one endpoint of the NNI REST API and decode its JSON."""
    url = f"http://{host}:{port}{API_PREFIX}/{endpoint.lstrip('/')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ManagerUnreachable(f"no NNI manager answered at {url}: {exc}") from None


def manager_experiment_id(port: int, timeout_s: float = 2.0) -> Optional[str]:
    """The id of the experiment the manager on `port` runs, or None when nothing answers."""
    try:
        profile = get_json(port, "experiment", timeout_s=timeout_s)
    except ManagerUnreachable:
        return None
    return profile.get("id") if isinstance(profile, dict) else None


def load_from_rest(experiment_id: str, port: int) -> ExperimentRecord:
    """The experiment as its running manager reports it."""
    profile = get_json(port, "experiment")
    if not isinstance(profile, dict) or profile.get("id") != experiment_id:
        other = profile.get("id") if isinstance(profile, dict) else None
        raise ManagerUnreachable(f"the NNI manager on port {port} runs experiment {other!r}, not {experiment_id!r}")
    status = get_json(port, "check-status").get("status", "UNKNOWN")
    raw_trials = []
    for job in get_json(port, "trial-jobs"):
        raw_trials.append(RawTrial(trial_id=job["trialJobId"], status=job.get("status", "UNKNOWN"),
                                   start_ms=job.get("startTime"), end_ms=job.get("endTime"),
                                   log_path=job.get("logPath"),
                                   parameter_payloads=list(job.get("hyperParameters") or [])))
    metrics = [RawMetric(m["trialJobId"], m.get("parameterId"), m.get("type", ""), int(m.get("sequence") or 0),
                         m.get("data"), int(m.get("timestamp") or 0))
               for m in get_json(port, "metric-data")]
    log_dir = profile.get("logDir")
    return ExperimentRecord(experiment_id=experiment_id, source="rest",
                            experiment_dir=Path(log_dir) if log_dir else None,
                            config=dict(profile.get("params") or {}), trials=assemble(raw_trials, metrics),
                            status=str(status))
